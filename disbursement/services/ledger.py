"""Double-entry ledger: every money movement is one balanced posting, written
in the same transaction as the state change that causes it.

Accounts (amounts positive = debit, negative = credit):
  budget:<program>     the program's budget; credited when a batch is released
  clearing:<partner>   funds the partner holds for beneficiaries (outstanding)
  paid:<program>       paid to beneficiaries
  returned:<program>   funds the partner gave back (expired, then returned)
A rejected or failed transfer's money stays in the partner's clearing account
(outstanding) until the partner returns it or a new attempt uses it.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import case, func, insert, select
from sqlalchemy.orm import Session

from disbursement.db.models import (Batch, Cycle, LedgerLine, LedgerPosting, PaymentInstruction,
                                    Transfer, utcnow)
from disbursement.domain.states import RELEASED, BatchStatus, TransferStatus


class UnbalancedPosting(ValueError):
    """Raised when the legs of a posting do not sum to zero."""


def post(session: Session, kind: str, program: str, period: str, partner_code: str,
         memo: str, legs: list[tuple[str, int]], currency: str = "MAD") -> int:
    if sum(amount for _, amount in legs) != 0:
        raise UnbalancedPosting(f"{kind} posting legs sum to {sum(a for _, a in legs)}")
    posting_id = session.execute(insert(LedgerPosting).returning(LedgerPosting.id), {
        "kind": kind, "program": program, "period": period, "partner_code": partner_code,
        "memo": memo[:200], "at": utcnow()}).scalar_one()
    session.execute(insert(LedgerLine), [
        {"posting_id": posting_id, "account": account, "amount_centimes": amount,
         "currency": currency} for account, amount in legs if amount])
    return posting_id


def post_release(session: Session, program: str, period: str, partner: str, amount: int,
                 batch_id: int) -> None:
    post(session, "release", program, period, partner, f"batch {batch_id} released",
         [(f"clearing:{partner}", amount), (f"budget:{program}", -amount)])


def post_payments(session: Session, transfer_ids: list[int], memo: str) -> None:
    """One posting per cycle and partner for the transfers just confirmed paid."""
    rows = session.execute(
        select(PaymentInstruction.program, PaymentInstruction.period, Transfer.partner_code,
               func.sum(Transfer.amount_centimes))
        .join(PaymentInstruction, PaymentInstruction.id == Transfer.instruction_id)
        .where(Transfer.id.in_(transfer_ids))
        .group_by(PaymentInstruction.program, PaymentInstruction.period, Transfer.partner_code))
    for program, period, partner, amount in rows:
        post(session, "payment", program, period, partner, memo,
             [(f"paid:{program}", int(amount)), (f"clearing:{partner}", -int(amount))])


@dataclass
class CycleBalance:
    program: str
    period: str
    partner: str
    released: int = 0
    paid: int = 0
    returned: int = 0
    outstanding: int = 0
    differences: list[str] = field(default_factory=list)

    @property
    def balanced(self) -> bool:
        return not self.differences


@dataclass
class LedgerReport:
    unbalanced_postings: list[int]
    cycles: list[CycleBalance]

    @property
    def balanced(self) -> bool:
        return not self.unbalanced_postings and all(c.balanced for c in self.cycles)


def check(session: Session, program: str | None = None, period: str | None = None) -> LedgerReport:
    """Proves, per cycle and partner, released = paid + returned + outstanding in
    the ledger, and that the ledger agrees with the transfers' states."""
    unbalanced = list(session.execute(
        select(LedgerLine.posting_id).group_by(LedgerLine.posting_id)
        .having(func.sum(LedgerLine.amount_centimes) != 0)).scalars())
    ledger = _ledger_figures(session, program, period)
    ops = _operational_figures(session, program, period)
    cycles = []
    for key in sorted(set(ledger) | set(ops)):
        lg = ledger.get(key, {})
        op = ops.get(key, {})
        bal = CycleBalance(*key, released=lg.get("released", 0), paid=lg.get("paid", 0),
                           returned=lg.get("returned", 0), outstanding=lg.get("outstanding", 0))
        if bal.released != bal.paid + bal.returned + bal.outstanding:
            bal.differences.append(
                f"released {bal.released} != paid {bal.paid} + returned {bal.returned} "
                f"+ outstanding {bal.outstanding}")
        for name in ("released", "paid", "returned"):
            if lg.get(name, 0) != op.get(name, 0):
                bal.differences.append(f"{name}: ledger {lg.get(name, 0)} != transfers "
                                       f"{op.get(name, 0)} (difference {lg.get(name, 0) - op.get(name, 0)})")
        cycles.append(bal)
    return LedgerReport(unbalanced, cycles)


def _ledger_figures(session: Session, program: str | None, period: str | None) -> dict:
    acct = LedgerLine.account
    stmt = (select(LedgerPosting.program, LedgerPosting.period, LedgerPosting.partner_code,
                   func.sum(case((acct.like("budget:%"), -LedgerLine.amount_centimes), else_=0)),
                   func.sum(case((acct.like("paid:%"), LedgerLine.amount_centimes), else_=0)),
                   func.sum(case((acct.like("returned:%"), LedgerLine.amount_centimes), else_=0)),
                   func.sum(case((acct.like("clearing:%"), LedgerLine.amount_centimes), else_=0)))
            .join(LedgerPosting, LedgerPosting.id == LedgerLine.posting_id)
            .group_by(LedgerPosting.program, LedgerPosting.period, LedgerPosting.partner_code))
    if program:
        stmt = stmt.where(LedgerPosting.program == program)
    if period:
        stmt = stmt.where(LedgerPosting.period == period)
    return {(p, per, partner): {"released": int(r), "paid": int(pd), "returned": int(rt),
                                "outstanding": int(o)}
            for p, per, partner, r, pd, rt, o in session.execute(stmt)}


def _operational_figures(session: Session, program: str | None, period: str | None) -> dict:
    amount = Transfer.amount_centimes
    stmt = (select(Cycle.program, Cycle.period, Transfer.partner_code,
                   func.sum(amount),
                   func.sum(case((Transfer.status == TransferStatus.PAID.value, amount), else_=0)),
                   func.sum(case((Transfer.status == TransferStatus.RETURNED.value, amount), else_=0)))
            .join(Batch, Batch.id == Transfer.batch_id)
            .join(Cycle, Cycle.id == Batch.cycle_id)
            .where(Batch.status == BatchStatus.RELEASED.value,
                   Transfer.status.in_([s.value for s in RELEASED]))
            .group_by(Cycle.program, Cycle.period, Transfer.partner_code))
    if program:
        stmt = stmt.where(Cycle.program == program)
    if period:
        stmt = stmt.where(Cycle.period == period)
    return {(p, per, partner): {"released": int(r), "paid": int(pd), "returned": int(rt)}
            for p, per, partner, r, pd, rt in session.execute(stmt)}
