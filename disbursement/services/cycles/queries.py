"""Read-only views of cycles for the API and the console: the web never
queries tables itself, it calls these inside its unit of work."""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from disbursement.db.models import Batch, Cycle, Transfer


@dataclass(frozen=True)
class CycleOverview:
    """A planned cycle: its transfers counted by status and its batches."""
    id: int
    transfers_by_status: dict[str, int]
    batches: list[dict]


def cycle_overview(session: Session, program: str, period: str) -> CycleOverview | None:
    """The cycle of a program for a period, or None when it has not been planned."""
    cycle_id = session.execute(select(Cycle.id).where(
        Cycle.program == program, Cycle.period == period)).scalar_one_or_none()
    if cycle_id is None:
        return None
    by_status = session.execute(
        select(Transfer.status, func.count()).join(Batch, Batch.id == Transfer.batch_id)
        .where(Batch.cycle_id == cycle_id).group_by(Transfer.status)).all()
    batches = session.execute(
        select(Batch.id, Batch.partner_code, Batch.status, Batch.transfer_count,
               Batch.total_centimes)
        .where(Batch.cycle_id == cycle_id).order_by(Batch.id)).all()
    return CycleOverview(id=cycle_id,
                         transfers_by_status=dict(by_status),
                         batches=[dict(b._mapping) for b in batches])


def cycle_program(session: Session, cycle_id: int) -> str | None:
    """The program a cycle belongs to, or None when there is no such cycle."""
    return session.execute(select(Cycle.program).where(Cycle.id == cycle_id)).scalar_one_or_none()
