"""Dispatch of one outbox chunk through the partner's connector.

Idempotent: only transfers still `queued` or `unknown` in the chunk are
touched, so running the same job twice sends nothing the second time.

Crash-safe: before the partner call the transfers move `queued -> sending`,
committed; the call's answer moves them on (`sent`, `rejected`; `unknown` when
no answer came; back to `queued` when the partner said it took nothing). A
crash at any instant leaves them `sending`, and a transfer in doubt
(`unknown`, or `sending` for longer than `settings.in_doubt_after_seconds`)
is never resent blind: the partner is asked first (`settle_in_doubt`, also run
by `recovery.query_in_doubt`), its answer is applied whatever it is, and only
its "never received" allows a resend, with the same reference (which is also
the partner's idempotency key).

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
from disbursement.db.models import (
    Household,
    OutboxItem,
    PaymentInstruction,
    Transfer,
    as_utc,
    utcnow,
)
from disbursement.domain.backoff import backoff_seconds
from disbursement.domain.breaker import Admission
from disbursement.domain.states import OutboxStatus
from disbursement.domain.states import TransferStatus as S
from disbursement.domain.wallet import normalise_mobile, wallet_number
from disbursement.services.dispatch import notify, partner_health
from disbursement.services.ports import JobName, Services
from disbursement.services.tracking import partner_truth, transitions

log = logging.getLogger(__name__)
WALLET_RULES_ACTOR = "wallet-rules"

IN_DOUBT = (S.UNKNOWN.value, S.SENDING.value)


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
    cutoff = utcnow() - timedelta(seconds=svc.settings.in_doubt_after_seconds)
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
        in_doubt = [r for r in rows if r.status == S.UNKNOWN.value
                    or (r.status == S.SENDING.value and as_utc(r.updated_at) < cutoff)]
        if in_doubt:
            settled = settle_in_doubt(svc, connector, [r.reference for r in in_doubt],
                                      detail="status asked before any resend")
            outcome.resolved_unknown += sum(settled.values())
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
                   Transfer.updated_at, Household.head_name, Household.region_code, Household.pii,
                   Household.wallet_tier)
            .join(PaymentInstruction, PaymentInstruction.id == Transfer.instruction_id)
            .join(Household, Household.id == PaymentInstruction.household_pk)
            .where(Transfer.batch_id == batch_id, Transfer.chunk_no == chunk_no,
                   Transfer.status.in_([S.QUEUED.value, *IN_DOUBT]))
            .order_by(Transfer.id))
    return session.execute(stmt).all()


def settle_in_doubt(svc: Services, connector: Connector, references: list[str], *,
                    detail: str) -> dict[str, int]:
    """Asks the partner what it knows of transfers in doubt (`unknown`,
    `sending`) and applies its answer, whatever it is (`partner_truth`);
    "never received" puts them back in `queued` for a resend. Returns how many
    ended in each of our states."""
    answers = connector.status(references)
    with svc.uow() as session:
        ids: dict[str, int] = {row.reference: row.id for row in session.execute(
            select(Transfer.reference, Transfer.id).where(
                Transfer.reference.in_(references),
                Transfer.partner_code == connector.partner_code,
                Transfer.status.in_(IN_DOUBT)))}
        words = [partner_truth.Word(tid, answers[ref]) for ref, tid in ids.items()
                 if answers.get(ref, PartnerStatus.NOT_FOUND) in partner_truth.TARGET]
        applied = partner_truth.apply(session, connector.partner_code, words, source="dispatch",
                                      detail=f"{detail}: partner says")
        never = [tid for ref, tid in ids.items()
                 if answers.get(ref, PartnerStatus.NOT_FOUND) == PartnerStatus.NOT_FOUND]
        requeued = transitions.move(session, never, S.QUEUED, source="dispatch",
                                    actor=connector.partner_code,
                                    detail=f"{detail}: partner never received it",
                                    sources=[S.UNKNOWN, S.SENDING])
        session.commit()
    settled: dict[str, int] = {}
    for tid in ids.values():
        state = S.QUEUED.value if tid in requeued else applied.after.get(tid)
        if state is not None and state not in IN_DOUBT:
            settled[state] = settled.get(state, 0) + 1
    for state, count in settled.items():
        metrics.RECOVERED_IN_DOUBT.labels(partner=connector.partner_code, status=state).inc(count)
    return settled


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
    # The durable mark first: whatever happens from here, these transfers are
    # `sending` until the partner's answer (or a status query) says where they are.
    with svc.uow() as session:
        mine = set(transitions.move(session, [row.id for row in rows], S.SENDING,
                                    source="dispatch", actor=connector.partner_code,
                                    detail="handed to the connector", sources=[S.QUEUED]))
        session.commit()
    rows = [row for row in rows if row.id in mine]
    if not rows:
        return
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
        _after_failed_call(svc, connector, list(ids.values()), S.UNKNOWN,
                           "no answer: outcome unknown")
        raise
    except (RetryableError, TerminalError) as exc:
        # The partner said it took nothing: the transfers wait for the next attempt.
        _after_failed_call(svc, connector, list(ids.values()), S.QUEUED,
                           f"not taken: {type(exc).__name__}")
        raise
    words = [partner_truth.Word(ids[r.reference], r.status, (r.reason or "")[:200] or None)
             for r in results if r.reference in ids
             and r.status in (PartnerStatus.RECEIVED, PartnerStatus.REJECTED)]
    with svc.uow() as session:
        applied = partner_truth.apply(session, connector.partner_code, words, source="dispatch",
                                      detail="partner answered")
        accepted = [w.transfer_id for w in words if w.status == PartnerStatus.RECEIVED]
        outcome.sent += sum(1 for tid in accepted if S.SENT.value in applied.entered.get(tid, ()))
        outcome.rejected += sum(1 for w in words if w.status == PartnerStatus.REJECTED
                                and S.REJECTED.value in applied.entered.get(w.transfer_id, ()))
        # Texted once the partner holds it, even when its callback overtook us.
        reachable = [tid for tid in accepted
                     if applied.after.get(tid) in (S.SENT.value, S.AVAILABLE.value)]
        notify_id = notify.record_work(svc, session, rows[0].batch_id, rows[0].chunk_no,
                                       reachable)
        session.commit()
    notify.enqueue(svc, notify_id)
    metrics.TRANSFERS_DISPATCHED.labels(partner=connector.partner_code).inc(outcome.sent)


def _after_failed_call(svc: Services, connector: Connector, ids: list[int], target: S,
                       detail: str) -> None:
    with svc.uow() as session:
        transitions.move(session, ids, target, source="dispatch", actor=connector.partner_code,
                         detail=detail, sources=[S.SENDING])
        session.commit()


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
