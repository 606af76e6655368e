"""A partner simulator with a journal, killed with SIGKILL in the middle of
traffic and started again on the same journal: it still holds every transfer
it answered for, in the state it had, and still owes exactly the confirmations
its receiver never acknowledged. Real processes over real HTTP."""
from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from connectors import signing
from connectors.simulators.rest_process import RestSimulatorProcess
from tests.support.waiting import wait_until

pytestmark = pytest.mark.e2e

KEY = "barid-journal-key"
SENDERS = 4
ITEMS_PER_REQUEST = 10
ANSWERED_BEFORE_KILL = 300


class Receiver:
    """The callback endpoint's stand-in for the simulator under test: it
    refuses (503) or takes every confirmation list, and counts event ids."""

    def __init__(self) -> None:
        self.accepting = False
        self.received: list[str] = []
        self._lock = threading.Lock()

    def __call__(self, environ, start_response):
        request = Request(environ)
        if not self.accepting:
            return Response("not now", status=503)(environ, start_response)
        with self._lock:
            self.received += [event["event_id"] for event in json.loads(request.get_data())]
        return Response("{}", content_type="application/json")(environ, start_response)


@contextmanager
def receiving(receiver: Receiver) -> Iterator[str]:
    server = make_server("127.0.0.1", 0, receiver, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.port}/callbacks"
    finally:
        server.shutdown()
        thread.join()


def _start(journal: Path, callback_url: str, tmp_path: Path, run: int) -> RestSimulatorProcess:
    return RestSimulatorProcess.start("BARID", callback_url, KEY, "--journal", str(journal),
                                      "--seed", "5", "--uncollected-rate", "0.2",
                                      log_path=tmp_path / f"sim-{run}.log")


def _send(client: httpx.Client, url: str, references: list[str]) -> httpx.Response:
    body = json.dumps({"transfers": [{"reference": r, "amount_centimes": 90_000,
                                      "currency": "MAD"} for r in references]}).encode()
    headers = signing.sign(KEY.encode(), body, method="POST", target="/v1/transfers")
    return client.post(f"{url}/v1/transfers", content=body,
                       headers={"Content-Type": "application/json", **headers})


def _kill(sim: RestSimulatorProcess) -> None:
    sim.process.kill()
    sim.process.wait()
    sim.stop()


def _traffic(url: str, answered: list[str], sent: list[str], stop: threading.Event,
             sender: int) -> None:
    """Sends fresh references until `stop` or until the partner is gone."""
    with httpx.Client(timeout=10) as client:
        for n in range(10_000):
            if stop.is_set():
                return
            references = [f"S{sender}N{n:04d}I{i}" for i in range(ITEMS_PER_REQUEST)]
            sent.extend(references)
            try:
                response = _send(client, url, references)
            except httpx.TransportError:
                return
            if response.status_code == 200:
                answered.extend(r["reference"] for r in response.json()["results"]
                                if r["status"] == "received")


def test_a_partner_killed_mid_traffic_keeps_its_book(tmp_path):
    journal = tmp_path / "barid.jsonl"
    receiver = Receiver()
    with receiving(receiver) as callback_url:
        sim = _start(journal, callback_url, tmp_path, 1)
        answered: list[str] = []
        sent: list[str] = []
        stop = threading.Event()
        try:
            with ThreadPoolExecutor(SENDERS) as pool:
                for sender in range(SENDERS):
                    pool.submit(_traffic, sim.url, answered, sent, stop, sender)
                wait_until(lambda: len(answered) >= ANSWERED_BEFORE_KILL // 2,
                           "the partner answers")
                sim.advance()                      # some become available or paid
                wait_until(lambda: len(answered) >= ANSWERED_BEFORE_KILL, "more answers")
                _kill(sim)                         # while the senders are sending
                stop.set()
        finally:
            stop.set()
            sim.stop()

        sim = _start(journal, callback_url, tmp_path, 2)
        try:
            state = sim.state()
            assert state["transfers"] >= len(answered) >= ANSWERED_BEFORE_KILL
            assert state["transfers"] <= len(sent)
            assert all(sim.held(reference) is not None for reference in answered[::7])
            moved = state["by_status"].get("available", 0) + state["by_status"].get("paid", 0)
            assert moved > 0
            # Nothing was acknowledged: every confirmation queued is still owed.
            assert state["callbacks_pending"] >= moved

            # Without traffic: killed and restarted, the book is the same book.
            sim.advance()
            before = sim.state()
            samples = {r: sim.held(r) for r in answered[::11]}
            _kill(sim)
            sim = _start(journal, callback_url, tmp_path, 3)
            after = sim.state()
            for key in ("transfers", "by_status", "callbacks_pending", "duplicate_sends"):
                assert after[key] == before[key], key
            assert {r: sim.held(r) for r in samples} == samples

            # The receiver takes them now; what it acknowledged is never owed again.
            receiver.accepting = True
            delivered = sim.advance()["delivered"]
            assert delivered >= before["callbacks_pending"]
            assert sim.state()["callbacks_pending"] == 0
            taken = len(receiver.received)
            _kill(sim)
            sim = _start(journal, callback_url, tmp_path, 4)
            assert sim.state()["callbacks_pending"] == 0
            sim.advance(to="expired")              # new confirmations only
            assert len(set(receiver.received[:taken])) == taken
            assert set(receiver.received[:taken]).isdisjoint(receiver.received[taken:])
        finally:
            sim.stop()
