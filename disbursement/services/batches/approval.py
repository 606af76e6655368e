"""Maker-checker: a maker submits, a different approver approves (two
different approvers above the configured total), then the batch is released:
transfers move to `queued` and the dispatch work is written to the outbox in
the same transaction. Every decision is an audit row."""
from __future__ import annotations

from sqlalchemy import distinct, func, select, update
from sqlalchemy.orm import Session

from disbursement.db.models import Batch, BatchDecision, Cycle, OutboxItem, Transfer, utcnow
from disbursement.db.rowcount import rows_changed
from disbursement.db.upsert import insert_ignore, insert_ignore_one
from disbursement.domain.errors import BadInput, Conflict, NotFound, Refused
from disbursement.domain.states import BatchStatus, OutboxStatus, Role, TransferStatus
from disbursement.services.ledger import postings as ledger
from disbursement.services.officers import audit
from disbursement.services.officers.users import Actor
from disbursement.services.ports import JobName, Services
from disbursement.services.tracking import transitions

DISPATCH_KIND = "dispatch_chunk"


class BatchNotFound(NotFound, LookupError):
    """Raised when no batch has the given id."""


class BatchStateConflict(Conflict):
    """Raised when a decision does not fit the batch's current state (approving a
    draft, releasing an unapproved batch...)."""


class SelfApprovalRefused(Refused):
    """Raised when the maker who created or submitted a batch tries to approve it."""


class MissingReason(BadInput, ValueError):
    """Raised when a rejection comes without a reason."""


def _load(session: Session, batch_id: int, lock: bool = False) -> Batch:
    stmt = select(Batch).where(Batch.id == batch_id)
    batch = session.execute(stmt.with_for_update() if lock else stmt).scalar_one_or_none()
    if batch is None:
        raise BatchNotFound(f"batch {batch_id} not found")
    return batch


def _decide(session: Session, batch: Batch, actor: Actor, decision: str,
            reason: str | None = None) -> bool:
    """Records a decision once; False when this user already made it."""
    inserted = insert_ignore_one(session, BatchDecision.__table__, {
        "batch_id": batch.id, "username": actor.username, "decision": decision,
        "reason": reason, "at": utcnow()}, key=["batch_id", "username", "decision"])
    if inserted:
        audit.record(session, actor.username, f"batch.{decision}", "batch", batch.id,
                     {"reason": reason, "total_centimes": batch.total_centimes,
                      "transfers": batch.transfer_count})
    return inserted


def _set_status(session: Session, batch: Batch, expected: BatchStatus, new: BatchStatus,
                **values) -> None:
    changed = rows_changed(session, update(Batch).where(Batch.id == batch.id,
                                                        Batch.status == expected.value)
                           .values(status=new.value, updated_at=utcnow(), **values))
    if changed != 1:
        raise BatchStateConflict(f"batch {batch.id} is no longer {expected.value}")


def submit(svc: Services, batch_id: int, actor: Actor) -> Batch:
    actor.require(Role.MAKER)
    with svc.uow() as session:
        batch = _load(session, batch_id, lock=True)
        if batch.status == BatchStatus.SUBMITTED.value:
            return batch
        if batch.status != BatchStatus.DRAFT.value:
            raise BatchStateConflict(f"batch {batch_id} is {batch.status}, "
                                     "only a draft can be submitted")
        _set_status(session, batch, BatchStatus.DRAFT, BatchStatus.SUBMITTED,
                    submitted_by=actor.username)
        _decide(session, batch, actor, "submit")
        session.commit()
        return _load(session, batch_id)


def approve(svc: Services, batch_id: int, actor: Actor) -> Batch:
    actor.require(Role.APPROVER)
    with svc.uow() as session:
        batch = _load(session, batch_id, lock=True)
        if batch.status != BatchStatus.SUBMITTED.value:
            raise BatchStateConflict(f"batch {batch_id} is {batch.status}, "
                                     "only a submitted batch can be approved")
        if actor.username in (batch.created_by, batch.submitted_by):
            raise SelfApprovalRefused(f"{actor.username} made batch {batch_id} "
                                      "and cannot approve it")
        _decide(session, batch, actor, "approve")
        approvers = session.execute(select(func.count(distinct(BatchDecision.username))).where(
            BatchDecision.batch_id == batch_id, BatchDecision.decision == "approve")).scalar_one()
        if approvers >= batch.approvals_required:
            _set_status(session, batch, BatchStatus.SUBMITTED, BatchStatus.APPROVED)
            transitions.move_batch(session, batch_id, TransferStatus.PENDING_APPROVAL,
                                   TransferStatus.APPROVED, source="officer",
                                   actor=actor.username, detail=f"batch {batch_id} approved")
        session.commit()
        return _load(session, batch_id)


def reject(svc: Services, batch_id: int, actor: Actor, reason: str) -> Batch:
    actor.require(Role.APPROVER)
    if not reason or not reason.strip():
        raise MissingReason("a rejection needs a reason")
    with svc.uow() as session:
        batch = _load(session, batch_id, lock=True)
        if actor.username in (batch.created_by, batch.submitted_by):
            raise SelfApprovalRefused(f"{actor.username} made batch {batch_id} "
                                      "and cannot decide on it")
        _set_status(session, batch, BatchStatus.SUBMITTED, BatchStatus.REJECTED)
        _decide(session, batch, actor, "reject", reason.strip())
        transitions.move_batch(session, batch_id, TransferStatus.PENDING_APPROVAL,
                               TransferStatus.CANCELLED, source="officer", actor=actor.username,
                               detail=f"batch rejected: {reason.strip()[:200]}")
        session.commit()
        return _load(session, batch_id)


def release(svc: Services, batch_id: int, actor: Actor) -> list[int]:
    """Releases an approved batch; returns the outbox ids enqueued. Releasing a
    batch already released enqueues nothing and changes nothing."""
    actor.require(Role.MAKER, Role.APPROVER)
    with svc.uow() as session:
        batch = _load(session, batch_id, lock=True)
        if batch.status == BatchStatus.RELEASED.value:
            return []
        if batch.status != BatchStatus.APPROVED.value:
            raise BatchStateConflict(f"batch {batch_id} is {batch.status}: "
                                     "it must be approved before release")
        _set_status(session, batch, BatchStatus.APPROVED, BatchStatus.RELEASED,
                    released_by=actor.username)
        _decide(session, batch, actor, "release")
        transitions.move_batch(session, batch_id, TransferStatus.APPROVED, TransferStatus.QUEUED,
                               source="officer", actor=actor.username,
                               detail=f"batch {batch_id} released")
        chunks = session.execute(select(Transfer.chunk_no).distinct().where(
            Transfer.batch_id == batch_id, Transfer.status == TransferStatus.QUEUED.value)
            .order_by(Transfer.chunk_no)).scalars().all()
        insert_ignore(session, OutboxItem.__table__, [
            {"kind": DISPATCH_KIND, "batch_id": batch_id, "chunk_no": c,
             "status": OutboxStatus.PENDING.value, "attempts": 0, "created_at": utcnow(),
             "updated_at": utcnow()} for c in chunks],
            key=["kind", "batch_id", "chunk_no"])
        released = session.execute(
            select(func.coalesce(func.sum(Transfer.amount_centimes), 0))
            .where(Transfer.batch_id == batch_id,
                   Transfer.status == TransferStatus.QUEUED.value)).scalar_one()
        cycle = session.get_one(Cycle, batch.cycle_id)
        ledger.post_release(session, cycle.program, cycle.period, batch.partner_code,
                            int(released), batch_id)
        outbox_ids = session.execute(select(OutboxItem.id).where(
            OutboxItem.batch_id == batch_id, OutboxItem.kind == DISPATCH_KIND,
            OutboxItem.status == OutboxStatus.PENDING.value)).scalars().all()
        session.commit()
    for outbox_id in outbox_ids:
        svc.queue.enqueue(JobName.DISPATCH_CHUNK, outbox_id)
    return list(outbox_ids)
