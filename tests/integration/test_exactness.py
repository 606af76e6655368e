"""Every transfer exact under concurrent partner messages, on PostgreSQL with
real parallel HTTP requests to our API served from threads (issue 10):

- `available` and `paid` for one transfer at the same instant end `paid`;
- the expiry job racing `paid` callbacks loses nothing: paid ends paid;
- one event id in two simultaneous requests is applied once, never a 500;
- one event id for two references is a conflict (409), never a silent drop;
- a transfer behind the partner's word (queued, sending) is taken along;
- an amount or currency not the transfer's is refused with an exception;
- `paid` for a cancelled transfer, and after expiry, opens an exception.
"""
from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, suppress
from dataclasses import dataclass
from datetime import date, timedelta

import httpx
import pytest
from sqlalchemy import func, select

from connectors import signing
from disbursement.db.models import LedgerLine, Transfer, TransferEvent
from disbursement.db.models.ledger import ReconException
from disbursement.demo import api_listener, api_server, listener_url
from disbursement.services.officers import users
from reconciliation import expiry
from tests.conftest import PARTNER_KEYS
from tests.support.cycle import sent_references

# PostgreSQL only: row locks and parallel requests are what is under test.
pytestmark = [pytest.mark.integration,
              pytest.mark.parametrize("svc", ["postgresql"], indirect=True)]
PARTNER = "BARID"
WORKERS = 16


@dataclass
class World:
    svc: object
    api: str
    refs: list[str]     # PARTNER's transfers, all `sent`


@pytest.fixture
def world(pg_svc, officers, households_csv) -> Iterator[World]:
    """Our API on PostgreSQL, served from threads, with PARTNER's transfers sent."""
    svc = pg_svc
    refs = sent_references(svc, officers, households_csv(600))[PARTNER]
    assert len(refs) >= 150
    with ExitStack() as stack:
        listener = stack.enter_context(api_listener("127.0.0.1", 0))
        stack.enter_context(api_server(svc, "127.0.0.1", 0, listener))
        yield World(svc, listener_url(listener), refs)


def _post(client: httpx.Client, api: str, items, *, partner: str = PARTNER) -> httpx.Response:
    body = json.dumps(items).encode()
    path = f"/api/v1/partners/{partner}/confirmations"
    headers = signing.sign(PARTNER_KEYS[partner].encode(), body, method="POST", target=path)
    return client.post(f"{api}{path}", content=body,
                       headers={"Content-Type": "application/json", **headers})


def _all_at_once(api: str, bodies: list) -> list[httpx.Response]:
    """Each body posted from its own thread, released together by a barrier."""
    barrier = threading.Barrier(min(len(bodies), WORKERS))

    def send(body) -> httpx.Response:
        with httpx.Client(timeout=60) as client:
            with suppress(threading.BrokenBarrierError):
                barrier.wait(timeout=30)
            return _post(client, api, body)

    with ThreadPoolExecutor(WORKERS) as pool:
        return list(pool.map(send, bodies))


def _statuses(svc, refs: list[str]) -> dict[str, str]:
    with svc.uow() as session:
        return dict(session.execute(select(Transfer.reference, Transfer.status)
                                    .where(Transfer.reference.in_(refs))).all())


def _events(svc, refs: list[str], to_status: str) -> Counter:
    with svc.uow() as session:
        return Counter(session.execute(
            select(Transfer.reference).join(TransferEvent, TransferEvent.transfer_id == Transfer.id)
            .where(Transfer.reference.in_(refs), TransferEvent.to_status == to_status)).scalars())


def _paid_booked(svc) -> int:
    with svc.uow() as session:
        return session.execute(select(func.coalesce(func.sum(LedgerLine.amount_centimes), 0))
                               .where(LedgerLine.account == "paid:asd")).scalar_one()


def _amounts(svc, refs: list[str]) -> int:
    with svc.uow() as session:
        return session.execute(select(func.sum(Transfer.amount_centimes))
                               .where(Transfer.reference.in_(refs))).scalar_one()


def _exceptions(svc) -> list[tuple[str, str]]:
    with svc.uow() as session:
        return sorted(session.execute(select(ReconException.type, ReconException.reference)).all())


def test_available_and_paid_at_the_same_instant_end_paid(world):
    refs = world.refs[:150]
    bodies = []
    for n, ref in enumerate(refs):
        bodies += [{"event_id": f"A-{n}", "reference": ref, "status": "available"},
                   {"event_id": f"P-{n}", "reference": ref, "status": "paid"}]
    answers = _all_at_once(world.api, bodies)
    assert {a.status_code for a in answers} == {200}
    outcomes = Counter(a.json()["results"][0]["outcome"]
                       for a, b in zip(answers, bodies, strict=True) if b["status"] == "paid")
    assert outcomes == {"applied": 150}
    assert set(_statuses(world.svc, refs).values()) == {"paid"}
    assert _events(world.svc, refs, "paid") == dict.fromkeys(refs, 1)
    assert set(_events(world.svc, refs, "available").values()) <= {1}
    assert _paid_booked(world.svc) == _amounts(world.svc, refs)


def test_the_expiry_job_racing_paid_callbacks_loses_no_payment(world):
    refs = world.refs[:200]
    later = date.today() + timedelta(days=400)   # every sent transfer is due for expiry
    bodies = [{"event_id": f"P-{n}", "reference": ref, "status": "paid"}
              for n, ref in enumerate(refs)]
    with ThreadPoolExecutor(1) as pool:
        expiring = pool.submit(expiry.run, world.svc, users.SYSTEM, later)
        answers = _all_at_once(world.api, bodies)
        expiring.result()
    assert {a.status_code for a in answers} == {200}
    assert {a.json()["results"][0]["outcome"] for a in answers} == {"applied"}
    assert set(_statuses(world.svc, refs).values()) == {"paid"}
    assert _paid_booked(world.svc) == _amounts(world.svc, refs)
    # Those the expiry reached first went expired -> paid, each with an exception.
    late = {ref for ref, n in _events(world.svc, refs, "expired").items() if n}
    assert [r for t, r in _exceptions(world.svc) if t == "paid_but_expired"] == sorted(late)


def test_one_event_id_in_two_simultaneous_requests_is_applied_once(world):
    refs = world.refs[:100]
    same = [{"event_id": f"E-{n}", "reference": ref, "status": "paid"}
            for n, ref in enumerate(refs)]
    answers = _all_at_once(world.api, [body for body in same for _ in range(2)])
    assert {a.status_code for a in answers} == {200}
    outcomes = Counter(a.json()["results"][0]["outcome"] for a in answers)
    assert outcomes == {"applied": 100, "duplicate": 100}
    assert _events(world.svc, refs, "paid") == dict.fromkeys(refs, 1)
    assert _paid_booked(world.svc) == _amounts(world.svc, refs)


def test_one_event_id_for_two_references_is_a_conflict(world):
    r1, r2 = world.refs[:2]
    with httpx.Client(timeout=30) as client:
        first = _post(client, world.api, {"event_id": "X-1", "reference": r1, "status": "paid"})
        second = _post(client, world.api, {"event_id": "X-1", "reference": r2, "status": "paid"})
        again = _post(client, world.api, {"event_id": "X-1", "reference": r1, "status": "paid"})
    assert first.json()["applied"] == 1
    assert second.status_code == 409
    assert second.json()["error"]["message"] == (
        f"event id(s) already used with another payload: X-1 (first used for {r1})")
    assert again.status_code == 200 and again.json()["duplicates"] == 1
    assert _statuses(world.svc, [r1, r2]) == {r1: "paid", r2: "sent"}
    # Simultaneous: one wins, the other is told why; never a 500.
    r3, r4 = world.refs[2:4]
    answers = _all_at_once(world.api, [{"event_id": "X-2", "reference": r, "status": "paid"}
                                       for r in (r3, r4)])
    assert sorted(a.status_code for a in answers) == [200, 409]
    assert sorted(_statuses(world.svc, [r3, r4]).values()) == ["paid", "sent"]


def test_a_transfer_behind_the_partner_is_taken_along(world):
    queued, sending = world.refs[:2]
    with world.svc.uow() as session:
        ids = dict(session.execute(select(Transfer.reference, Transfer.id)
                                   .where(Transfer.reference.in_([queued, sending]))).all())
        session.execute(Transfer.__table__.update().where(Transfer.id == ids[queued])
                        .values(status="queued"))
        session.execute(Transfer.__table__.update().where(Transfer.id == ids[sending])
                        .values(status="sending"))
        session.commit()
    with httpx.Client(timeout=30) as client:
        answer = _post(client, world.api, [
            {"event_id": "L-1", "reference": queued, "status": "paid"},
            {"event_id": "L-2", "reference": sending, "status": "available"}])
    assert [r["outcome"] for r in answer.json()["results"]] == ["applied", "applied"]
    assert _statuses(world.svc, [queued, sending]) == {queued: "paid", sending: "available"}
    with world.svc.uow() as session:
        steps = session.execute(
            select(TransferEvent.from_status, TransferEvent.to_status)
            .where(TransferEvent.transfer_id == ids[queued], TransferEvent.source == "partner")
            .order_by(TransferEvent.id)).all()
    assert [tuple(s) for s in steps] == [("queued", "sent"), ("sent", "paid")]


def test_an_amount_or_currency_not_the_transfers_is_refused_with_an_exception(world):
    r1, r2, r3 = world.refs[:3]
    with httpx.Client(timeout=30) as client:
        answer = _post(client, world.api, [
            {"event_id": "M-1", "reference": r1, "status": "paid", "amount_centimes": 100,
             "currency": "USD"},
            {"event_id": "M-2", "reference": r2, "status": "paid", "amount_centimes": 1},
            {"event_id": "M-3", "reference": r3, "status": "paid",
             "amount_centimes": int(_amounts(world.svc, [r3])), "currency": "MAD"}]).json()
    assert [r["outcome"] for r in answer["results"]] == ["refused", "refused", "applied"]
    assert answer["results"][0]["error"].startswith("currency USD is not the transfer's MAD")
    assert _statuses(world.svc, [r1, r2, r3]) == {r1: "sent", r2: "sent", r3: "paid"}
    assert _paid_booked(world.svc) == _amounts(world.svc, [r3])
    assert _exceptions(world.svc) == sorted([("amount_mismatch", r1), ("amount_mismatch", r2)])


def test_paid_for_a_cancelled_transfer_opens_an_exception_and_moves_nothing(world):
    r1 = world.refs[0]
    with httpx.Client(timeout=30) as client:
        _post(client, world.api, {"event_id": "C-1", "reference": r1, "status": "cancelled"})
        answer = _post(client, world.api, {"event_id": "C-2", "reference": r1, "status": "paid"})
        again = _post(client, world.api, {"event_id": "C-2", "reference": r1, "status": "paid"})
    assert answer.json()["results"] == [
        {"reference": r1, "outcome": "disputed", "status": "cancelled"}]
    assert again.json()["duplicates"] == 1
    assert _exceptions(world.svc) == [("paid_but_cancelled", r1)]
    assert _paid_booked(world.svc) == 0
    with world.svc.uow() as session:
        assert session.execute(select(Transfer.partner_status).where(
            Transfer.reference == r1)).scalar_one() == "paid"
