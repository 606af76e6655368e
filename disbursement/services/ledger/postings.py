"""Double-entry ledger: every money movement is one balanced posting, written
in the same transaction as the state change that causes it. Postings are never
updated or deleted; a correction is a new posting. The database holds these
rules too (migration 0002): a deferred trigger refuses, at commit, a posting
whose legs do not sum to zero, and triggers refuse UPDATE and DELETE.

Chart of accounts (amounts positive = debit, negative = credit; centimes):

  budget:<program>        the program's budget; credited when money leaves it
  commitments:<program>   not used: approval moves no money, release does
  prefunding:<partner>    money sent to a partner ahead of a release
  clearing:<partner>      money at the partner, owed to beneficiaries (outstanding)
  paid:<program>          paid to beneficiaries
  returned:<program>      funds a partner gave back
  fees:<partner>          the partners' fees for carrying transfers
  corrections:<program>   differences an officer accepted (write-off, correction)

Postings, each tagged with the program, period (cycle) and partner it concerns:

  prefunding    Dr prefunding:<partner>   Cr budget:<program>
  release       Dr clearing:<partner>     Cr prefunding:<partner> (up to its balance)
                                          Cr budget:<program>     (the rest)
  cancellation  Dr budget:<program>       Cr clearing:<partner>  (the partner confirmed a
                cancellation: the release is reversed; services/cancellation.py)
  payment       Dr paid:<program>         Cr clearing:<partner>
  fee           Dr fees:<partner>         Cr budget:<program>    (with the payment)
  expiry        none: an expired transfer's money is still at the partner
  return        Dr returned:<program>     Cr clearing:<partner>
  write_off     Dr corrections:<program>  Cr clearing:<partner>  (signed difference)
  correction    Dr corrections:<program>  Cr clearing:<partner>  (signed, officer's amount)

A rejected or failed attempt's money stays in clearing:<partner> until the
partner returns it (a return posting); a re-issue is a new batch and posts its
own release. Hence, per cycle and partner (released net of cancellations):

  released = paid + returned + outstanding + corrections

and the ledger agrees with the transfers: released, paid and returned equal the
amounts of the transfers in those states (returned: funds given back, see
`FundReturn`), and outstanding + corrections equals the rest.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import case, func, insert, select, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from disbursement import metrics
from disbursement.db.models import (
    Batch,
    Cycle,
    LedgerLine,
    LedgerPosting,
    PaymentInstruction,
    Transfer,
    utcnow,
)
from disbursement.db.models.ledger import FundReturn
from disbursement.domain.errors import BadInput
from disbursement.domain.states import RELEASED, BatchStatus, TransferStatus
from disbursement.services.ledger import books

# Postings whose clearing legs make the "released" figure: a release, net of
# the cancellations that reverse it (disbursement.services.dispatch.cancellation).
RELEASE_KINDS = ("release", "cancellation")
ACCOUNT_KINDS = frozenset({"budget", "commitments", "prefunding", "clearing", "paid", "returned",
                           "fees", "corrections"})


class LedgerError(BadInput):
    """Base of the ledger's rules."""


class UnbalancedPosting(LedgerError, ValueError):
    """Raised when the legs of a posting do not sum to zero (the database
    raises its own error at commit for a posting written around this code)."""


class UnknownAccount(LedgerError, ValueError):
    """Raised when a leg names an account outside the chart of accounts."""


class PostingIsImmutable(LedgerError):
    """The rule (see `refusal`) behind the database's refusal of an UPDATE or
    DELETE of a posting or a line: post a correction instead."""


def post(session: Session, kind: str, program: str, period: str, partner_code: str,
         memo: str, legs: list[tuple[str, int]], currency: str = "MAD") -> int:
    """Writes one balanced posting; returns its id. Zero legs are left out."""
    if sum(amount for _, amount in legs) != 0:
        raise UnbalancedPosting(f"{kind} posting legs sum to {sum(a for _, a in legs)}")
    for account, _ in legs:
        if account.split(":", 1)[0] not in ACCOUNT_KINDS or ":" not in account:
            raise UnknownAccount(f"account {account!r} is not in the chart of accounts")
    posting_id = session.execute(insert(LedgerPosting).returning(LedgerPosting.id), {
        "kind": kind, "program": program, "period": period, "partner_code": partner_code,
        "memo": memo[:200], "at": utcnow()}).scalar_one()
    lines = [{"posting_id": posting_id, "account": account, "amount_centimes": amount,
              "currency": currency} for account, amount in legs if amount]
    if lines:
        session.execute(insert(LedgerLine), lines)
    return posting_id


def refusal(exc: DBAPIError) -> LedgerError | None:
    """The ledger rule behind a database error raised by the triggers, if any."""
    message = str(exc.orig).splitlines()[0] if exc.orig else str(exc)
    if "unbalanced ledger posting" in message:
        return UnbalancedPosting(message)
    if "rows are never changed" in message:
        return PostingIsImmutable(message)
    return None


def commit(session: Session) -> None:
    """Commits, translating the database's ledger rules into ours: the
    deferred balance trigger fires here, at commit."""
    try:
        session.commit()
    except DBAPIError as exc:
        session.rollback()
        rule = refusal(exc)
        if rule is None:
            raise
        raise rule from exc


def balance(session: Session, account: str, program: str | None = None) -> int:
    stmt = (select(func.coalesce(func.sum(LedgerLine.amount_centimes), 0))
            .join(LedgerPosting, LedgerPosting.id == LedgerLine.posting_id)
            .where(LedgerLine.account == account))
    if program:
        stmt = stmt.where(LedgerPosting.program == program)
    return int(session.execute(stmt).scalar_one())


def post_prefunding(session: Session, program: str, period: str, partner: str,
                    amount: int) -> int:
    """Money sent to a partner ahead of the releases it will cover."""
    return post(session, "prefunding", program, period, partner,
                f"prefunding of {partner}",
                [(f"prefunding:{partner}", amount), (f"budget:{program}", -amount)])


def post_release(session: Session, program: str, period: str, partner: str, amount: int,
                 batch_id: int) -> None:
    """A released batch's money goes to the partner's clearing account, taken
    from the partner's pre-funding first, the budget for the rest."""
    prefunded = max(0, min(amount, balance(session, f"prefunding:{partner}", program)))
    post(session, "release", program, period, partner, f"batch {batch_id} released",
         [(f"clearing:{partner}", amount), (f"prefunding:{partner}", -prefunded),
          (f"budget:{program}", -(amount - prefunded))])


def _by_cycle_and_partner(session: Session, transfer_ids: list[int], *extra):
    return session.execute(
        select(PaymentInstruction.program, PaymentInstruction.period, Transfer.partner_code,
               func.sum(Transfer.amount_centimes), *extra)
        .join(PaymentInstruction, PaymentInstruction.id == Transfer.instruction_id)
        .where(Transfer.id.in_(transfer_ids))
        .group_by(PaymentInstruction.program, PaymentInstruction.period, Transfer.partner_code))


def post_payments(session: Session, transfer_ids: list[int], memo: str) -> None:
    """One payment posting per cycle and partner for the transfers just
    confirmed paid, and one fee posting when they carry fees. Each transfer
    names its payment posting (`payment_posting_id`): the ledger check holds
    the ledger and the states to each other transfer by transfer."""
    for start in range(0, len(transfer_ids), 5_000):
        chunk = transfer_ids[start:start + 5_000]
        rows = _by_cycle_and_partner(session, chunk, func.sum(Transfer.fee_centimes))
        for program, period, partner, amount, fees in rows:
            posting_id = post(session, "payment", program, period, partner, memo,
                              [(f"paid:{program}", int(amount)),
                               (f"clearing:{partner}", -int(amount))])
            _link_payment(session, chunk, program, period, partner, posting_id)
            if fees:
                post(session, "fee", program, period, partner, f"fees: {memo}",
                     [(f"fees:{partner}", int(fees)), (f"budget:{program}", -int(fees))])


def _link_payment(session: Session, transfer_ids: list[int], program: str, period: str,
                  partner: str, posting_id: int) -> None:
    in_cycle = (select(PaymentInstruction.id)
                .where(PaymentInstruction.program == program,
                       PaymentInstruction.period == period))
    session.execute(update(Transfer)
                    .where(Transfer.id.in_(transfer_ids), Transfer.partner_code == partner,
                           Transfer.instruction_id.in_(in_cycle))
                    .values(payment_posting_id=posting_id),
                    execution_options={"synchronize_session": False})


def post_returns(session: Session, transfer_ids: list[int], memo: str) -> None:
    """One return posting per cycle and partner for the funds just given back."""
    for start in range(0, len(transfer_ids), 5_000):
        for program, period, partner, amount in _by_cycle_and_partner(
                session, transfer_ids[start:start + 5_000]):
            post(session, "return", program, period, partner, memo,
                 [(f"returned:{program}", int(amount)), (f"clearing:{partner}", -int(amount))])


def post_correction(session: Session, kind: str, program: str, period: str, partner: str,
                    amount: int, memo: str) -> int:
    """A write-off or an officer's correction: `amount` (signed) moves from the
    partner's clearing account to the program's corrections account."""
    return post(session, kind, program, period, partner, memo,
                [(f"corrections:{program}", amount), (f"clearing:{partner}", -amount)])


# --- the check ------------------------------------------------------------

@dataclass
class CycleBalance:
    program: str
    period: str
    partner: str
    released: int = 0
    paid: int = 0
    returned: int = 0
    outstanding: int = 0
    corrections: int = 0
    fees: int = 0
    differences: list[str] = field(default_factory=list)
    gap_centimes: list[int] = field(default_factory=list)

    @property
    def balanced(self) -> bool:
        return not self.differences

    def gaps(self) -> list[int]:
        """The size of each difference found, in centimes (for the gauge)."""
        return [abs(g) for g in self.gap_centimes]

    def as_dict(self) -> dict:
        return {"program": self.program, "period": self.period, "partner": self.partner,
                "released": self.released, "paid": self.paid, "returned": self.returned,
                "outstanding": self.outstanding, "corrections": self.corrections,
                "fees": self.fees, "balanced": self.balanced, "differences": self.differences}


@dataclass
class LedgerReport:
    unbalanced_postings: list[int]
    cycles: list[CycleBalance]
    books: books.BooksReport = field(default_factory=books.BooksReport)

    @property
    def balanced(self) -> bool:
        return (not self.unbalanced_postings and all(c.balanced for c in self.cycles)
                and self.books.agree)

    def as_dict(self) -> dict:
        return {"balanced": self.balanced, "unbalanced_postings": self.unbalanced_postings,
                "cycles": [c.as_dict() for c in self.cycles], "books": self.books.as_dict()}


def check(session: Session, program: str | None = None, period: str | None = None,
          now: datetime | None = None, first: int = books.FIRST_REFERENCES) -> LedgerReport:
    """Proves, per cycle and partner, released = paid + returned + outstanding
    (+ corrections) in the ledger, that every posting is balanced, that the
    ledger agrees with the transfers' states, and, transfer by transfer, that
    the partners' books (their confirmations and statements) and our ledger
    agree with our states (`books`; `first` references named per kind). Sets
    the ledger gauges."""
    unbalanced = list(session.execute(
        select(LedgerLine.posting_id).group_by(LedgerLine.posting_id, LedgerLine.currency)
        .having(func.sum(LedgerLine.amount_centimes) != 0)).scalars())
    ledger = _ledger_figures(session, program, period)
    ops = _operational_figures(session, program, period)
    cycles = []
    for key in sorted(set(ledger) | set(ops)):
        lg = ledger.get(key, {})
        op = ops.get(key, {})
        bal = CycleBalance(*key, **lg)
        gap = bal.released - bal.paid - bal.returned - bal.outstanding - bal.corrections
        if gap:
            bal.gap_centimes.append(gap)
            bal.differences.append(
                f"released {bal.released} != paid {bal.paid} + returned {bal.returned} "
                f"+ outstanding {bal.outstanding} + corrections {bal.corrections} "
                f"(difference {gap})")
        ours = {"released": bal.released, "paid": bal.paid, "returned": bal.returned,
                "outstanding": bal.outstanding + bal.corrections}
        for name, value in ours.items():
            theirs = op.get(name, 0)
            if value != theirs:
                bal.gap_centimes.append(value - theirs)
                bal.differences.append(f"{name}: ledger {value} != transfers {theirs} "
                                       f"(difference {value - theirs})")
        cycles.append(bal)
    report = LedgerReport(unbalanced, cycles, books.compare(session, program, period, now, first))
    metrics.record_ledger_check(report)
    return report


def _ledger_figures(session: Session, program: str | None, period: str | None) -> dict:
    acct, amount = LedgerLine.account, LedgerLine.amount_centimes

    def total(condition):
        return func.coalesce(func.sum(case((condition, amount), else_=0)), 0)

    stmt = (select(LedgerPosting.program, LedgerPosting.period, LedgerPosting.partner_code,
                   total(LedgerPosting.kind.in_(RELEASE_KINDS) & acct.like("clearing:%")),
                   total(acct.like("paid:%")), total(acct.like("returned:%")),
                   total(acct.like("clearing:%")), total(acct.like("corrections:%")),
                   total(acct.like("fees:%")))
            .join(LedgerPosting, LedgerPosting.id == LedgerLine.posting_id)
            .where(LedgerPosting.kind != "prefunding")
            .group_by(LedgerPosting.program, LedgerPosting.period, LedgerPosting.partner_code))
    if program:
        stmt = stmt.where(LedgerPosting.program == program)
    if period:
        stmt = stmt.where(LedgerPosting.period == period)
    names = ("released", "paid", "returned", "outstanding", "corrections", "fees")
    return {(p, per, partner): dict(zip(names, map(int, figures), strict=True))
            for p, per, partner, *figures in session.execute(stmt)}


def _operational_figures(session: Session, program: str | None, period: str | None) -> dict:
    amount = Transfer.amount_centimes
    stmt = (select(Cycle.program, Cycle.period, Transfer.partner_code,
                   func.sum(amount),
                   func.sum(case((Transfer.status == TransferStatus.PAID.value, amount), else_=0)),
                   func.sum(case((FundReturn.id.is_not(None), amount), else_=0)))
            .join(Batch, Batch.id == Transfer.batch_id)
            .join(Cycle, Cycle.id == Batch.cycle_id)
            .outerjoin(FundReturn, FundReturn.transfer_id == Transfer.id)
            .where(Batch.status == BatchStatus.RELEASED.value,
                   Transfer.status.in_([s.value for s in RELEASED]))
            .group_by(Cycle.program, Cycle.period, Transfer.partner_code))
    if program:
        stmt = stmt.where(Cycle.program == program)
    if period:
        stmt = stmt.where(Cycle.period == period)
    return {(p, per, partner): {"released": int(r), "paid": int(pd), "returned": int(rt),
                                "outstanding": int(r) - int(pd) - int(rt)}
            for p, per, partner, r, pd, rt in session.execute(stmt)}


def post_cancellations(session: Session, transfer_ids: list[int], memo: str) -> None:
    """Reverse the release of cancelled transfers: the money goes back from the
    partner's clearing account to the program's budget (one posting per cycle
    and partner), so released = paid + returned + outstanding still holds."""
    if not transfer_ids:
        return
    rows = session.execute(
        select(PaymentInstruction.program, PaymentInstruction.period, Transfer.partner_code,
               Transfer.currency, func.sum(Transfer.amount_centimes))
        .join(PaymentInstruction, PaymentInstruction.id == Transfer.instruction_id)
        .where(Transfer.id.in_(transfer_ids))
        .group_by(PaymentInstruction.program, PaymentInstruction.period,
                  Transfer.partner_code, Transfer.currency))
    for program, period, partner, currency, amount in rows:
        post(session, "cancellation", program, period, partner, memo,
                    [(f"budget:{program}", int(amount)), (f"clearing:{partner}", -int(amount))],
                    currency)
