"""Dispatch of one outbox chunk through the partner's connector.

Idempotent: only transfers still `queued` or `unknown` in the chunk are
touched, so running the same job twice sends nothing the second time. An
`unknown` transfer (we sent, but never heard back) is never resent blind: the
partner is asked first, and only its "never received" allows a resend, with the
same reference (which is also the partner's idempotency key).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from connectors.base import (AmbiguousOutcome, Connector, OutboundTransfer, PartnerStatus,
                             RetryableError, TerminalError)
from disbursement import metrics
from disbursement.db.models import Household, OutboxItem, PaymentInstruction, Transfer, utcnow
from disbursement.domain.states import TransferStatus as S
from disbursement.services import ledger, notify, transitions
from disbursement.services.context import Services

log = logging.getLogger(__name__)
DEAD_AFTER_ATTEMPTS = 8

# What a partner's answer to "what do you know of it?" means for an unknown transfer.
STATUS_TARGET = {
    PartnerStatus.RECEIVED: S.SENT,
    PartnerStatus.AVAILABLE: S.AVAILABLE,
    PartnerStatus.PAID: S.PAID,
    PartnerStatus.REJECTED: S.REJECTED,
    PartnerStatus.NOT_FOUND: S.QUEUED,
}


@dataclass
class DispatchOutcome:
    outbox_id: int
    sent: int = 0
    rejected: int = 0
    resolved_unknown: int = 0
    skipped: bool = False


def dispatch_chunk(svc: Services, outbox_id: int) -> DispatchOutcome:
    outcome = DispatchOutcome(outbox_id)
    with svc.uow() as session:
        item = session.get(OutboxItem, outbox_id)
        if item is None or item.status != "pending" or item.kind == notify.NOTIFY_KIND:
            outcome.skipped = True
            return outcome
        batch_id, chunk_no = item.batch_id, item.chunk_no
        rows = _pending_rows(session, batch_id, chunk_no)
    if not rows:
        _finish(svc, outbox_id, "done", None)
        return outcome
    partner = rows[0].partner_code
    connector = svc.connector(partner)
    try:
        unknown = [r for r in rows if r.status == S.UNKNOWN.value]
        if unknown:
            _resolve_unknown(svc, connector, unknown, outcome)
            with svc.uow() as session:
                rows = _pending_rows(session, batch_id, chunk_no)
        queued = [r for r in rows if r.status == S.QUEUED.value]
        if queued:
            _send(svc, connector, queued, outcome)
    except (RetryableError, AmbiguousOutcome, TerminalError) as exc:
        metrics.DISPATCH_ERRORS.labels(partner=partner, kind=type(exc).__name__).inc()
        error = f"{type(exc).__name__}: {exc}"
        attempts = _record_failure(svc, outbox_id, error)
        if isinstance(exc, TerminalError) or attempts >= DEAD_AFTER_ATTEMPTS:
            _finish(svc, outbox_id, "dead", error)
        else:
            metrics.DISPATCH_RETRIES.labels(partner=partner).inc()
        raise
    finally:
        getattr(connector, "close", lambda: None)()
    _finish(svc, outbox_id, "done", None)
    return outcome


def _pending_rows(session: Session, batch_id: int, chunk_no: int):
    stmt = (select(Transfer.id, Transfer.reference, Transfer.status, Transfer.partner_code,
                   Transfer.amount_centimes, Transfer.currency, Transfer.channel,
                   Transfer.service_point, Transfer.batch_id, Transfer.chunk_no,
                   Household.head_name, Household.region_code, Household.pii)
            .join(PaymentInstruction, PaymentInstruction.id == Transfer.instruction_id)
            .join(Household, Household.id == PaymentInstruction.household_pk)
            .where(Transfer.batch_id == batch_id, Transfer.chunk_no == chunk_no,
                   Transfer.status.in_([S.QUEUED.value, S.UNKNOWN.value]))
            .order_by(Transfer.id))
    return session.execute(stmt).all()


def _resolve_unknown(svc: Services, connector: Connector, rows, outcome: DispatchOutcome) -> None:
    answers = connector.status([r.reference for r in rows])
    by_target: dict[S, list[int]] = {}
    for row in rows:
        answer = answers.get(row.reference, PartnerStatus.NOT_FOUND)
        target = STATUS_TARGET.get(answer)
        if target is not None:
            by_target.setdefault(target, []).append(row.id)
    with svc.uow() as session:
        for target, ids in by_target.items():
            moved = transitions.move(session, ids, target, source="dispatch",
                                     actor=connector.partner_code,
                                     detail="status asked after unknown outcome",
                                     sources=[S.UNKNOWN])
            outcome.resolved_unknown += len(moved)
            if target == S.PAID and moved:
                ledger.post_payments(session, moved, "paid, learned from a status query")
        session.commit()


def _send(svc: Services, connector: Connector, rows, outcome: DispatchOutcome) -> None:
    payload = []
    for row in rows:
        pii = svc.vault.open(row.pii)
        payload.append(OutboundTransfer(
            reference=row.reference, amount_centimes=row.amount_centimes, currency=row.currency,
            channel=row.channel, beneficiary_name=row.head_name, national_id=pii["cin"],
            phone=pii.get("wallet_phone") or pii.get("phone"), account=pii.get("account"),
            region_code=row.region_code, **notify.outbound_extras(svc, row)))
    ids = {row.reference: row.id for row in rows}
    try:
        results = connector.send(payload)
    except AmbiguousOutcome:
        with svc.uow() as session:
            transitions.move(session, list(ids.values()), S.UNKNOWN, source="dispatch",
                             actor=connector.partner_code, detail="no answer: outcome unknown",
                             sources=[S.QUEUED])
            session.commit()
        raise
    accepted = [ids[r.reference] for r in results if r.status == PartnerStatus.RECEIVED]
    refused = [(ids[r.reference], r.reason) for r in results if r.status == PartnerStatus.REJECTED]
    with svc.uow() as session:
        moved = transitions.move(session, accepted, S.SENT, source="dispatch",
                                 actor=connector.partner_code, sources=[S.QUEUED])
        outcome.sent += len(moved)
        notify_id = notify.record_work(svc, session, rows[0].batch_id, rows[0].chunk_no, moved)
        for transfer_id, reason in refused:
            outcome.rejected += len(transitions.move(
                session, [transfer_id], S.REJECTED, source="partner", actor=connector.partner_code,
                detail=reason, values={"status_reason": (reason or "")[:200]}, sources=[S.QUEUED]))
        session.commit()
    notify.enqueue(svc, notify_id)
    metrics.TRANSFERS_DISPATCHED.labels(partner=connector.partner_code).inc(outcome.sent)


def _record_failure(svc: Services, outbox_id: int, error: str) -> int:
    with svc.uow() as session:
        session.execute(update(OutboxItem).where(OutboxItem.id == outbox_id).values(
            attempts=OutboxItem.attempts + 1, last_error=error[:2000], updated_at=utcnow()))
        attempts = session.get(OutboxItem, outbox_id).attempts
        session.commit()
        return attempts


def _finish(svc: Services, outbox_id: int, status: str, error: str | None) -> None:
    with svc.uow() as session:
        session.execute(update(OutboxItem).where(OutboxItem.id == outbox_id,
                                                 OutboxItem.status == "pending")
                        .values(status=status, last_error=error, updated_at=utcnow()))
        session.commit()


def sweep(svc: Services) -> list[int]:
    """Re-enqueues every pending outbox item: rebuilds the work if Redis lost it.
    Safe to run any time because dispatch jobs are idempotent."""
    with svc.uow() as session:
        items = session.execute(select(OutboxItem.id, OutboxItem.kind).where(
            OutboxItem.status == "pending").order_by(OutboxItem.id)).all()
    from disbursement.jobs import tasks

    for outbox_id, kind in items:
        job = tasks.notify_chunk if kind == notify.NOTIFY_KIND else tasks.dispatch_chunk
        svc.queue.enqueue(job, outbox_id)
    return [outbox_id for outbox_id, _ in items]
