"""One test per partner fault kind not covered elsewhere, over the `live`
fixture (our API on loopback, REST simulator processes posting signed
callbacks). Each ends with every transfer in the right state, none paid twice,
none lost. Covered elsewhere: 5xx and accept-then-timeout and rejections
(test_dispatch_faults.py), lost requests and NOT_FOUND resends (conformance),
statement flaws (test_cycle.py)."""
from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager, suppress

import pytest
from sqlalchemy import func, select

from disbursement.db.models import LedgerLine, LedgerPosting, OutboxItem, Transfer
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


def _assert_sound(live, batch_id: int, final: str) -> None:
    """Every transfer in `final`, held once by the partner, paid at most once,
    the ledger balanced."""
    svc = live.svc
    statuses = transfer_statuses(svc, batch_id)
    assert set(statuses.values()) == {final}, statuses
    state = call_simulator(live, "GET", "/_sim/state")
    assert state["transfers"] == len(statuses)            # none lost
    assert state["conflicting_duplicates"] == 0
    with svc.uow() as session:
        assert ledger.check(session, "asd", "2026-12").balanced
    # Paid once: the payments posted add up to exactly the transfers paid.
    posted, paid = _paid_posting_total(svc, batch_id)
    assert posted == paid
    assert outbox_item(svc, batch_id).status == "done"


def _paid_posting_total(svc, batch_id: int) -> tuple[int, int]:
    with svc.uow() as session:
        posted = session.execute(select(func.coalesce(func.sum(LedgerLine.amount_centimes), 0))
                                 .join(LedgerPosting, LedgerPosting.id == LedgerLine.posting_id)
                                 .where(LedgerPosting.kind == "payment",
                                        LedgerPosting.partner_code == PARTNER,
                                        LedgerLine.account.like("paid:%"))).scalar_one()
        paid = session.execute(select(func.coalesce(func.sum(Transfer.amount_centimes), 0))
                               .where(Transfer.partner_code == PARTNER,
                                      Transfer.status == "paid")).scalar_one()
    return int(posted), int(paid)


def _released_then_paid(live, officers, households_csv, faults: dict) -> int:
    """PARTNER's batch released and dispatched under `faults`, then every
    transfer paid by the partner; returns the batch id."""
    batch_id = approved_batch(live.svc, officers, households_csv)
    call_simulator(live, "POST", "/_sim/faults", faults)
    batches.release(live.svc, batch_id, officers.maker)
    live.svc.queue.drain()
    call_simulator(live, "POST", "/_sim/advance", {"to": "paid"})
    return batch_id


def test_latency_slows_but_changes_nothing(live, officers, households_csv) -> None:
    batch_id = _released_then_paid(live, officers, households_csv, {"latency_ms": 300})

    _assert_sound(live, batch_id, "paid")
    posted, paid = _paid_posting_total(live.svc, batch_id)
    assert posted == paid > 0


@contextmanager
def blackhole() -> Iterator[str]:
    """A loopback port whose accept queue is full: connections time out."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(0)
    port = server.getsockname()[1]
    fillers = []
    for _ in range(3):
        filler = socket.socket()
        filler.setblocking(False)
        with suppress(BlockingIOError):
            filler.connect(("127.0.0.1", port))
        fillers.append(filler)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        for filler in fillers:
            filler.close()
        server.close()


@pytest.mark.live_settings(connector_timeout_seconds=0.5, breaker_failure_threshold=100)
def test_a_connection_timeout_is_retried_then_sent_once(live, officers, households_csv) -> None:
    svc = live.svc
    batch_id = approved_batch(svc, officers, households_csv)
    with blackhole() as unreachable:
        # Services (and their job queue) that see the partner through a cut network.
        cut_off = svc.with_partner_urls({PARTNER: unreachable})
        batches.release(cut_off, batch_id, officers.maker)
        item = wait_until(lambda: (i := outbox_item(svc, batch_id)).attempts >= 1 and i,
                           "a failed attempt")
        assert "partner unreachable (ConnectTimeout" in item.last_error
        assert set(transfer_statuses(svc, batch_id).values()) == {"queued"}
    cut_off.queue.drain()               # the job's own retries never get through...
    assert set(transfer_statuses(svc, batch_id).values()) == {"queued"}
    dispatch.sweep(svc, include_not_due=True)   # ...the network is back: the sweeper's
    svc.queue.drain()                           # copy, on the services that reach it, sends
    call_simulator(live, "POST", "/_sim/advance", {"to": "paid"})

    _assert_sound(live, batch_id, "paid")
    assert call_simulator(live, "GET", "/_sim/state")["duplicate_sends"] == 0


def test_duplicate_callbacks_pay_once(live, officers, households_csv) -> None:
    batch_id = approved_batch(live.svc, officers, households_csv)
    call_simulator(live, "POST", "/_sim/faults", {"duplicate_callbacks": True})
    batches.release(live.svc, batch_id, officers.maker)
    live.svc.queue.drain()

    answer = call_simulator(live, "POST", "/_sim/advance", {"to": "paid"})

    assert call_simulator(live, "GET", "/_sim/state")["callback_requests"] == 2 * (
        -(-answer["delivered"] // 500))
    _assert_sound(live, batch_id, "paid")
    posted, paid = _paid_posting_total(live.svc, batch_id)
    assert posted == paid > 0


def test_out_of_order_callbacks_end_paid(live, officers, households_csv) -> None:
    batch_id = _released_then_paid(live, officers, households_csv,
                                   {"out_of_order_callbacks": True})

    _assert_sound(live, batch_id, "paid")
    posted, paid = _paid_posting_total(live.svc, batch_id)
    assert posted == paid > 0


def test_uncollected_transfers_expire_and_stay_outstanding(live, officers,
                                                          households_csv) -> None:
    batch_id = approved_batch(live.svc, officers, households_csv)
    call_simulator(live, "POST", "/_sim/faults", {"uncollected_rate": 1})
    batches.release(live.svc, batch_id, officers.maker)
    live.svc.queue.drain()

    first = call_simulator(live, "POST", "/_sim/advance", {})
    assert set(transfer_statuses(live.svc, batch_id).values()) == {"available"}
    second = call_simulator(live, "POST", "/_sim/advance", {})

    assert list(first["by_status"]) == ["available"] and list(second["by_status"]) == ["expired"]
    _assert_sound(live, batch_id, "expired")
    with live.svc.uow() as session:
        [balance] = [c for c in ledger.check(session, "asd", "2026-12").cycles
                     if c.partner == PARTNER]
    assert balance.paid == 0 and balance.outstanding == balance.released > 0


def test_rejections_with_reason_codes_reach_the_transfers(live, officers,
                                                          households_csv) -> None:
    batch_id = approved_batch(live.svc, officers, households_csv)
    count = len(transfer_statuses(live.svc, batch_id))
    call_simulator(live, "POST", "/_sim/reject-next", {"reason_code": "AC04", "count": count})
    batches.release(live.svc, batch_id, officers.maker)
    live.svc.queue.drain()

    _assert_sound(live, batch_id, "rejected")
    with live.svc.uow() as session:
        reasons = set(session.execute(select(Transfer.status_reason).where(
            Transfer.batch_id == batch_id)).scalars())
        outbox = session.execute(select(OutboxItem.status).where(
            OutboxItem.batch_id == batch_id)).scalar_one()
    assert reasons == {"AC04 closed account"} and outbox == "done"
    # Nothing was paid, so nothing was posted as paid.
    assert _paid_posting_total(live.svc, batch_id) == (0, 0)
