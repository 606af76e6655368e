"""What an approver sees before deciding on a batch: totals by partner,
region and province, the fee total, flags that deserve a second look, a
sample of transfers, and the decisions so far.

One statement per part of the page, whatever the batch size (no N+1): the
breakdown, the flags and the sample are each a single set-based query."""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from sqlalchemy import BigInteger, and_, cast, exists, func, literal, null, select, union_all
from sqlalchemy.orm import Session, aliased

from disbursement.crypto import PersonalDataVault, mask
from disbursement.db.models import (
    Batch,
    BatchDecision,
    Cycle,
    Household,
    PaymentInstruction,
    Transfer,
)
from disbursement.db.models.console import HouseholdAccount
from disbursement.domain.money import format_units

SAMPLE_TRANSFERS = 25
FLAG_EXAMPLES_PER_KIND = 20
# An amount more than this many times the household's usual one, or less than
# its usual divided by this, is flagged (integer arithmetic, no ratios).
UNUSUAL_AMOUNT_FACTOR = 2
FLAG_LABELS = {
    "national_id": "same national ID on several households",
    "phone": "same phone on several households",
    "account": "same payout account on several households",
    "unusual_amount": "amount far from the household's usual",
    "new_account": "first payment to a new account",
}


class ReviewNotFound(LookupError):
    """Raised when the batch to review does not exist."""


@dataclass
class Breakdown:
    key: str
    transfers: int = 0
    amount_centimes: int = 0
    fee_centimes: int = 0


@dataclass
class Flag:
    kind: str
    household_id: str
    reference: str
    detail: str


@dataclass
class SampleTransfer:
    reference: str
    household_id: str
    head_name: str
    region: str
    province: str
    amount_centimes: int
    status: str
    national_id: str
    phone: str
    account: str


@dataclass
class BatchReview:
    batch: Batch
    program: str
    period: str
    by_partner: list[Breakdown]
    by_region: list[Breakdown]
    by_province: list[Breakdown]
    fee_total_centimes: int
    flag_counts: dict[str, int]
    flags: list[Flag]
    sample: list[SampleTransfer]
    decisions: list[BatchDecision] = field(default_factory=list)

    @property
    def flag_labels(self) -> dict[str, str]:
        return FLAG_LABELS


def batch_review(session: Session, vault: PersonalDataVault, batch_id: int,
                 clear_personal_data: bool) -> BatchReview:
    row = session.execute(select(Batch, Cycle.program, Cycle.period)
                          .join(Cycle, Cycle.id == Batch.cycle_id)
                          .where(Batch.id == batch_id)).first()
    if row is None:
        raise ReviewNotFound(f"batch {batch_id} not found")
    batch, program, period = row
    by_partner, by_region, by_province = _breakdown(session, batch_id)
    flag_counts, flags = _flags(session, batch_id)
    decisions = session.execute(select(BatchDecision).where(BatchDecision.batch_id == batch_id)
                                .order_by(BatchDecision.at, BatchDecision.id)).scalars().all()
    return BatchReview(batch, program, period, by_partner, by_region, by_province,
                       sum(b.fee_centimes for b in by_partner), flag_counts, flags,
                       _sample(session, vault, batch_id, clear_personal_data), list(decisions))


def _breakdown(session: Session, batch_id: int):
    stmt = (select(Transfer.partner_code, Household.region_code, Household.province_code,
                   func.count(), func.sum(Transfer.amount_centimes),
                   func.sum(Transfer.fee_centimes))
            .join(PaymentInstruction, PaymentInstruction.id == Transfer.instruction_id)
            .join(Household, Household.id == PaymentInstruction.household_pk)
            .where(Transfer.batch_id == batch_id)
            .group_by(Transfer.partner_code, Household.region_code, Household.province_code))
    parts: list[dict[str, Breakdown]] = [{}, {}, {}]
    for partner, region, province, count, amount, fee in session.execute(stmt):
        for part, key in zip(parts, (partner, region, f"{region}/{province}"), strict=True):
            item = part.setdefault(key, Breakdown(key))
            item.transfers += count
            item.amount_centimes += int(amount or 0)
            item.fee_centimes += int(fee or 0)
    return [sorted(p.values(), key=lambda b: b.key) for p in parts]


def _flags(session: Session, batch_id: int) -> tuple[dict[str, int], list[Flag]]:
    """Every flag kind in one statement: the batch's households are read once
    (a CTE), then one UNION ALL branch per kind yields (kind, household,
    reference, figure, usual sum, usual count)."""
    b = (select(Household.id.label("hid"), Household.household_id, Household.cin_hash,
                Household.phone_hash, Household.account_hash, Transfer.reference,
                Transfer.amount_centimes, PaymentInstruction.id.label("iid"),
                PaymentInstruction.program, PaymentInstruction.period)
         .join(PaymentInstruction, PaymentInstruction.id == Transfer.instruction_id)
         .join(Household, Household.id == PaymentInstruction.household_pk)
         .where(Transfer.batch_id == batch_id).cte("in_batch"))
    branches = []
    other = aliased(Household)
    for kind, column in (("national_id", "cin_hash"), ("phone", "phone_hash"),
                         ("account", "account_hash")):
        # An index probe per household of the batch: other holders of its hash.
        branches.append(
            select(literal(kind).label("kind"), b.c.household_id, b.c.reference,
                   _big(func.count(other.id)).label("figure"), _big(null()).label("usual_sum"),
                   _big(null()).label("usual_n"))
            .select_from(b)
            .join(other, and_(getattr(other, column) == b.c[column], other.id != b.c.hid))
            .group_by(b.c.household_id, b.c.reference))
    previous = aliased(PaymentInstruction)
    branches.append(
        select(literal("unusual_amount").label("kind"), b.c.household_id, b.c.reference,
               _big(b.c.amount_centimes).label("figure"),
               _big(func.sum(previous.amount_centimes)).label("usual_sum"),
               _big(func.count(previous.id)).label("usual_n"))
        .select_from(b)
        .join(previous, and_(previous.household_pk == b.c.hid, previous.program == b.c.program,
                             previous.period < b.c.period))
        .group_by(b.c.household_id, b.c.reference, b.c.amount_centimes)
        .having((b.c.amount_centimes * func.count(previous.id)
                 > UNUSUAL_AMOUNT_FACTOR * func.sum(previous.amount_centimes))
                | (UNUSUAL_AMOUNT_FACTOR * b.c.amount_centimes * func.count(previous.id)
                   < func.sum(previous.amount_centimes))))
    paid_before = exists().where(previous.household_pk == b.c.hid, previous.id != b.c.iid,
                                 previous.created_at < HouseholdAccount.first_seen_at)
    branches.append(
        select(literal("new_account").label("kind"), b.c.household_id, b.c.reference,
               _big(null()).label("figure"), _big(null()).label("usual_sum"),
               _big(null()).label("usual_n"))
        .select_from(b)
        .join(HouseholdAccount, and_(HouseholdAccount.household_id == b.c.household_id,
                                     HouseholdAccount.account_hash == b.c.account_hash))
        .where(paid_before))
    union = union_all(*branches)
    counts: dict[str, int] = defaultdict(int)
    flags: list[Flag] = []
    for kind, household_id, reference, figure, usual_sum, usual_n in session.execute(union):
        counts[kind] += 1
        if counts[kind] <= FLAG_EXAMPLES_PER_KIND:
            usual = usual_sum // usual_n if usual_n else None
            flags.append(Flag(kind, household_id, reference, _detail(kind, figure, usual)))
    return {k: counts.get(k, 0) for k in FLAG_LABELS}, flags


def _big(expression):
    """UNION ALL branches must agree on types: every figure is a BIGINT."""
    return cast(expression, BigInteger)


def _detail(kind: str, figure: int | None, usual: int | None) -> str:
    # The unusual-amount branch always carries both figures: the amount is NOT NULL and
    # its inner join leaves at least one earlier payment to average.
    if kind == "unusual_amount" and figure is not None and usual is not None:
        return f"{format_units(figure)} MAD vs usual {format_units(usual)} MAD"
    if kind == "new_account":
        return "account first seen after the household's last payment"
    return f"shared with {figure} other household(s)"


def _sample(session: Session, vault: PersonalDataVault, batch_id: int,
            clear: bool) -> list[SampleTransfer]:
    rows = session.execute(
        select(Transfer.reference, Transfer.amount_centimes, Transfer.status,
               Household.household_id, Household.head_name, Household.region_code,
               Household.province_code, Household.pii)
        .join(PaymentInstruction, PaymentInstruction.id == Transfer.instruction_id)
        .join(Household, Household.id == PaymentInstruction.household_pk)
        .where(Transfer.batch_id == batch_id).order_by(Transfer.id).limit(SAMPLE_TRANSFERS)).all()
    show = (lambda v: v or "") if clear else mask
    sample = []
    for r in rows:
        pii = vault.open(r.pii)
        sample.append(SampleTransfer(
            r.reference, r.household_id, r.head_name, r.region_code, r.province_code,
            r.amount_centimes, r.status, show(pii.get("cin")), show(pii.get("phone")),
            show(pii.get("account") or pii.get("wallet_phone"))))
    return sample
