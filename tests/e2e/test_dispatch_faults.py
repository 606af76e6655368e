"""Dispatch against a misbehaving partner, over real processes: an outage
(retried, then recovered by the sweeper), an answer that never comes (the
transfers become `unknown` and are resolved by asking, never by resending
blind), and rejections, at send and by confirmation."""
from __future__ import annotations

import time

import httpx
import pytest
from sqlalchemy import select, text

from connectors.simulators.rest_book import REJECT_REASONS
from disbursement.db.models import Batch, OutboxItem, Transfer, TransferEvent
from disbursement.services.batches import approval as batches
from disbursement.services.cycles import planning
from disbursement.services.dispatch import chunks as dispatch
from disbursement.services.ledger import postings as ledger
from disbursement.services.registry import importing as registry

pytestmark = pytest.mark.e2e

PARTNER = "BARID"
WAIT_SECONDS = 20


def _approved_batch(svc, officers, households_csv) -> int:
    """One approved batch for PARTNER; the other partners' batches stay drafts."""
    path = households_csv(40)
    with path.open("rb") as stream:
        registry.import_households(svc, stream, path.name, officers.maker)
    plan = planning.plan_cycle(svc, "asd", "2026-12", officers.maker)
    with svc.uow() as session:
        batch_id = session.execute(select(Batch.id).where(
            Batch.id.in_(plan.batches_created), Batch.partner_code == PARTNER)).scalar_one()
    batches.submit(svc, batch_id, officers.maker)
    assert batches.approve(svc, batch_id, officers.approver).status == "approved"
    return batch_id


def _sim(live, method: str, path: str, payload=None):
    with httpx.Client(timeout=30) as client:
        response = client.request(method, f"{live.sims[PARTNER]}{path}", json=payload)
        response.raise_for_status()
        return response.json()


def _statuses(svc, batch_id: int) -> dict[str, str]:
    with svc.uow() as session:
        return dict(session.execute(select(Transfer.reference, Transfer.status)
                                    .where(Transfer.batch_id == batch_id)).all())


def _outbox(svc, batch_id: int) -> OutboxItem:
    with svc.uow() as session:
        return session.execute(select(OutboxItem).where(OutboxItem.batch_id == batch_id)).scalar_one()


def _wait_until(condition, what: str):
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"not within {WAIT_SECONDS}s: {what}")


def _timeline(svc, reference: str) -> list[tuple]:
    with svc.uow() as session:
        return session.execute(
            select(TransferEvent.from_status, TransferEvent.to_status, TransferEvent.source,
                   TransferEvent.actor, TransferEvent.detail)
            .join(Transfer, Transfer.id == TransferEvent.transfer_id)
            .where(Transfer.reference == reference).order_by(TransferEvent.id)).all()


def test_an_outage_is_retried_then_recovered_by_the_sweeper(live, officers, households_csv):
    svc = live.svc
    batch_id = _approved_batch(svc, officers, households_csv)
    _sim(live, "POST", "/_sim/faults", {"error_rate": 1})
    outbox_ids = batches.release(svc, batch_id, officers.maker)
    assert len(outbox_ids) == 1

    # The in-process job fails, records why, and tries again.
    item = _wait_until(lambda: (i := _outbox(svc, batch_id)).attempts >= 2 and i,
                       "a second failed attempt")
    assert item.status == "pending"
    assert item.last_error == ("RetryableError: BARID: POST /v1/transfers: HTTP 503: "
                               "simulated outage, try again later")
    assert set(_statuses(svc, batch_id).values()) == {"queued"}
    assert _sim(live, "GET", "/_sim/state")["transfers"] == 0

    _sim(live, "POST", "/_sim/faults", {"error_rate": 0})
    # Whichever runs first, the job's own retry or the sweeper's copy, the
    # other finds nothing left to send.
    assert set(dispatch.sweep(svc)) <= set(outbox_ids)
    svc.queue.drain()
    statuses = _statuses(svc, batch_id)
    assert set(statuses.values()) == {"sent"}
    item = _outbox(svc, batch_id)
    assert (item.status, item.last_error) == ("done", None)
    state = _sim(live, "GET", "/_sim/state")
    assert (state["transfers"], state["duplicate_sends"]) == (len(statuses), 0)
    assert svc.queue.failures == []


@pytest.mark.live_settings(connector_timeout_seconds=0.5)
def test_an_unanswered_send_is_resolved_by_asking_not_by_resending(live, officers, households_csv):
    svc = live.svc
    batch_id = _approved_batch(svc, officers, households_csv)
    # The partner takes the chunk, then answers after our 0.5 s timeout.
    _sim(live, "POST", "/_sim/faults", {"timeout_rate": 1, "timeout_sleep_seconds": 3})
    batches.release(svc, batch_id, officers.maker)

    _wait_until(lambda: set(_statuses(svc, batch_id).values()) == {"unknown"}, "transfers unknown")
    reference = sorted(_statuses(svc, batch_id))[0]
    assert _timeline(svc, reference)[-1] == (
        "queued", "unknown", "dispatch", PARTNER, "no answer: outcome unknown")
    # The retry asks for the status first (and that times out too, so nothing moves).
    item = _wait_until(lambda: (i := _outbox(svc, batch_id)).attempts >= 2 and i,
                       "a second attempt")
    assert item.status == "pending"
    assert item.last_error == ("RetryableError: BARID: POST /v1/transfers/status: no answer after "
                               "the request was sent (ReadTimeout('timed out'))")
    assert set(_statuses(svc, batch_id).values()) == {"unknown"}
    held = _sim(live, "GET", "/_sim/state")
    assert held["by_status"] == {"received": len(_statuses(svc, batch_id))}

    _sim(live, "POST", "/_sim/faults", {"timeout_rate": 0})
    dispatch.sweep(svc)
    svc.queue.drain()
    statuses = _statuses(svc, batch_id)
    assert set(statuses.values()) == {"sent"}
    assert _timeline(svc, reference)[-2:] == [
        ("queued", "unknown", "dispatch", PARTNER, "no answer: outcome unknown"),
        ("unknown", "sent", "dispatch", PARTNER, "status asked after unknown outcome")]
    assert _outbox(svc, batch_id).status == "done"
    state = _sim(live, "GET", "/_sim/state")
    assert (state["transfers"], state["duplicate_sends"]) == (len(statuses), 0)

    # And the cycle ends normally: each transfer paid once, the ledger balanced.
    _sim(live, "POST", "/_sim/advance", {})
    assert set(_statuses(svc, batch_id).values()) == {"paid"}
    with svc.uow() as session:
        assert ledger.check(session, "asd", "2026-12").balanced


def test_rejections_at_send_and_by_confirmation_keep_the_reason(live, officers, households_csv):
    svc = live.svc
    batch_id = _approved_batch(svc, officers, households_csv)
    # One reference the partner cannot accept (lower case), refused at send.
    with svc.uow() as session:
        malformed = session.execute(text(
            "UPDATE transfers SET reference = lower(reference) WHERE id = "
            "(SELECT min(id) FROM transfers WHERE batch_id = :b) RETURNING reference"),
            {"b": batch_id}).scalar_one()
        session.commit()
    _sim(live, "POST", "/_sim/faults", {"reject_rate": 1})
    batches.release(svc, batch_id, officers.maker)
    svc.queue.drain()
    statuses = _statuses(svc, batch_id)
    assert statuses.pop(malformed) == "rejected"
    assert set(statuses.values()) == {"sent"}
    reason = "FF01 reference must be 1 to 16 upper-case letters or digits"
    assert _timeline(svc, malformed)[-1] == ("queued", "rejected", "partner", PARTNER, reason)

    _sim(live, "POST", "/_sim/advance", {})
    assert set(_statuses(svc, batch_id).values()) == {"rejected"}
    with svc.uow() as session:
        reasons = dict(session.execute(select(Transfer.reference, Transfer.status_reason)
                                       .where(Transfer.batch_id == batch_id)).all())
    assert reasons.pop(malformed) == reason
    assert set(reasons.values()) <= set(REJECT_REASONS) and None not in reasons.values()
    some = sorted(reasons)[0]
    assert _timeline(svc, some)[-1] == (
        "sent", "rejected", "partner", PARTNER, "partner confirmed rejected")
