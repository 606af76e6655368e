"""Re-issue of definitively rejected (or failed) transfers as new attempts.

Which attempts may be re-issued is a rule (`disbursement.domain.reissue`): the
program must allow re-issue, and a rejection's reason code must be one the
program lists in `reissue_reasons`. A deceased or duplicate beneficiary, an
identity reason or a wallet-rule refusal never is: asking for it is refused
with the reason named, and a `not_reissuable` exception is opened so that an
officer decides what becomes of the household's payment.

A new attempt is planned like a first attempt, by the planner's own router
(`services.cycles.routing.build_router`): the household's region and province,
the program's defaults, each partner's capacity on each day, open breakers,
a service point and pickup date for cash, the partner's fee; plus the wallet
rules for a wallet transfer, so no attempt goes for approval that the wallet
would refuse. It pays the same instruction with a new reference, attempt + 1,
never through a partner that already had an attempt of it, in a new draft
batch of that partner for the cycle (whose totals carry the fees):
maker-checker applies to it and the ordinary release posts its ledger.

Never two live attempts: the partial unique index on transfers says so, and a
concurrent re-issue of the same transfer loses on it (each transfer is tried in
its own savepoint, so one loser does not undo the others).

`reissue_references` is the use case of its own (CLI) and owns its transaction;
`reissue_in` works in a caller's transaction (an exception's resolution) and
never commits.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from disbursement.db.models import (
    Batch,
    Household,
    PaymentInstruction,
    Transfer,
    TransferEvent,
    utcnow,
)
from disbursement.db.models.ledger import ReconException
from disbursement.domain.entitlement import ProgramRules
from disbursement.domain.money import format_units
from disbursement.domain.references import new_reference
from disbursement.domain.reissue import NOT_REISSUABLE_EXCEPTION, ReissuePolicy
from disbursement.domain.routing import CASH, Decision, Request, Router
from disbursement.domain.states import (
    LIVE,
    UNSETTLED_EXCEPTIONS,
    BatchStatus,
    ExceptionStatus,
    Role,
)
from disbursement.domain.states import TransferStatus as S
from disbursement.domain.wallet import wallet_number
from disbursement.services.cycles import routing
from disbursement.services.officers import audit
from disbursement.services.officers.users import Actor
from disbursement.services.ports import Services

_UNSETTLED = [s.value for s in UNSETTLED_EXCEPTIONS]


@dataclass
class ReissueReport:
    reissued: list[dict] = field(default_factory=list)
    refused: list[dict] = field(default_factory=list)
    batches_created: list[int] = field(default_factory=list)
    exceptions_opened: list[int] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {"reissued": self.reissued, "refused": self.refused,
                "batches_created": self.batches_created,
                "exceptions_opened": self.exceptions_opened}


@dataclass(frozen=True)
class _Refused:
    reason: str
    for_officer: bool = False


@dataclass(frozen=True)
class _Planned:
    partner: str
    decision: Decision
    cycle_id: int
    pickup_from: date | None


def program_allows_reissue(svc: Services, program: str) -> bool:
    rules = svc.programs.get(program)
    return rules is not None and rules.reissue_on_rejection


def reissue_references(svc: Services, references: list[str], actor: Actor) -> ReissueReport:
    """The use case behind the CLI: re-issues the transfers named by reference,
    in one transaction of its own (the exceptions opened for refused ones too)."""
    actor.require(Role.MAKER, Role.APPROVER)
    with svc.uow() as session:
        found = dict(session.execute(select(Transfer.reference, Transfer.id).where(
            Transfer.reference.in_(references))).all())
        report = reissue_in(svc, session, [found[r] for r in references if r in found], actor)
        report.refused.extend({"reference": r, "reason": "no transfer with this reference"}
                              for r in references if r not in found)
        session.commit()
    return report


def reissue_in(svc: Services, session: Session, transfer_ids: list[int],
               actor: Actor) -> ReissueReport:
    """Re-issues `transfer_ids` in the caller's transaction and never commits it:
    the caller's use case (a re-issue of its own, or an exception's resolution)
    commits the new attempts together with its own changes, or neither."""
    # An approver resolving a reconciliation exception may ask for it too: the
    # new attempts land in a draft batch that still needs maker-checker.
    actor.require(Role.MAKER, Role.APPROVER)
    report = ReissueReport()
    planner = _Replanner(svc, session)
    batches: dict[tuple[int, str], Batch] = {}
    for transfer_id in transfer_ids:
        old = session.get(Transfer, transfer_id)
        if old is None:
            report.refused.append({"reference": str(transfer_id), "reason": "no such transfer"})
            continue
        plan = planner.plan(old)
        if isinstance(plan, _Refused):
            report.refused.append({"reference": old.reference, "reason": plan.reason})
            if plan.for_officer:
                opened = _open_exception(session, old, plan.reason)
                if opened is not None:
                    report.exceptions_opened.append(opened)
            continue
        # Each transfer in its own savepoint: one loser of a concurrent re-issue
        # does not undo the others.
        savepoint = session.begin_nested()
        try:
            new = _new_attempt(svc, session, old, plan, actor, batches)
            savepoint.commit()
        except IntegrityError:
            savepoint.rollback()
            # The batch made in this savepoint is gone with it.
            batches = {k: b for k, b in batches.items() if b in session}
            report.refused.append({"reference": old.reference,
                                   "reason": "the instruction already has a live attempt"})
            continue
        report.reissued.append({"reference": old.reference, "new_reference": new.reference,
                                "partner": new.partner_code, "attempt": new.attempt,
                                "batch_id": new.batch_id, "fee_centimes": new.fee_centimes,
                                "service_point": new.service_point,
                                "pickup_from": (new.pickup_from.isoformat()
                                                if new.pickup_from else None)})
    _close_batches(svc, session, batches.values())
    report.batches_created = sorted(b.id for b in batches.values())
    audit.record(session, actor.username, "transfer.reissue", "transfers",
                 ",".join(r["reference"] for r in report.reissued)[:64] or "-",
                 report.as_dict())
    return report


class _Replanner:
    """Plans new attempts with the cycle planner's router: one router per
    cycle, built once per call, so capacity taken by one re-issue counts for
    the next."""

    def __init__(self, svc: Services, session: Session) -> None:
        self.svc, self.session = svc, session
        self.routers: dict[int, Router] = {}
        self.windows: dict[int, list[date]] = {}

    def plan(self, old: Transfer) -> _Planned | _Refused:
        session = self.session
        instruction = session.get_one(PaymentInstruction, old.instruction_id)
        if old.status not in (S.REJECTED.value, S.FAILED.value):
            return _Refused(f"transfer is {old.status}: only rejected or failed attempts "
                            "are re-issued")
        rules = self.svc.programs.get(instruction.program)
        if rules is None or not rules.reissue_on_rejection:
            return _Refused(f"program {instruction.program} does not allow re-issue")
        refusal = ReissuePolicy(rules.code, rules.reissue_reasons).refusal(
            old.status, old.status_reason)
        if refusal is not None:
            return _Refused(refusal.reason, refusal.for_officer)
        live = session.execute(select(Transfer.reference).where(
            Transfer.instruction_id == old.instruction_id,
            Transfer.status.in_([s.value for s in LIVE]))).scalars().first()
        if live is not None:
            return _Refused(f"the instruction already has a live attempt ({live})")
        household = session.get_one(Household, instruction.household_pk)
        if old.channel == "wallet":
            breach = self.svc.configuration.wallet.refusal(
                old.amount_centimes, old.currency,
                wallet_number(self.svc.vault.open(household.pii)), household.wallet_tier)
            if breach is not None:
                return _Refused(f"the wallet would refuse it: {breach}", for_officer=True)
        tried = frozenset(session.execute(select(Transfer.partner_code).where(
            Transfer.instruction_id == old.instruction_id)).scalars())
        cycle_id = session.execute(
            select(Batch.cycle_id).where(Batch.id == old.batch_id)).scalar_one()
        decision = self._router(cycle_id, instruction.period, rules).route(Request(
            household.region_code, household.province_code, household.commune_code,
            old.channel, household.partner_code, old.amount_centimes, excluded=tried))
        if decision.partner_code is None:
            return _Refused(f"no other partner can take it in region {household.region_code}, "
                            f"province {household.province_code} for {old.channel} "
                            f"({decision.reason}; already tried: {', '.join(sorted(tried))})")
        window = self.windows[cycle_id]
        pickup = (window[decision.pickup_day]
                  if old.channel == CASH and decision.pickup_day is not None else None)
        return _Planned(decision.partner_code, decision, cycle_id, pickup)

    def _router(self, cycle_id: int, period: str, rules: ProgramRules) -> Router:
        router = self.routers.get(cycle_id)
        if router is None:
            window = routing.pickup_window(period, rules.pickup_window_days,
                                           not_before=utcnow().date())
            router = routing.build_router(self.svc, self.session, rules, cycle_id, window)
            self.routers[cycle_id], self.windows[cycle_id] = router, window
        return router


def _open_exception(session: Session, old: Transfer, reason: str) -> int | None:
    """An open `not_reissuable` exception for an officer, unless one is still
    unsettled for this transfer. Its amount is 0: the partner's books and ours
    agree; what is at stake is the household's payment, named in the detail."""
    existing = session.execute(select(ReconException.id).where(
        ReconException.transfer_id == old.id, ReconException.type == NOT_REISSUABLE_EXCEPTION,
        ReconException.status.in_(_UNSETTLED))).scalars().first()
    if existing is not None:
        return None
    instruction = session.get_one(PaymentInstruction, old.instruction_id)
    now = utcnow()
    row = ReconException(
        type=NOT_REISSUABLE_EXCEPTION, status=ExceptionStatus.OPEN.value,
        partner_code=old.partner_code, program=instruction.program, period=instruction.period,
        transfer_id=old.id, reference=old.reference, amount_centimes=0, currency=old.currency,
        detail=(f"re-issue refused for {format_units(old.amount_centimes)} {old.currency}: "
                f"{reason}")[:200],
        since=now, created_at=now)
    session.add(row)
    session.flush()
    return row.id


def _new_attempt(svc: Services, session: Session, old: Transfer, plan: _Planned, actor: Actor,
                 batches: dict[tuple[int, str], Batch]) -> Transfer:
    decision, partner = plan.decision, plan.partner
    batch = batches.get((plan.cycle_id, partner))
    if batch is None:
        seq = session.execute(select(func.coalesce(func.max(Batch.seq), 0)).where(
            Batch.cycle_id == plan.cycle_id, Batch.partner_code == partner)).scalar_one() + 1
        batch = Batch(cycle_id=plan.cycle_id, partner_code=partner, seq=seq,
                      status=BatchStatus.DRAFT.value, transfer_count=0, total_centimes=0,
                      fee_total_centimes=0, currency=old.currency, approvals_required=1,
                      created_by=actor.username)
        session.add(batch)
        session.flush()
        batches[(plan.cycle_id, partner)] = batch
    attempt = session.execute(select(func.max(Transfer.attempt)).where(
        Transfer.instruction_id == old.instruction_id)).scalar_one() + 1
    new = Transfer(instruction_id=old.instruction_id, batch_id=batch.id,
                   reference=new_reference(), attempt=attempt, partner_code=partner,
                   channel=old.channel, amount_centimes=old.amount_centimes,
                   currency=old.currency, fee_centimes=decision.fee_centimes,
                   service_point=decision.service_point, pickup_from=plan.pickup_from,
                   status=S.PENDING_APPROVAL.value,
                   chunk_no=batch.transfer_count // svc.settings.chunk_size)
    session.add(new)
    session.flush()          # the partial unique index speaks here
    session.add(TransferEvent(
        transfer_id=new.id, from_status=None, to_status=S.PENDING_APPROVAL.value,
        source="officer", actor=actor.username,
        detail=(f"re-issue of {old.reference} "
                f"({old.partner_code}: {old.status_reason or old.status}); "
                f"{decision.reason}")[:300]))
    batch.transfer_count += 1
    batch.total_centimes += old.amount_centimes
    batch.fee_total_centimes += decision.fee_centimes
    session.flush()
    return new


def _close_batches(svc: Services, session: Session, batches) -> None:
    threshold = svc.settings.second_approval_above_centimes
    for batch in batches:
        session.execute(update(Batch).where(Batch.id == batch.id).values(
            approvals_required=2 if batch.total_centimes > threshold else 1,
            updated_at=utcnow()))
