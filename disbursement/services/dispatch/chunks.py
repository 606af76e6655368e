"""Dispatch of one outbox chunk through the partner's connector.

Idempotent: only transfers still `queued` or `unknown` in the chunk are
touched, so running the same job twice sends nothing the second time. An
`unknown` transfer (we sent, but never heard back) is never resent blind: the
partner is asked first, and only its "never received" allows a resend, with the
same reference (which is also the partner's idempotency key).

Before any call: wallet transfers that break the wallet rules (not a Moroccan
mobile, above the tier's ceiling) are rejected here, and the partner's circuit
breaker is asked; while it is open the chunk is deferred (not a failure) until
the breaker's retry time, which the sweeper honours. A failed call schedules
the next attempt with jittered exponential backoff; after
`settings.dispatch_max_attempts` (or at once for a terminal error) the item is
dead: a dead letter an officer retries by hand.
"""
from __future__ import annotations

import logging
import random
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session

from connectors.base import (
    AmbiguousOutcome,
    Connector,
    OutboundTransfer,
    PartnerStatus,
    RetryableError,
    TerminalError,
)
from disbursement import crypto, metrics
from disbursement.db.models import Household, OutboxItem, PaymentInstruction, Transfer, utcnow
from disbursement.domain.backoff import backoff_seconds
from disbursement.domain.breaker import Admission
from disbursement.domain.states import OutboxStatus
from disbursement.domain.states import TransferStatus as S
from disbursement.domain.wallet import normalise_mobile, wallet_number
from disbursement.services.dispatch import notify, partner_health
from disbursement.services.ledger import postings as ledger
from disbursement.services.ports import JobName, Services
from disbursement.services.tracking import transitions

log = logging.getLogger(__name__)
WALLET_RULES_ACTOR = "wallet-rules"

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
    refused_before_dispatch: int = 0
    skipped: bool = False
    deferred: bool = False


def dispatch_chunk(svc: Services, outbox_id: int) -> DispatchOutcome:
    outcome = DispatchOutcome(outbox_id)
    with svc.uow() as session:
        item = session.get(OutboxItem, outbox_id)
        if item is None or item.status != OutboxStatus.PENDING or item.kind == notify.NOTIFY_KIND:
            outcome.skipped = True
            return outcome
        batch_id, chunk_no = item.batch_id, item.chunk_no
        rows = _pending_rows(session, batch_id, chunk_no)
    if rows:
        rows = _refuse_wallet_rule_breaches(svc, rows, outcome)
    if not rows:
        _finish(svc, outbox_id, OutboxStatus.DONE, None)
        return outcome
    partner = rows[0].partner_code
    policy = partner_health.policy_from(svc.settings)
    with svc.uow() as session:
        decision = partner_health.admit(session, partner, policy)
        if decision.admission is Admission.DEFER:
            # Not a failure: the partner is resting. The sweeper brings it back.
            session.execute(update(OutboxItem).where(OutboxItem.id == outbox_id).values(
                next_attempt_at=decision.retry_at, updated_at=utcnow()))
        session.commit()
    if decision.admission is Admission.DEFER:
        outcome.deferred = True
        return outcome
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
        _on_failure(svc, outbox_id, partner, exc)
        raise
    finally:
        getattr(connector, "close", lambda: None)()
    with svc.uow() as session:
        partner_health.record(session, partner, True, policy)
        session.commit()
    _finish(svc, outbox_id, OutboxStatus.DONE, None)
    return outcome


def _on_failure(svc: Services, outbox_id: int, partner: str, exc: Exception) -> None:
    """Count the failure against the breaker (partner trouble only), schedule
    the next attempt, or declare the item dead."""
    metrics.DISPATCH_ERRORS.labels(partner=partner, kind=type(exc).__name__).inc()
    error = f"{type(exc).__name__}: {exc}"
    terminal = isinstance(exc, TerminalError)
    with svc.uow() as session:
        if not terminal:
            # A terminal error is ours (bad key, bad request): not the partner's health.
            partner_health.record(session, partner, False,
                                  partner_health.policy_from(svc.settings))
        session.commit()
    attempts = _record_failure(svc, outbox_id, error)
    if terminal or attempts >= svc.settings.dispatch_max_attempts:
        _finish(svc, outbox_id, OutboxStatus.DEAD, error)
        refresh_dead_letter_gauge(svc)
    else:
        metrics.DISPATCH_RETRIES.labels(partner=partner).inc()


def _pending_rows(session: Session, batch_id: int, chunk_no: int):
    stmt = (select(Transfer.id, Transfer.reference, Transfer.status, Transfer.partner_code,
                   Transfer.amount_centimes, Transfer.currency, Transfer.channel,
                   Transfer.service_point, Transfer.batch_id, Transfer.chunk_no,
                   Household.head_name, Household.region_code, Household.pii,
                   Household.wallet_tier)
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


def _wallet_phone(pii: dict) -> str | None:
    return wallet_number(pii)


def _refuse_wallet_rule_breaches(svc: Services, rows, outcome: DispatchOutcome) -> list:
    """Reject queued wallet transfers the wallet could not take, before any
    partner sees them; returns the rows left to dispatch."""
    rules = svc.configuration.wallet
    refused: dict[int, str] = {}
    for row in rows:
        if row.channel != "wallet" or row.status != S.QUEUED.value:
            continue
        reason = rules.refusal(row.amount_centimes, row.currency,
                               _wallet_phone(svc.vault.open(row.pii)), row.wallet_tier)
        if reason is not None:
            refused[row.id] = reason
    if not refused:
        return rows
    with svc.uow() as session:
        for transfer_id, reason in refused.items():
            outcome.refused_before_dispatch += len(transitions.move(
                session, [transfer_id], S.REJECTED, source="dispatch", actor=WALLET_RULES_ACTOR,
                detail=reason, values={"status_reason": reason[:200]}, sources=[S.QUEUED]))
        session.commit()
    return [row for row in rows if row.id not in refused]


def _send(svc: Services, connector: Connector, rows, outcome: DispatchOutcome) -> None:
    payload = []
    for row in rows:
        pii = svc.vault.open(row.pii)
        phone = _wallet_phone(pii)
        payload.append(OutboundTransfer(
            reference=row.reference, amount_centimes=row.amount_centimes, currency=row.currency,
            channel=row.channel, beneficiary_name=row.head_name,
            national_id=crypto.required(pii, "cin"),
            phone=normalise_mobile(phone) or phone if row.channel == "wallet" else phone,
            account=pii.get("account"), region_code=row.region_code,
            wallet_tier=row.wallet_tier if row.channel == "wallet" else None,
            **notify.outbound_extras(svc, row)))
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
        attempts = session.execute(update(OutboxItem).where(OutboxItem.id == outbox_id).values(
            attempts=OutboxItem.attempts + 1, last_error=error[:2000], updated_at=utcnow())
            .returning(OutboxItem.attempts)).scalar_one()
        delay = backoff_seconds(attempts, svc.settings.retry_base_seconds,
                                svc.settings.retry_cap_seconds, random.random())
        session.execute(update(OutboxItem).where(OutboxItem.id == outbox_id).values(
            next_attempt_at=utcnow() + timedelta(seconds=delay)))
        session.commit()
        return attempts


def _finish(svc: Services, outbox_id: int, status: OutboxStatus, error: str | None) -> None:
    with svc.uow() as session:
        session.execute(update(OutboxItem).where(OutboxItem.id == outbox_id,
                                                 OutboxItem.status == OutboxStatus.PENDING.value)
                        .values(status=status.value, last_error=error, updated_at=utcnow()))
        session.commit()


def refresh_dead_letter_gauge(svc: Services) -> int:
    with svc.uow() as session:
        count = session.execute(select(func.count()).select_from(OutboxItem).where(
            OutboxItem.status == OutboxStatus.DEAD.value)).scalar_one()
    metrics.DEAD_LETTERS.set(count)
    return count


def sweep(svc: Services, include_not_due: bool = False) -> list[int]:
    """Re-enqueues every pending outbox item that is due (its backoff or its
    partner's breaker cooldown is over): rebuilds the work if Redis lost it.
    Safe to run any time because dispatch jobs are idempotent."""
    stmt = select(OutboxItem.id, OutboxItem.kind).where(
        OutboxItem.status == OutboxStatus.PENDING.value)
    if not include_not_due:
        stmt = stmt.where(or_(OutboxItem.next_attempt_at.is_(None),
                              OutboxItem.next_attempt_at <= utcnow()))
    with svc.uow() as session:
        items = session.execute(stmt.order_by(OutboxItem.id)).all()
    for outbox_id, kind in items:
        job = JobName.NOTIFY_CHUNK if kind == notify.NOTIFY_KIND else JobName.DISPATCH_CHUNK
        svc.queue.enqueue(job, outbox_id)
    return [outbox_id for outbox_id, _ in items]
