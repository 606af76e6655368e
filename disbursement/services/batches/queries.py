"""Read-only views of batches for the API, the console and the CLI: the
adapters never query tables themselves, they call these inside their unit of
work. Rows come back as loaded `Batch` objects (the session does not expire
them on close), which the adapters render."""
from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Row, func, select
from sqlalchemy.orm import Session

from disbursement.db.models import Batch as Batch  # re-exported: the rows adapters render
from disbursement.db.models import BatchDecision as BatchDecision
from disbursement.db.models import Cycle, Transfer


def batch_page(session: Session, after: int, limit: int, status: str | None = None,
               program: str | None = None, period: str | None = None) -> Sequence[Batch]:
    """One keyset page of batches with an id above `after`, optionally of one
    status and one cycle (program and period together)."""
    stmt = select(Batch).where(Batch.id > after).order_by(Batch.id).limit(limit)
    if status:
        stmt = stmt.where(Batch.status == status)
    if program and period:
        stmt = stmt.join(Cycle, Cycle.id == Batch.cycle_id).where(
            Cycle.program == program, Cycle.period == period)
    return session.execute(stmt).scalars().all()


def all_batches(session: Session, status: str | None = None) -> Sequence[Batch]:
    """Every batch (of one status when given), oldest first."""
    stmt = select(Batch).order_by(Batch.id)
    if status:
        stmt = stmt.where(Batch.status == status)
    return session.execute(stmt).scalars().all()


def batch_with_decisions(session: Session,
                         batch_id: int) -> tuple[Batch, Sequence[BatchDecision]] | None:
    """A batch and its maker-checker decisions in order, or None when absent."""
    batch = session.get(Batch, batch_id)
    if batch is None:
        return None
    decisions = session.execute(select(BatchDecision).where(BatchDecision.batch_id == batch_id)
                                .order_by(BatchDecision.id)).scalars().all()
    return batch, decisions


def transfers_by_status(session: Session, batch_id: int) -> dict[str, int]:
    """A batch's transfers counted by status (dispatch progress)."""
    rows = session.execute(select(Transfer.status, func.count())
                           .where(Transfer.batch_id == batch_id)
                           .group_by(Transfer.status)).all()
    return dict(rows)


def recent_batches(session: Session, limit: int) -> Sequence[Row[Batch, str, str]]:
    """The latest batches, newest first, each with its cycle's program and period."""
    return session.execute(select(Batch, Cycle.program, Cycle.period)
                           .join(Cycle, Cycle.id == Batch.cycle_id)
                           .order_by(Batch.id.desc()).limit(limit)).all()
