"""Dispatch against a misbehaving partner, over real processes: an outage
(retried, then recovered by the sweeper), an answer that never comes (the
transfers become `unknown` and are resolved by asking, never by resending
blind), and rejections, at send and by confirmation."""
from __future__ import annotations

import pytest
from sqlalchemy import select, text

from connectors.simulators.rest_book import REJECT_REASONS
from disbursement.db.models import Transfer, TransferEvent
from disbursement.services.batches import approval as batches
from disbursement.services.dispatch import chunks as dispatch
from disbursement.services.ledger import postings as ledger
from tests.support.rest_partner import (
    PARTNER,
    approved_batch,
    call_simulator,
    outbox_item,
    transfer_statuses,
)
from tests.support.waiting import wait_until

pytestmark = pytest.mark.e2e


def _timeline(svc, reference: str) -> list[tuple]:
    with svc.uow() as session:
        return session.execute(
            select(TransferEvent.from_status, TransferEvent.to_status, TransferEvent.source,
                   TransferEvent.actor, TransferEvent.detail)
            .join(Transfer, Transfer.id == TransferEvent.transfer_id)
            .where(Transfer.reference == reference).order_by(TransferEvent.id)).all()


def test_an_outage_is_retried_then_recovered_by_the_sweeper(live, officers, households_csv):
    svc = live.svc
    batch_id = approved_batch(svc, officers, households_csv)
    call_simulator(live, "POST", "/_sim/faults", {"error_rate": 1})
    outbox_ids = batches.release(svc, batch_id, officers.maker)
    assert len(outbox_ids) == 1

    # The in-process job fails, records why, and tries again.
    item = wait_until(lambda: (i := outbox_item(svc, batch_id)).attempts >= 2 and i,
                       "a second failed attempt")
    assert item.status == "pending"
    assert item.last_error == ("RetryableError: BARID: POST /v1/transfers: HTTP 503: "
                               "simulated outage, try again later")
    assert set(transfer_statuses(svc, batch_id).values()) == {"queued"}
    assert call_simulator(live, "GET", "/_sim/state")["transfers"] == 0

    call_simulator(live, "POST", "/_sim/faults", {"error_rate": 0})
    # Whichever runs first, the job's own retry or the sweeper's copy, the
    # other finds nothing left to send.
    assert set(dispatch.sweep(svc)) <= set(outbox_ids)
    svc.queue.drain()
    statuses = transfer_statuses(svc, batch_id)
    assert set(statuses.values()) == {"sent"}
    item = outbox_item(svc, batch_id)
    assert (item.status, item.last_error) == ("done", None)
    state = call_simulator(live, "GET", "/_sim/state")
    assert (state["transfers"], state["duplicate_sends"]) == (len(statuses), 0)
    assert svc.queue.failures == []


@pytest.mark.live_settings(connector_timeout_seconds=0.5)
def test_an_unanswered_send_is_resolved_by_asking_not_by_resending(live, officers, households_csv):
    svc = live.svc
    batch_id = approved_batch(svc, officers, households_csv)
    # The partner takes the chunk, then answers after our 0.5 s timeout.
    call_simulator(live, "POST", "/_sim/faults", {"timeout_rate": 1, "timeout_sleep_seconds": 3})
    batches.release(svc, batch_id, officers.maker)

    wait_until(lambda: set(transfer_statuses(svc, batch_id).values()) == {"unknown"},
               "transfers unknown")
    reference = sorted(transfer_statuses(svc, batch_id))[0]
    assert _timeline(svc, reference)[-1] == (
        "sending", "unknown", "dispatch", PARTNER, "no answer: outcome unknown")
    # The retry asks for the status first (and that times out too, so nothing moves).
    item = wait_until(lambda: (i := outbox_item(svc, batch_id)).attempts >= 2 and i,
                       "a second attempt")
    assert item.status == "pending"
    assert item.last_error == ("RetryableError: BARID: POST /v1/transfers/status: no answer after "
                               "the request was sent (ReadTimeout('timed out'))")
    assert set(transfer_statuses(svc, batch_id).values()) == {"unknown"}
    held = call_simulator(live, "GET", "/_sim/state")
    assert held["by_status"] == {"received": len(transfer_statuses(svc, batch_id))}

    call_simulator(live, "POST", "/_sim/faults", {"timeout_rate": 0})
    dispatch.sweep(svc)
    svc.queue.drain()
    statuses = transfer_statuses(svc, batch_id)
    assert set(statuses.values()) == {"sent"}
    assert _timeline(svc, reference)[-2:] == [
        ("sending", "unknown", "dispatch", PARTNER, "no answer: outcome unknown"),
        ("unknown", "sent", "dispatch", PARTNER,
         "status asked before any resend: partner says sent")]
    assert outbox_item(svc, batch_id).status == "done"
    state = call_simulator(live, "GET", "/_sim/state")
    assert (state["transfers"], state["duplicate_sends"]) == (len(statuses), 0)

    # And the cycle ends normally: each transfer paid once, the ledger balanced.
    call_simulator(live, "POST", "/_sim/advance", {})
    assert set(transfer_statuses(svc, batch_id).values()) == {"paid"}
    with svc.uow() as session:
        assert ledger.check(session, "asd", "2026-12").balanced


def test_rejections_at_send_and_by_confirmation_keep_the_reason(live, officers, households_csv):
    svc = live.svc
    batch_id = approved_batch(svc, officers, households_csv)
    # One reference the partner cannot accept (lower case), refused at send.
    with svc.uow() as session:
        malformed = session.execute(text(
            "UPDATE transfers SET reference = lower(reference) WHERE id = "
            "(SELECT min(id) FROM transfers WHERE batch_id = :b) RETURNING reference"),
            {"b": batch_id}).scalar_one()
        session.commit()
    call_simulator(live, "POST", "/_sim/faults", {"reject_rate": 1})
    batches.release(svc, batch_id, officers.maker)
    svc.queue.drain()
    statuses = transfer_statuses(svc, batch_id)
    assert statuses.pop(malformed) == "rejected"
    assert set(statuses.values()) == {"sent"}
    reason = "FF01 reference must be 1 to 16 upper-case letters or digits"
    # Marked `sending` before the call, rejected by the partner's answer.
    assert _timeline(svc, malformed)[-2:] == [
        ("queued", "sending", "dispatch", PARTNER, "handed to the connector"),
        ("sending", "rejected", "dispatch", PARTNER, reason)]

    call_simulator(live, "POST", "/_sim/advance", {})
    assert set(transfer_statuses(svc, batch_id).values()) == {"rejected"}
    with svc.uow() as session:
        reasons = dict(session.execute(select(Transfer.reference, Transfer.status_reason)
                                       .where(Transfer.batch_id == batch_id)).all())
    assert reasons.pop(malformed) == reason
    assert set(reasons.values()) <= set(REJECT_REASONS) and None not in reasons.values()
    some = sorted(reasons)[0]
    # The partner's reason is the event's detail: the officer reads it on the timeline.
    assert _timeline(svc, some)[-1] == (
        "sent", "rejected", "partner", PARTNER, reasons[some])
