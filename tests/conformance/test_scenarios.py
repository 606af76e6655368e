"""The connector contract, the same scenarios for every protocol, against its
simulator over the real transport (see harness.py for how a protocol plugs in)."""
from __future__ import annotations

import dataclasses
from collections import Counter

import pytest

from connectors.base import AmbiguousOutcome, PartnerStatus, TerminalError
from disbursement.bootstrap import Services
from disbursement.services.dispatch import chunks as dispatch
from disbursement.services.tracking import confirmations
from tests.conformance.harness import Harness
from tests.conformance.ours import footprint, outbox_item, seed_transfers, statuses

pytestmark = pytest.mark.e2e

P = PartnerStatus


def _services_for(svc: Services, harness: Harness, **overrides) -> Services:
    wanted = harness.service_overrides()
    # Mappings of partner settings (URLs, keys, SFTP secrets) are merged into ours.
    merged = {name: {**getattr(svc.settings, name), **value} for name, value in wanted.items()}
    settings = svc.settings.with_overrides(**merged, **overrides)
    return dataclasses.replace(svc, settings=settings, _queue=None)


def _as_request(updates) -> list[dict]:
    """Updates in the shape our confirmation endpoint parses."""
    return confirmations.parse([{**u.as_confirmation(), "occurred_at":
                                 u.occurred_at.isoformat() if u.occurred_at else None}
                                for u in updates])


def test_a_chunk_sent_is_received_and_held(harness: Harness) -> None:
    chunk = harness.make_transfers(3)

    results = harness.connector.send(chunk)

    assert [(r.reference, r.status) for r in results] == [(t.reference, P.RECEIVED) for t in chunk]
    assert {t.reference: harness.partner_status(t.reference) for t in chunk} == \
        {t.reference: P.RECEIVED for t in chunk}
    assert harness.connector.status([t.reference for t in chunk]) == \
        {t.reference: P.RECEIVED for t in chunk}


def test_a_resent_chunk_is_held_once_and_paid_once(harness: Harness) -> None:
    chunk = harness.make_transfers(3)
    harness.connector.send(chunk)

    again = harness.connector.send(chunk)
    harness.advance(P.PAID)

    assert [r.status for r in again] == [P.RECEIVED] * 3
    assert harness.held_count() == 3
    paid = Counter(u.reference for u in harness.inbound() if u.status == P.PAID)
    assert paid == {t.reference: 1 for t in chunk}


def test_advancing_to_paid_reports_paid_per_reference(harness: Harness) -> None:
    chunk = harness.make_transfers(4)
    harness.connector.send(chunk)

    harness.advance(P.PAID, [t.reference for t in chunk[:2]])

    updates = harness.inbound()
    assert {u.reference for u in updates if u.status == P.PAID} == \
        {t.reference for t in chunk[:2]}
    assert all(u.event_id for u in updates)
    assert [harness.partner_status(t.reference) for t in chunk] == \
        [P.PAID, P.PAID, P.RECEIVED, P.RECEIVED]


def test_cancel_before_collection_is_confirmed_and_after_is_refused(harness: Harness) -> None:
    waiting, collected = harness.make_transfers(2)
    harness.connector.send([waiting, collected])
    harness.advance(P.PAID, [collected.reference])
    if not getattr(harness, "cancels", True):
        # A protocol without cancellation (ISO 20022 banks want camt.055) refuses
        # plainly, and still answers for a transfer already settled.
        with pytest.raises(TerminalError):
            harness.connector.cancel(waiting.reference)
        assert harness.connector.cancel(collected.reference) == P.PAID
        return

    assert harness.connector.cancel(waiting.reference) == P.CANCELLED
    assert harness.connector.cancel(collected.reference) == P.PAID
    assert harness.partner_status(waiting.reference) == P.CANCELLED
    assert harness.partner_status(collected.reference) == P.PAID


def test_a_reference_never_sent_is_not_found(harness: Harness) -> None:
    never = harness.make_transfers(1)[0].reference

    assert harness.connector.status([never]) == {never: P.NOT_FOUND}
    assert harness.partner_status(never) == P.NOT_FOUND


def test_a_rejection_carries_its_reason_code(harness: Harness) -> None:
    refused, taken = harness.make_transfers(2)
    harness.reject_next("AC04")

    at_send = {r.reference: r for r in harness.connector.send([refused, taken])}
    harness.advance(P.PAID, [taken.reference])
    later = [u for u in harness.inbound() if u.status == P.REJECTED]

    rejection = (at_send[refused.reference] if at_send[refused.reference].status == P.REJECTED
                 else next(u for u in later if u.reference == refused.reference))
    assert rejection.reason and rejection.reason.startswith("AC04")
    assert at_send[taken.reference].status == P.RECEIVED
    assert harness.partner_status(refused.reference) == P.REJECTED
    assert harness.partner_status(taken.reference) == P.PAID


def test_duplicate_and_out_of_order_messages_change_nothing_the_second_time(
        harness: Harness, pg_svc: Services) -> None:
    chunk = harness.make_transfers(4)
    harness.connector.send(chunk)
    seed_transfers(pg_svc, harness.partner_code, chunk, status="sent")
    harness.fault("duplicate_messages")
    harness.fault("out_of_order_messages")

    harness.advance(P.PAID)
    updates = harness.inbound()
    for update in updates:            # one message per request, in arrival order
        confirmations.apply(pg_svc, harness.partner_code, _as_request([update]))
    after_first = footprint(pg_svc)
    replay = confirmations.apply(pg_svc, harness.partner_code, _as_request(updates))

    assert set(statuses(pg_svc, [t.reference for t in chunk]).values()) == {"paid"}
    assert replay.applied == 0 and replay.duplicates + replay.stale == len(updates)
    assert footprint(pg_svc) == after_first


def test_an_unanswered_send_the_partner_took_is_not_sent_again(
        harness: Harness, pg_svc: Services) -> None:
    chunk = harness.make_transfers(3)
    svc = _services_for(pg_svc, harness, connector_timeout_seconds=0.5)
    batch_id = seed_transfers(svc, harness.partner_code, chunk, status="queued")
    outbox_id = outbox_item(svc, batch_id).id
    harness.fault("accept_then_timeout", seconds=1.5)

    with pytest.raises(AmbiguousOutcome):
        dispatch.dispatch_chunk(svc, outbox_id)
    assert set(statuses(svc, [t.reference for t in chunk]).values()) == {"unknown"}
    harness.fault("clear")
    outcome = dispatch.dispatch_chunk(svc, outbox_id)

    assert outcome.resolved_unknown == 3 and outcome.sent == 0
    assert set(statuses(svc, [t.reference for t in chunk]).values()) == {"sent"}
    assert harness.held_count() == 3


def test_only_a_definitive_not_found_allows_a_resend_with_the_same_reference(
        harness: Harness, pg_svc: Services) -> None:
    chunk = harness.make_transfers(3)
    svc = _services_for(pg_svc, harness, connector_timeout_seconds=0.5)
    batch_id = seed_transfers(svc, harness.partner_code, chunk, status="queued")
    outbox_id = outbox_item(svc, batch_id).id
    harness.fault("lost_request", seconds=1.5)

    with pytest.raises(AmbiguousOutcome):
        dispatch.dispatch_chunk(svc, outbox_id)
    assert harness.held_count() == 0
    harness.fault("clear")
    outcome = dispatch.dispatch_chunk(svc, outbox_id)

    assert (outcome.resolved_unknown, outcome.sent) == (3, 3)
    assert set(statuses(svc, [t.reference for t in chunk]).values()) == {"sent"}
    assert {t.reference: harness.partner_status(t.reference) for t in chunk} == \
        {t.reference: P.RECEIVED for t in chunk}
    assert harness.held_count() == 3
