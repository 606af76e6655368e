"""Beneficiary notification: each cash beneficiary is texted where and from
when to collect, with the one-time withdrawal code.

Work implied by dispatch: when a chunk's transfers move to `sent`, an outbox
row of kind `notify` is written in the same transaction, and a job carrying its
id sends the chunk's messages. One `notifications` row per transfer (unique)
is written before anything is sent, and the gateway delivers each transfer
reference once, so a retried job never texts a beneficiary twice.

The code is derived from the reference (`disbursement.domain.withdrawal`), never
stored in clear and never logged: logs carry counts and ids only.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy import and_, bindparam, select, update
from sqlalchemy.orm import Session

from connectors.sms import SmsGateway, SmsMessage
from disbursement import metrics
from disbursement.db.models import Household, OutboxItem, PaymentInstruction, Transfer, utcnow
from disbursement.db.models.routing import Notification, ServicePoint
from disbursement.db.upsert import insert_ignore
from disbursement.domain.money import format_units
from disbursement.domain.states import OutboxStatus
from disbursement.domain.states import TransferStatus as S
from disbursement.domain.withdrawal import code_hash, withdrawal_code
from disbursement.services.ports import JobName, Services

log = logging.getLogger(__name__)
NOTIFY_KIND = "notify"
MESSAGES_PER_REQUEST = 500
# The partner holds the money from `sent` on; later states still need the message
# if an earlier attempt to text failed.
NOTIFIABLE = [S.SENT.value, S.AVAILABLE.value, S.PAID.value]


@dataclass
class NotifyOutcome:
    outbox_id: int
    sent: int = 0
    no_phone: int = 0
    skipped: bool = False


def outbound_extras(svc: Services, row) -> dict:
    """What a cash instruction carries to the partner besides the money: the
    service point chosen at planning and the withdrawal code."""
    if row.channel != "cash":
        return {}
    return {"service_point": row.service_point,
            "withdrawal_code": withdrawal_code(svc.settings.code_key, row.reference)}


def record_work(svc: Services, session: Session, batch_id: int, chunk_no: int,
                sent_ids: list[int]) -> int | None:
    """In the transaction that moves the chunk to `sent`: the notify outbox row."""
    if not svc.settings.sms_gateway_url or not sent_ids:
        return None
    now = utcnow()
    insert_ignore(session, OutboxItem.__table__, [
        {"kind": NOTIFY_KIND, "batch_id": batch_id, "chunk_no": chunk_no,
         "status": OutboxStatus.PENDING.value, "attempts": 0, "created_at": now,
         "updated_at": now}], key=["kind", "batch_id", "chunk_no"])
    return session.execute(select(OutboxItem.id).where(
        OutboxItem.kind == NOTIFY_KIND, OutboxItem.batch_id == batch_id,
        OutboxItem.chunk_no == chunk_no,
        OutboxItem.status == OutboxStatus.PENDING.value)).scalar_one_or_none()


def enqueue(svc: Services, outbox_id: int | None) -> None:
    """After the commit, never before."""
    if outbox_id is not None:
        svc.queue.enqueue(JobName.NOTIFY_CHUNK, outbox_id)


def render(svc: Services, row) -> str:
    fields = {"amount": format_units(row.amount_centimes), "reference": row.reference,
              "point_name": row.point_name or row.service_point or "",
              "point_address": row.point_address or "",
              "pickup_from": row.pickup_from.isoformat() if row.pickup_from else "",
              "code": withdrawal_code(svc.settings.code_key, row.reference)}
    return svc.configuration.sms_templates.render(fields)


def notify_chunk(svc: Services, outbox_id: int) -> NotifyOutcome:
    outcome = NotifyOutcome(outbox_id)
    with svc.uow() as session:
        item = session.get(OutboxItem, outbox_id)
        if item is None or item.status != OutboxStatus.PENDING or item.kind != NOTIFY_KIND:
            outcome.skipped = True
            return outcome
        rows = _cash_rows(session, item.batch_id, item.chunk_no)
        pending = _record_pending(svc, session, rows, outcome)
        session.commit()
    gateway = _gateway(svc)
    try:
        for i in range(0, len(pending), MESSAGES_PER_REQUEST):
            part = pending[i:i + MESSAGES_PER_REQUEST]
            ids = gateway.send([SmsMessage(r.reference, r.phone, render(svc, r)) for r in part])
            _mark_sent(svc, [(r.id, ids[r.reference]) for r in part if r.reference in ids])
            outcome.sent += len(ids)
    except Exception as exc:
        _record_failure(svc, outbox_id, f"{type(exc).__name__}: {exc}")
        raise
    finally:
        gateway.close()
    with svc.uow() as session:
        session.execute(update(OutboxItem).where(OutboxItem.id == outbox_id,
                                                 OutboxItem.status == OutboxStatus.PENDING.value)
                        .values(status=OutboxStatus.DONE.value, last_error=None,
                                updated_at=utcnow()))
        session.commit()
    if outcome.sent and rows:
        metrics.SMS_SENT.labels(partner=rows[0].partner_code).inc(outcome.sent)
    log.info("notifications sent", extra={"outbox_id": outbox_id, "sent": outcome.sent,
                                          "no_phone": outcome.no_phone})
    return outcome


@dataclass(frozen=True, slots=True)
class _Pending:
    id: int
    reference: str
    phone: str
    amount_centimes: int
    service_point: str | None
    point_name: str | None
    point_address: str | None
    pickup_from: object


def _cash_rows(session: Session, batch_id: int, chunk_no: int):
    return session.execute(
        select(Transfer.id, Transfer.reference, Transfer.amount_centimes, Transfer.partner_code,
               Transfer.service_point, Transfer.pickup_from, Household.pii,
               ServicePoint.name.label("point_name"), ServicePoint.address.label("point_address"))
        .join(PaymentInstruction, PaymentInstruction.id == Transfer.instruction_id)
        .join(Household, Household.id == PaymentInstruction.household_pk)
        .outerjoin(ServicePoint, and_(ServicePoint.partner_code == Transfer.partner_code,
                                      ServicePoint.code == Transfer.service_point))
        .where(Transfer.batch_id == batch_id, Transfer.chunk_no == chunk_no,
               Transfer.channel == "cash", Transfer.status.in_(NOTIFIABLE))
        .order_by(Transfer.id)).all()


def _gateway(svc: Services) -> SmsGateway:
    """The outbox row was written while a gateway was configured; if it no longer is,
    the job fails (the row stays pending for a retry) rather than pretending to send."""
    if not svc.settings.sms_gateway_url:
        raise RuntimeError("SMS_GATEWAY_URL is not set: notifications cannot be sent")
    return SmsGateway(svc.settings.sms_gateway_url, svc.settings.sms_gateway_key,
                      svc.settings.connector_timeout_seconds)


def _record_pending(svc: Services, session: Session, rows,
                    outcome: NotifyOutcome) -> list[_Pending]:
    """One notification row per transfer (kept if already there); the ones
    still to send, with the phone decrypted in memory only."""
    existing = dict(session.execute(select(Notification.transfer_id, Notification.status).where(
        Notification.transfer_id.in_([r.id for r in rows]))).all()) if rows else {}
    now, fresh, pending = utcnow(), [], []
    for r in rows:
        status = existing.get(r.id)
        if status in ("sent", "no_phone"):
            continue
        phone = svc.vault.open(r.pii).get("phone")
        if status is None:
            status = "pending" if phone else "no_phone"
            fresh.append({"transfer_id": r.id, "reference": r.reference, "status": status,
                          "code_hash": code_hash(svc.settings.code_key, r.reference,
                                                 withdrawal_code(svc.settings.code_key,
                                                                 r.reference)),
                          "attempts": 0, "created_at": now})
        # A phone erased from the registry since the row was written: nothing to send to.
        if status == "no_phone" or not phone:
            outcome.no_phone += 1
            continue
        pending.append(_Pending(r.id, r.reference, phone, r.amount_centimes, r.service_point,
                                r.point_name, r.point_address, r.pickup_from))
    if fresh:
        insert_ignore(session, Notification.__table__, fresh, key=["transfer_id"])
    return pending


def _mark_sent(svc: Services, sent: list[tuple[int, str]]) -> None:
    if not sent:
        return
    with svc.uow() as session:
        session.execute(
            update(Notification.__table__)
            .where(Notification.__table__.c.transfer_id == bindparam("tid"))
            .values(status="sent", gateway_id=bindparam("gid"), sent_at=utcnow(),
                    attempts=Notification.__table__.c.attempts + 1),
            [{"tid": tid, "gid": gid} for tid, gid in sent])
        session.commit()


def _record_failure(svc: Services, outbox_id: int, error: str) -> None:
    with svc.uow() as session:
        session.execute(update(OutboxItem).where(OutboxItem.id == outbox_id).values(
            attempts=OutboxItem.attempts + 1, last_error=error[:2000], updated_at=utcnow()))
        session.commit()
