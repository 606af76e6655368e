"""Dead letters: outbox items whose retries are spent (or that failed for a
reason a retry cannot fix). Officers see them and, once the cause is fixed,
put them back: the item is pending again with a fresh attempt count, and the
dispatch job (idempotent) picks up whatever is still queued or unknown."""
from __future__ import annotations

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from disbursement.db.models import Batch, OutboxItem, Transfer, as_utc, utcnow
from disbursement.domain.errors import NotFound
from disbursement.domain.states import OutboxStatus, Role
from disbursement.services.dispatch.chunks import refresh_dead_letter_gauge
from disbursement.services.officers import audit
from disbursement.services.officers.users import Actor
from disbursement.services.ports import JobName, Services


class DeadLetterNotFound(NotFound, LookupError):
    """Raised when no dead outbox item has the given id (unknown, or not dead)."""


def list_dead(session: Session) -> list[dict]:
    transfers = (select(func.count()).where(Transfer.batch_id == OutboxItem.batch_id,
                                            Transfer.chunk_no == OutboxItem.chunk_no)
                 .scalar_subquery())
    rows = session.execute(
        select(OutboxItem, Batch.partner_code, transfers.label("transfers"))
        .join(Batch, Batch.id == OutboxItem.batch_id)
        .where(OutboxItem.status == OutboxStatus.DEAD.value).order_by(OutboxItem.id))
    return [{"id": item.id, "kind": item.kind, "batch_id": item.batch_id,
             "chunk_no": item.chunk_no, "partner": partner, "transfers": count,
             "attempts": item.attempts, "last_error": item.last_error,
             "dead_since": as_utc(item.updated_at).isoformat()}
            for item, partner, count in rows]


def retry(svc: Services, outbox_id: int, actor: Actor) -> None:
    actor.require(Role.MAKER, Role.APPROVER, Role.ADMIN)
    with svc.uow() as session:
        previous = session.execute(select(OutboxItem.attempts, OutboxItem.last_error).where(
            OutboxItem.id == outbox_id, OutboxItem.status == OutboxStatus.DEAD.value)).first()
        if previous is None:
            raise DeadLetterNotFound(f"no dead letter {outbox_id}")
        session.execute(update(OutboxItem).where(OutboxItem.id == outbox_id,
                                                 OutboxItem.status == OutboxStatus.DEAD.value)
                        .values(status=OutboxStatus.PENDING.value, attempts=0, next_attempt_at=None,
                                updated_at=utcnow()))
        audit.record(session, actor.username, "dead_letter.retry", "outbox", outbox_id,
                     {"attempts": previous.attempts, "last_error": previous.last_error})
        session.commit()
    refresh_dead_letter_gauge(svc)
    svc.queue.enqueue(JobName.DISPATCH_CHUNK, outbox_id)
