"""The partners' books beside ours, transfer by transfer (issue 10): what each
partner last said of a transfer (`partner_status`), what its statements say
(the outcome of their payment lines) and what our ledger booked
(`payment_posting_id`), against our transfer states. The kinds are
`disbursement.domain.books.Disagreement`.

Set-based: one query per kind for the counts (per partner) and one for the
first references, whatever the number of transfers. Each kind but one reads a
partial index that holds only its disagreements (`BOOKS_WHERE`); "missing
from a statement" starts from the unsettled exceptions, which are few.

A payment missing from a statement counts only once it is sound to say so: a
statement whose period ended after the payment left it out (so a statement
that does not yet cover the payment's day proves nothing), and the partner's
statement SLA has passed since (`due_at`), with no later statement carrying it.
An officer's correction booked in the ledger for the statement's exception (a
write-off or a correction posting) settles a statement's disagreement. An
amount or currency that differs is an exception of its own in the queue, not
a disagreement on whether the transfer was paid.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Select, exists, func, or_, select, text
from sqlalchemy.orm import Session

from disbursement.db.models import PaymentInstruction, Transfer, utcnow
from disbursement.db.models.core import BOOKS_WHERE
from disbursement.db.models.ledger import ReconException
from disbursement.domain.books import MISSING_FROM_STATEMENT, Disagreement
from disbursement.domain.states import ExceptionStatus, TransferStatus

# How many references the check names per kind (the counts cover them all).
FIRST_REFERENCES = 20
# The unsettled "missing from the statement" items (the partial unique index's
# condition, constants inlined so that PostgreSQL sees the index applies).
_MISSING_UNSETTLED = text(f"recon_exceptions.type = '{MISSING_FROM_STATEMENT}' "
                          "AND recon_exceptions.resolution IS NULL")


@dataclass
class BooksReport:
    """counts: partner -> kind -> transfers; first: kind -> first references
    (by transfer id), at most `FIRST_REFERENCES` each."""
    counts: dict[str, dict[str, int]] = field(default_factory=dict)
    first: dict[str, list[str]] = field(default_factory=dict)

    @property
    def agree(self) -> bool:
        return not any(n for by_kind in self.counts.values() for n in by_kind.values())

    def by_kind(self) -> dict[str, int]:
        totals = {kind.value: 0 for kind in Disagreement}
        for by_kind in self.counts.values():
            for kind, n in by_kind.items():
                totals[kind] += n
        return totals

    def as_dict(self) -> dict:
        return {"agree": self.agree, "by_kind": self.by_kind(), "by_partner": self.counts,
                "first_references": self.first}


@dataclass(frozen=True)
class _Scope:
    program: str | None = None
    period: str | None = None
    now: datetime | None = None


def _disagreeing(kind: Disagreement, scope: _Scope) -> Select:
    """The transfers of one kind: (id, partner_code, reference)."""
    stmt = select(Transfer.id, Transfer.partner_code, Transfer.reference)
    if kind == Disagreement.PAID_HERE_MISSING_FROM_STATEMENT:
        stmt = (stmt.join(ReconException, ReconException.transfer_id == Transfer.id)
                .where(_MISSING_UNSETTLED, Transfer.status == TransferStatus.PAID.value,
                       or_(ReconException.status == ExceptionStatus.OPEN.value,
                           ReconException.due_at <= (scope.now or utcnow()))))
    else:
        stmt = stmt.where(text(BOOKS_WHERE[kind]))
    if kind == Disagreement.ON_STATEMENT_NOT_PAID_HERE:
        stmt = stmt.where(~exists().where(ReconException.transfer_id == Transfer.id,
                                          ReconException.type == Transfer.recon_outcome,
                                          ReconException.posting_id.is_not(None)))
    if scope.program or scope.period:
        # A scalar subquery, one primary-key lookup per disagreeing transfer:
        # PostgreSQL cannot estimate how few rows a partial index holds, and
        # given a join or IN it hashes every instruction of the cycle (16 s at
        # 4 million, against 0.1 s this way).
        of_cycle = select(PaymentInstruction.id).where(
            PaymentInstruction.id == Transfer.instruction_id)
        if scope.program:
            of_cycle = of_cycle.where(PaymentInstruction.program == scope.program)
        if scope.period:
            of_cycle = of_cycle.where(PaymentInstruction.period == scope.period)
        stmt = stmt.where(of_cycle.scalar_subquery().is_not(None))
    return stmt


def counts(session: Session, program: str | None = None, period: str | None = None,
           now: datetime | None = None) -> dict[str, dict[str, int]]:
    """partner -> kind -> transfers on which the books disagree (kinds with
    none are left out): one GROUP BY per kind. Read by the scrape-time gauge."""
    scope = _Scope(program, period, now)
    out: dict[str, dict[str, int]] = {}
    for kind in Disagreement:
        found = _disagreeing(kind, scope).subquery()
        for partner, n in session.execute(select(found.c.partner_code, func.count())
                                          .group_by(found.c.partner_code)):
            out.setdefault(partner, {})[kind.value] = n
    return out


def compare(session: Session, program: str | None = None, period: str | None = None,
            now: datetime | None = None, first: int = FIRST_REFERENCES) -> BooksReport:
    """The counts and, per kind found, the first `first` references."""
    report = BooksReport(counts(session, program, period, now))
    scope = _Scope(program, period, now)
    for kind, total in report.by_kind().items():
        if total:
            # Materialized first: ordered by id, PostgreSQL would walk the
            # primary key through millions of rows, taking the partial index
            # for far fuller than it is.
            found = _disagreeing(Disagreement(kind), scope).cte("found").prefix_with(
                "MATERIALIZED")
            stmt = select(found.c.reference).order_by(found.c.id).limit(first)
            report.first[kind] = list(session.execute(stmt).scalars())
    return report
