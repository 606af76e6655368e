"""Reconciliation of a partner's settlement statement against our transfers."""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import BinaryIO, Iterable

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.orm import Session

from disbursement.db.models import ReconItem, Statement, Transfer
from disbursement.domain.states import Role, TransferStatus
from disbursement.services import audit
from disbursement.services.context import Services
from disbursement.services.users import Actor
from disbursement.streams import in_steps, sha256_and_rewind
from reconciliation.matcher import KnownTransfer, Outcome, match_line
from reconciliation.statement_csv import StatementLine, Trailer, read_lines

LINES_PER_STEP = 5_000


@dataclass
class ReconReport:
    statement_id: int
    duplicate_of: int | None = None
    lines: int = 0
    outcomes: Counter = field(default_factory=Counter)
    by_batch: dict[int, Counter] = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {"statement_id": self.statement_id, "duplicate_of": self.duplicate_of,
                "lines": self.lines, "matched": self.outcomes.get(Outcome.MATCHED, 0),
                "exceptions": {o.value: self.outcomes.get(o, 0) for o in Outcome
                               if o != Outcome.MATCHED},
                "by_batch": {str(b): dict(c) for b, c in sorted(self.by_batch.items())}}


def reconcile(svc: Services, partner_code: str, stream: BinaryIO, filename: str,
              actor: Actor) -> ReconReport:
    actor.require(Role.MAKER, Role.APPROVER, Role.AUDITOR)
    svc.partner(partner_code)
    checksum = sha256_and_rewind(stream)
    with svc.uow() as session:
        previous = session.execute(select(Statement.id).where(Statement.checksum == checksum)
                                   ).scalar_one_or_none()
        if previous is not None:
            return ReconReport(previous, duplicate_of=previous)
        trailer = Trailer()
        statement = Statement(partner_code=partner_code, filename=filename[-255:],
                              checksum=checksum, line_count=0, total_centimes=0,
                              imported_by=actor.username)
        session.add(statement)
        session.flush()
        report = ReconReport(statement.id)
        # A bad line or a trailer that disagrees raises mid-way: the unit of
        # work rolls back and the statement changes nothing.
        matched_refs = _match_lines(session, partner_code, statement.id,
                                    read_lines(stream, trailer), report)
        statement.line_count, statement.total_centimes = trailer.count, trailer.total_centimes
        _missing(session, partner_code, statement.id, matched_refs, report)
        audit.record(session, actor.username, "statement.reconcile", "statement", statement.id,
                     {"partner": partner_code, "lines": report.lines,
                      "outcomes": {k.value: v for k, v in report.outcomes.items()}})
        session.commit()
        return report


def _known(session: Session, partner_code: str, refs: list[str]) -> dict[str, tuple[KnownTransfer, int]]:
    rows = session.execute(select(Transfer.reference, Transfer.id, Transfer.amount_centimes,
                                  Transfer.currency, Transfer.status, Transfer.batch_id)
                           .where(Transfer.partner_code == partner_code,
                                  Transfer.reference.in_(refs)))
    return {r.reference: (KnownTransfer(r.id, r.amount_centimes, r.currency, r.status), r.batch_id)
            for r in rows}


def _match_lines(session: Session, partner_code: str, statement_id: int,
                 lines: Iterable[StatementLine], report: ReconReport) -> set[str]:
    seen: set[str] = set()
    for step in in_steps(lines, LINES_PER_STEP):
        report.lines += len(step)
        known = _known(session, partner_code, list({line.reference for line in step}))
        items, marks = [], []
        for line in step:
            transfer, batch_id = known.get(line.reference, (None, None))
            outcome, detail = match_line(line, transfer, line.reference in seen)
            if outcome != Outcome.DUPLICATE_LINE and transfer is not None:
                marks.append({"tid": transfer.id, "outcome": outcome.value})
            seen.add(line.reference)
            report.outcomes[outcome] += 1
            if batch_id is not None:
                report.by_batch.setdefault(batch_id, Counter())[outcome.value] += 1
            items.append({"statement_id": statement_id, "line_no": line.line_no,
                          "reference": line.reference, "amount_centimes": line.amount_centimes,
                          "currency": line.currency,
                          "transfer_id": transfer.id if transfer else None,
                          "outcome": outcome.value, "detail": detail})
        session.execute(insert(ReconItem), items)
        if marks:
            session.execute(update(Transfer.__table__).where(Transfer.__table__.c.id == bindparam("tid"))
                            .values(recon_outcome=bindparam("outcome")), marks)
    return seen


def _missing(session: Session, partner_code: str, statement_id: int, in_statement: set[str],
             report: ReconReport) -> None:
    """Transfers paid on our side, never matched by any statement, absent here."""
    rows = session.execute(select(Transfer.id, Transfer.reference, Transfer.amount_centimes,
                                  Transfer.currency, Transfer.batch_id)
                           .where(Transfer.partner_code == partner_code,
                                  Transfer.status == TransferStatus.PAID.value,
                                  Transfer.recon_outcome.is_(None))).all()
    missing = [r for r in rows if r.reference not in in_statement]
    if not missing:
        return
    outcome = Outcome.MISSING_FROM_STATEMENT
    session.execute(insert(ReconItem), [
        {"statement_id": statement_id, "line_no": None, "reference": r.reference,
         "amount_centimes": r.amount_centimes, "currency": r.currency, "transfer_id": r.id,
         "outcome": outcome.value, "detail": "paid in our records, not on the statement"}
        for r in missing])
    session.execute(update(Transfer.__table__).where(Transfer.__table__.c.id == bindparam("tid"))
                    .values(recon_outcome=outcome.value), [{"tid": r.id} for r in missing])
    report.outcomes[outcome] += len(missing)
    for r in missing:
        report.by_batch.setdefault(r.batch_id, Counter())[outcome.value] += 1
