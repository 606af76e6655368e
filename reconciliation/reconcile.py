"""Reconciliation of a partner's statement (any format in
`reconciliation.readers`) against our transfers, in one transaction.

Each entry ends in exactly one outcome (`reconciliation.matcher`), recorded as
a `ReconItem`; every outcome but matched / returned opens an exception. A
payment entry for a transfer we still hold as sent / available confirms it
(paid, payment posting); a return entry books the funds given back. Then the
payments on our side that no statement has carried are "expected": they wait
in the queue until the partner's statement SLA passes. A later statement that
carries one matches it and closes the expected item. Opening balance + entries
must equal the closing balance when the format carries balances. The same file
twice (same checksum) changes nothing.

Streamed in steps of LINES_PER_STEP entries: one lookup, one COPY of the
items, a few set-based UPDATEs per step; memory stays flat whatever the size.
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import BinaryIO

from sqlalchemy import any_, bindparam, func, select, update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session

from disbursement.db.bulk import write_rows
from disbursement.db.models import (
    PaymentInstruction,
    ReconItem,
    Statement,
    Transfer,
    TransferEvent,
    as_utc,
    utcnow,
)
from disbursement.db.models.ledger import FundReturn, ReconException
from disbursement.domain.statements import EntryKind, StatementEntry, StatementSummary
from disbursement.domain.states import ExceptionStatus, Role, TransferStatus
from disbursement.services.ledger import postings as ledger
from disbursement.services.officers import audit
from disbursement.services.officers.users import Actor
from disbursement.services.ports import Services
from disbursement.services.tracking import transitions
from disbursement.streams import in_steps, sha256_and_rewind
from reconciliation import exceptions, returns
from reconciliation import policy as recon_policy
from reconciliation import readers as formats
from reconciliation.matcher import AGREEING, Action, Decision, KnownTransfer, Outcome, match_entry

LINES_PER_STEP = 5_000
ITEM_COLUMNS = ["statement_id", "line_no", "reference", "amount_centimes", "currency",
                "transfer_id", "outcome", "detail", "value_date"]
EXCEPTION_COLUMNS = ["type", "status", "partner_code", "program", "period", "statement_id",
                     "line_no", "transfer_id", "reference", "amount_centimes", "currency",
                     "detail", "since", "due_at", "created_at"]


@dataclass
class ReconReport:
    statement_id: int
    duplicate_of: int | None = None
    lines: int = 0
    outcomes: Counter = field(default_factory=Counter)
    by_batch: dict[int, Counter] = field(default_factory=dict)
    balance_difference: int | None = None
    confirmed_paid: int = 0
    returns_booked: int = 0
    expected_closed: int = 0

    def as_dict(self) -> dict:
        return {"statement_id": self.statement_id, "duplicate_of": self.duplicate_of,
                "lines": self.lines, "matched": self.outcomes.get(Outcome.MATCHED, 0),
                "returned": self.outcomes.get(Outcome.RETURNED, 0),
                "exceptions": {o.value: self.outcomes.get(o, 0) for o in Outcome
                               if o not in AGREEING},
                "balance_difference_centimes": self.balance_difference,
                "confirmed_paid": self.confirmed_paid, "returns_booked": self.returns_booked,
                "expected_closed": self.expected_closed,
                "by_batch": {str(b): dict(c) for b, c in sorted(self.by_batch.items())}}


@dataclass(frozen=True)
class _Known:
    transfer: KnownTransfer
    batch_id: int
    program: str
    period: str


def reconcile(svc: Services, partner_code: str, stream: BinaryIO, filename: str,
              actor: Actor, format_name: str = "csv", now: datetime | None = None) -> ReconReport:
    """Raises StatementError (naming the line or element) for a bad file, and
    UnknownPartner; either way nothing changes."""
    actor.require(Role.MAKER, Role.APPROVER, Role.AUDITOR)
    svc.partner(partner_code)
    read = formats.reader(format_name)
    checksum = sha256_and_rewind(stream)
    now = now or utcnow()
    with svc.uow() as session:
        previous = session.execute(select(Statement.id).where(Statement.checksum == checksum)
                                   ).scalar_one_or_none()
        if previous is not None:
            return ReconReport(previous, duplicate_of=previous)
        statement = Statement(partner_code=partner_code, filename=filename[-255:],
                              checksum=checksum, line_count=0, total_centimes=0,
                              imported_by=actor.username, format=format_name)
        session.add(statement)
        session.flush()
        report = ReconReport(statement.id)
        summary = StatementSummary()
        # A bad entry raises mid-way: the unit of work rolls back, nothing changes.
        _match_entries(session, partner_code, statement.id, read(stream, summary), report, now)
        statement.line_count = summary.entries
        statement.total_centimes = summary.payments_centimes + summary.returns_centimes
        statement.opening_balance_centimes = summary.opening_balance_centimes
        statement.closing_balance_centimes = summary.closing_balance_centimes
        difference = summary.balance_difference()
        statement.balance_difference_centimes = report.balance_difference = difference
        if difference:
            _open_balance_exception(session, statement, summary, difference, now)
            report.outcomes[Outcome.BALANCE_DIFFERENCE] += 1
        sla = recon_policy.statement_sla_days(svc.partners, partner_code)
        _expected(session, partner_code, statement.id, summary.to_date, sla, report, now)
        exceptions.escalate(session, now)
        audit.record(session, actor.username, "statement.reconcile", "statement", statement.id,
                     {"partner": partner_code, "format": format_name, "lines": report.lines,
                      "outcomes": {k.value: v for k, v in report.outcomes.items()}})
        session.commit()
        return report


def _among(session: Session, column, values: list):
    """`column IN values`: one array parameter on PostgreSQL (a 5,000-item IN
    list costs more to build and parse than to run), a plain IN on SQLite."""
    if session.get_bind().dialect.name == "postgresql":
        return column == any_(bindparam(None, values, type_=ARRAY(column.type)))
    return column.in_(values)


def _known(session: Session, partner_code: str, refs: list[str]) -> dict[str, _Known]:
    rows = session.execute(
        select(Transfer.reference, Transfer.id, Transfer.amount_centimes, Transfer.currency,
               Transfer.status, Transfer.recon_outcome, FundReturn.id, Transfer.batch_id,
               PaymentInstruction.program, PaymentInstruction.period)
        .join(PaymentInstruction, PaymentInstruction.id == Transfer.instruction_id)
        .outerjoin(FundReturn, FundReturn.transfer_id == Transfer.id)
        .where(Transfer.partner_code == partner_code, _among(session, Transfer.reference, refs)))
    return {ref: _Known(KnownTransfer(tid, amount, currency, status, outcome, returned is not None),
                        batch_id, program, period)
            for ref, tid, amount, currency, status, outcome, returned, batch_id, program, period
            in rows}


def _match_entries(session: Session, partner_code: str, statement_id: int,
                   entries: Iterable[StatementEntry], report: ReconReport, now: datetime) -> None:
    unknown_seen: set[str] = set()   # unknown references only: memory stays small
    for step in in_steps(entries, LINES_PER_STEP):
        report.lines += len(step)
        known = _known(session, partner_code, list({e.reference for e in step}))
        seen_here: set[tuple[str, EntryKind]] = set()
        items, excs = [], []
        outcome_ids: dict[str, list[int]] = {}
        to_confirm: list[int] = []
        was_missing: list[int] = []
        # return reason -> transfer id -> its status before the return
        to_return: dict[str | None, dict[int, str]] = {}
        for entry in step:
            hit = known.get(entry.reference)
            key = (entry.reference, entry.kind)
            seen = key in seen_here or (hit is None and entry.reference in unknown_seen)
            decision = match_entry(entry.reference, entry.amount_centimes, entry.currency,
                                   entry.kind, hit.transfer if hit else None, seen)
            if hit is None:
                unknown_seen.add(entry.reference)
            seen_here.add(key)
            report.outcomes[decision.outcome] += 1
            if hit is not None:
                report.by_batch.setdefault(hit.batch_id, Counter())[decision.outcome.value] += 1
                if entry.kind == EntryKind.PAYMENT and decision.outcome != Outcome.DUPLICATE_LINE:
                    outcome_ids.setdefault(decision.outcome.value, []).append(hit.transfer.id)
                    if hit.transfer.recon_outcome == Outcome.MISSING_FROM_STATEMENT.value:
                        was_missing.append(hit.transfer.id)
                if decision.action == Action.CONFIRM_PAID:
                    to_confirm.append(hit.transfer.id)
                elif decision.action == Action.BOOK_RETURN:
                    by_id = to_return.setdefault(entry.reason_code, {})
                    by_id[hit.transfer.id] = hit.transfer.status
            items.append((statement_id, entry.line_no, entry.reference[:32], entry.amount_centimes,
                          entry.currency, hit.transfer.id if hit else None,
                          decision.outcome.value, _detail(decision, entry), entry.value_date))
            if decision.outcome not in AGREEING:
                excs.append(_exception_row(partner_code, statement_id, entry, hit, decision, now))
        write_rows(session, ReconItem.__table__, ITEM_COLUMNS, items)
        write_rows(session, ReconException.__table__, EXCEPTION_COLUMNS, excs)
        for outcome, ids in outcome_ids.items():
            session.execute(update(Transfer).where(_among(session, Transfer.id, ids))
                            .values(recon_outcome=outcome),
                            execution_options={"synchronize_session": False})
        exceptions.close_matched_later(session, was_missing, statement_id)
        report.expected_closed += len(was_missing)
        if to_confirm:
            moved = transitions.move(session, to_confirm, TransferStatus.PAID, source="partner",
                                     actor=partner_code,
                                     detail=f"paid per statement {statement_id}",
                                     partner_truth=True)
            ledger.post_payments(session, moved, f"{len(moved)} payment(s) confirmed by "
                                                 f"{partner_code}'s statement {statement_id}")
            report.confirmed_paid += len(moved)
        for reason, group in to_return.items():
            report.returns_booked += len(returns.book_returns(
                session, partner_code, group, source="statement", reason_code=reason))


def _detail(decision: Decision, entry: StatementEntry) -> str | None:
    detail = decision.detail
    if entry.locator and decision.outcome not in AGREEING:
        detail = f"{entry.locator}: {detail}" if detail else entry.locator
    return detail[:200] if detail else None


def _exception_row(partner_code: str, statement_id: int, entry: StatementEntry,
                   hit: _Known | None, decision: Decision, now: datetime) -> tuple:
    return (decision.outcome.value, ExceptionStatus.OPEN.value, partner_code,
            hit.program if hit else None,
            hit.period if hit else None, statement_id, entry.line_no,
            hit.transfer.id if hit else None, entry.reference[:32],
            decision.exposure(entry.amount_centimes, hit.transfer if hit else None),
            entry.currency, _detail(decision, entry), now, None, now)


def _open_balance_exception(session: Session, statement: Statement, summary: StatementSummary,
                            difference: int, now: datetime) -> None:
    session.execute(ReconException.__table__.insert(), [{
        "type": Outcome.BALANCE_DIFFERENCE.value, "status": ExceptionStatus.OPEN.value,
        "partner_code": statement.partner_code, "statement_id": statement.id,
        "amount_centimes": -difference, "currency": summary.currency or "MAD",
        "detail": (f"opening {summary.opening_balance_centimes} - payments "
                   f"{summary.payments_centimes} + returns {summary.returns_centimes} != closing "
                   f"{summary.closing_balance_centimes} (difference {difference})")[:200],
        "since": now, "created_at": now}])


def _expected(session: Session, partner_code: str, statement_id: int, to_date: date | None,
              sla_days: int, report: ReconReport, now: datetime) -> None:
    """Payments on our side that no statement carried yet and that this one
    should have (paid before its end): each becomes an expected item."""
    paid_at = func.max(TransferEvent.at).label("paid_at")
    stmt = (select(Transfer.id, Transfer.reference, Transfer.amount_centimes, Transfer.currency,
                   Transfer.batch_id, PaymentInstruction.program, PaymentInstruction.period,
                   paid_at)
            .join(PaymentInstruction, PaymentInstruction.id == Transfer.instruction_id)
            .join(TransferEvent, (TransferEvent.transfer_id == Transfer.id)
                  & (TransferEvent.to_status == TransferStatus.PAID.value))
            .where(Transfer.partner_code == partner_code,
                   Transfer.status == TransferStatus.PAID.value,
                   Transfer.recon_outcome.is_(None))
            .group_by(Transfer.id, PaymentInstruction.program, PaymentInstruction.period))
    if to_date is not None:
        end = datetime.combine(to_date + timedelta(days=1), time(), tzinfo=UTC)
        stmt = stmt.having(func.max(TransferEvent.at) < end)
    missing = session.execute(stmt).all()
    if not missing:
        return
    outcome = Outcome.MISSING_FROM_STATEMENT
    for step in in_steps(missing, LINES_PER_STEP):
        write_rows(session, ReconItem.__table__, ITEM_COLUMNS, [
            (statement_id, None, r.reference, r.amount_centimes, r.currency, r.id, outcome.value,
             "paid in our records, not on the statement", None) for r in step])
        write_rows(session, ReconException.__table__, EXCEPTION_COLUMNS, [
            (outcome.value, ExceptionStatus.EXPECTED.value, partner_code, r.program, r.period,
             statement_id, None,
             r.id, r.reference, -r.amount_centimes, r.currency,
             "paid in our records, not on the statement", as_utc(r.paid_at),
             exceptions.due_date(as_utc(r.paid_at), sla_days), now) for r in step])
        session.execute(update(Transfer).where(Transfer.id.in_([r.id for r in step]))
                        .values(recon_outcome=outcome.value),
                        execution_options={"synchronize_session": False})
    report.outcomes[outcome] += len(missing)
    for r in missing:
        report.by_batch.setdefault(r.batch_id, Counter())[outcome.value] += 1

