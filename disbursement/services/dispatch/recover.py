"""`disburse recover` (issue 10): the one command an operator runs after any
fault (a worker killed, Redis flushed or restarted, PostgreSQL restarted, a
partner down). It asks the partners about the transfers in doubt, puts every
pending outbox item back on the queue (those still waiting for their backoff
too), waits for the jobs to run, and counts where each item ended."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import func, select

from disbursement.db.models import OutboxItem
from disbursement.services.dispatch import chunks, recovery
from disbursement.services.ports import Services

# How often the outbox is counted while the jobs run (progress output).
POLL_SECONDS = 0.5


@dataclass
class RecoverReport:
    in_doubt: recovery.RecoveryReport
    enqueued: int
    by_status: dict[str, int]     # the enqueued items' outbox status once the jobs ran
    drained: bool                 # False: the jobs did not all run in time (no worker?)

    def as_dict(self) -> dict:
        return {"in_doubt": self.in_doubt.as_dict(), "enqueued": self.enqueued,
                "by_status": self.by_status, "drained": self.drained}


def recover(svc: Services, progress: Callable[[int], None] | None = None,
            wait_seconds: float = 600) -> RecoverReport:
    """`progress` is called with the number of outbox items settled since its
    last call (done or dead, or pending again with a new backoff)."""
    in_doubt = recovery.query_in_doubt(svc)
    ids = chunks.sweep(svc, include_not_due=True)
    drained, reported = False, 0
    for _ in range(max(1, int(wait_seconds / POLL_SECONDS))):
        try:
            svc.queue.drain(timeout_seconds=POLL_SECONDS)
            drained = True
        except TimeoutError:
            pass
        settled = len(ids) if drained else len(ids) - _count(svc, ids).get("pending", 0)
        if progress and settled > reported:
            progress(settled - reported)
            reported = settled
        if drained:
            break
    return RecoverReport(in_doubt, len(ids), _count(svc, ids), drained)


def _count(svc: Services, ids: list[int]) -> dict[str, int]:
    if not ids:
        return {}
    with svc.uow() as session:
        rows = session.execute(select(OutboxItem.status, func.count())
                               .where(OutboxItem.id.in_(ids))
                               .group_by(OutboxItem.status)).all()
    return dict(rows)
