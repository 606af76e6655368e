"""RestConnector against the REST partner simulator: a real process over HTTP,
posting signed confirmations to a real receiver. No mocks."""
from __future__ import annotations

import dataclasses
import json
import os
import re
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from connectors.base import (
    AmbiguousOutcome,
    OutboundTransfer,
    PartnerStatus,
    RetryableError,
    TerminalError,
)
from connectors.rest import RestConnector
from connectors.signing import SignatureError, verify
from connectors.simulators.rest import key_env_name
from connectors.simulators.rest_process import PROJECT_ROOT, SimulatorStartError
from connectors.simulators.rest_process import RestSimulatorProcess as Simulator

pytestmark = pytest.mark.e2e

PARTNER = "PI1"
KEY_TEXT = "e2e-shared-key"
KEY = KEY_TEXT.encode()
STATEMENT_HEADER = "reference,amount_centimes,currency,status,value_date,service_point"
REJECT_REASONS = {"AC01 invalid account", "RR01 identity mismatch"}


class CallbackReceiver:
    """Our side of the callbacks: verifies before parsing, records batches."""

    def __init__(self) -> None:
        self.url = ""
        self.batches: list[list[dict[str, Any]]] = []
        self.refusals: list[str] = []
        self.fail_next_requests = 0
        self._lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        return self._handle(Request(environ))(environ, start_response)

    def _handle(self, request: Request) -> Response:
        body = request.get_data()
        try:
            verify([KEY], request.headers, body, method=request.method, target=request.path)
        except SignatureError as exc:
            with self._lock:
                self.refusals.append(str(exc))
            return Response(json.dumps({"error": str(exc)}), 401)
        with self._lock:
            if self.fail_next_requests:
                self.fail_next_requests -= 1
                return Response('{"error": "busy"}', 503)
            self.batches.append(json.loads(body))
        return Response(status=204)

    @property
    def confirmations(self) -> list[dict[str, Any]]:
        with self._lock:
            return [c for batch in self.batches for c in batch]


@pytest.fixture
def receiver() -> Iterator[CallbackReceiver]:
    receiver = CallbackReceiver()
    server = make_server("127.0.0.1", 0, receiver, threaded=True)
    receiver.url = f"http://127.0.0.1:{server.server_port}/callbacks"
    # A short poll so shutdown() returns quickly at teardown.
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              name="callback-receiver")
    thread.start()
    yield receiver
    server.shutdown()
    thread.join()
    server.server_close()


@pytest.fixture
def start_simulator(receiver: CallbackReceiver,
                    tmp_path: Path) -> Iterator[Callable[..., Simulator]]:
    started: list[Simulator] = []

    def start(*extra_args: str) -> Simulator:
        simulator = Simulator.start(PARTNER, receiver.url, KEY_TEXT, *extra_args,
                                    log_path=tmp_path / f"simulator-{len(started)}.log")
        started.append(simulator)
        return simulator

    yield start
    for simulator in started:
        simulator.stop()


@pytest.fixture
def simulator(start_simulator: Callable[..., Simulator]) -> Simulator:
    return start_simulator()


def connect(simulator: Simulator, key: bytes = KEY,
            timeout_seconds: float = 5.0) -> RestConnector:
    return RestConnector(PARTNER, simulator.url, key, timeout_seconds=timeout_seconds)


def make_transfers(count: int, first: int = 1) -> list[OutboundTransfer]:
    return [OutboundTransfer(reference=f"D{n:013d}", amount_centimes=70_000 + n * 100,
                             currency="MAD", channel="cash", beneficiary_name="Fatima Zahra",
                             national_id="BE123456", phone="+212600000000", account=None,
                             region_code="01")
            for n in range(first, first + count)]


def statuses_by_reference(confirmations: list[dict[str, Any]]) -> dict[str, list[str]]:
    seen: dict[str, list[str]] = {}
    for confirmation in confirmations:
        seen.setdefault(confirmation["reference"], []).append(confirmation["status"])
    return seen


# -- the partner API ----------------------------------------------------------

def test_resending_a_chunk_never_creates_a_second_transfer(simulator: Simulator) -> None:
    chunk = make_transfers(3)
    with connect(simulator) as connector:
        first = connector.send(chunk)
        again = connector.send(chunk)

    assert [(r.reference, r.status) for r in first] == \
        [(t.reference, PartnerStatus.RECEIVED) for t in chunk]
    assert [r.status for r in again] == [PartnerStatus.RECEIVED] * 3
    state = simulator.state()
    assert (state["transfers"], state["by_status"], state["duplicate_sends"]) == \
        (3, {"received": 3}, 3)


def test_partner_rejects_invalid_items_and_keeps_the_rest(simulator: Simulator) -> None:
    good, zero, bad_reference = make_transfers(3)
    zero = dataclasses.replace(zero, amount_centimes=0)
    bad_reference = dataclasses.replace(bad_reference, reference="d-lower")

    with connect(simulator) as connector:
        results = connector.send([good, zero, bad_reference])

    assert [r.status for r in results] == \
        [PartnerStatus.RECEIVED, PartnerStatus.REJECTED, PartnerStatus.REJECTED]
    assert results[1].reason == "AM01 amount_centimes must be a positive integer"
    assert results[2].reason == "FF01 reference must be 1 to 16 upper-case letters or digits"
    assert simulator.state()["transfers"] == 1


def test_status_reports_what_the_partner_holds(simulator: Simulator) -> None:
    chunk = make_transfers(2)
    with connect(simulator) as connector:
        connector.send(chunk)
        statuses = connector.status([chunk[0].reference, "D9999999999999", chunk[1].reference])

    assert statuses == {chunk[0].reference: PartnerStatus.RECEIVED,
                        "D9999999999999": PartnerStatus.NOT_FOUND,
                        chunk[1].reference: PartnerStatus.RECEIVED}


def test_cancel_before_collection_only(simulator: Simulator) -> None:
    waiting, collected = make_transfers(2)
    with connect(simulator) as connector:
        connector.send([collected])
        simulator.advance()                           # no faults: paid
        connector.send([waiting])

        assert connector.cancel(waiting.reference) == PartnerStatus.CANCELLED
        assert connector.cancel(waiting.reference) == PartnerStatus.CANCELLED
        assert connector.cancel(collected.reference) == PartnerStatus.PAID
        with pytest.raises(TerminalError, match="HTTP 404: unknown reference D9999999999999"):
            connector.cancel("D9999999999999")
        assert connector.status([waiting.reference]) == \
            {waiting.reference: PartnerStatus.CANCELLED}


# -- errors translated at the edge ------------------------------------------

def test_bad_signature_is_refused_and_terminal(simulator: Simulator) -> None:
    with connect(simulator, key=b"not-the-shared-key") as connector, \
            pytest.raises(TerminalError, match="HTTP 401: signature does not match"):
        connector.send(make_transfers(1))

    assert simulator.state()["transfers"] == 0


def test_partner_outage_is_retryable(simulator: Simulator) -> None:
    simulator.faults(error_rate=1)
    with connect(simulator) as connector:
        with pytest.raises(RetryableError, match="HTTP 503: simulated outage"):
            connector.send(make_transfers(1))
        with pytest.raises(RetryableError, match="HTTP 503"):
            connector.status(["D0000000000001"])

    assert simulator.state()["transfers"] == 0


def test_unreachable_partner_is_retryable(simulator: Simulator) -> None:
    simulator.stop()                   # its port now refuses connections
    with RestConnector(PARTNER, simulator.url, KEY) as connector, \
            pytest.raises(RetryableError, match="partner unreachable"):
        connector.send(make_transfers(1))


def test_timeout_after_acceptance_is_ambiguous_and_the_partner_holds_it(
        simulator: Simulator) -> None:
    chunk = make_transfers(2)
    simulator.faults(timeout_rate=1, timeout_sleep_seconds=2)
    with connect(simulator, timeout_seconds=0.5) as connector:
        with pytest.raises(AmbiguousOutcome, match="no answer after the request was sent"):
            connector.send(chunk)
        simulator.faults(timeout_rate=0)
        statuses = connector.status([t.reference for t in chunk])

    assert set(statuses.values()) == {PartnerStatus.RECEIVED}


# -- confirmations (callbacks) ------------------------------------------------

def test_advance_posts_signed_confirmations(
        start_simulator: Callable[..., Simulator], receiver: CallbackReceiver) -> None:
    simulator = start_simulator("--reject-rate", "0.25", "--uncollected-rate", "0.25")
    chunk = make_transfers(40)
    with connect(simulator) as connector:
        connector.send(chunk)
        answer = simulator.advance()
        final = connector.status([t.reference for t in chunk])

    confirmations = receiver.confirmations
    assert receiver.refusals == []
    assert answer["delivered"] == len(confirmations) and answer["pending"] == 0
    assert answer["by_status"] == dict(Counter(c["status"] for c in confirmations))
    assert len({c["event_id"] for c in confirmations}) == len(confirmations)
    paths = statuses_by_reference(confirmations)
    assert set(paths) == {t.reference for t in chunk}
    assert {tuple(p) for p in paths.values()} == \
        {("rejected",), ("available",), ("available", "paid")}
    for confirmation in confirmations:
        assert datetime.fromisoformat(confirmation["occurred_at"]).utcoffset() == \
            UTC.utcoffset(None)
        if confirmation["status"] == "rejected":
            assert confirmation["reason"] in REJECT_REASONS
        if confirmation["status"] == "paid":
            assert re.fullmatch(r"SP-00[0-4]\d", confirmation["service_point"])
    assert {ref: status.value for ref, status in final.items()} == \
        {ref: path[-1] for ref, path in paths.items()}


def test_confirmations_are_sent_in_batches(
        start_simulator: Callable[..., Simulator], receiver: CallbackReceiver) -> None:
    simulator = start_simulator("--callback-batch", "4")
    with connect(simulator) as connector:
        connector.send(make_transfers(5))
    simulator.advance()                                    # 5 available + 5 paid

    assert [len(batch) for batch in receiver.batches] == [4, 4, 2]


def test_refused_confirmations_stay_pending_until_accepted(
        simulator: Simulator, receiver: CallbackReceiver) -> None:
    receiver.fail_next_requests = 1
    with connect(simulator) as connector:
        connector.send(make_transfers(3))

    assert simulator.advance() == {"delivered": 0, "pending": 6,
                                   "by_status": {"available": 3, "paid": 3}}
    assert receiver.confirmations == []
    assert simulator.advance() == {"delivered": 6, "pending": 0, "by_status": {}}
    assert len(receiver.confirmations) == 6
    assert simulator.state()["last_callback_error"] == 'HTTP 503: {"error": "busy"}'


def test_duplicate_callbacks_fault_sends_every_request_twice(
        simulator: Simulator, receiver: CallbackReceiver) -> None:
    simulator.faults(duplicate_callbacks=True)
    with connect(simulator) as connector:
        connector.send(make_transfers(2))
    simulator.advance()

    assert len(receiver.batches) == 2 and receiver.batches[0] == receiver.batches[1]
    assert set(Counter(c["event_id"] for c in receiver.confirmations).values()) == {2}
    state = simulator.state()
    assert (state["callbacks_delivered"], state["callback_requests"]) == (4, 2)


def test_out_of_order_fault_sends_paid_before_available(
        simulator: Simulator, receiver: CallbackReceiver) -> None:
    simulator.faults(out_of_order_callbacks=True)
    with connect(simulator) as connector:
        connector.send(make_transfers(3))
    simulator.advance()

    paths = statuses_by_reference(receiver.confirmations)
    assert list(paths.values()) == [["paid", "available"]] * 3
    for reference in paths:
        at = {c["status"]: datetime.fromisoformat(c["occurred_at"])
              for c in receiver.confirmations if c["reference"] == reference}
        assert at["available"] < at["paid"]       # occurred_at still tells the truth


# -- the settlement statement -------------------------------------------------

def parse_statement(raw: bytes) -> tuple[list[list[str]], list[str]]:
    text = raw.decode("utf-8")
    assert text.endswith("\n") and "\r" not in text
    header, *lines, trailer = text[:-1].split("\n")
    assert header == STATEMENT_HEADER
    return [line.split(",") for line in lines], trailer.split(",")


def test_statement_lists_paid_transfers_with_a_trailer(
        simulator: Simulator, receiver: CallbackReceiver) -> None:
    simulator.faults(reject_rate=0.3)
    chunk = make_transfers(10)
    with connect(simulator) as connector:
        connector.send(chunk)
        simulator.advance()
        lines, trailer = parse_statement(connector.fetch_statement())

    paid = {c["reference"]: c["service_point"] for c in receiver.confirmations
            if c["status"] == "paid"}
    amounts = {t.reference: t.amount_centimes for t in chunk}
    today = datetime.now(UTC).date().isoformat()
    assert 0 < len(paid) < len(chunk)
    assert lines == [[ref, str(amounts[ref]), "MAD", "paid", today, paid[ref]]
                     for ref in sorted(paid)]
    assert trailer == ["TRAILER", str(len(paid)), str(sum(amounts[ref] for ref in paid))]


def test_statement_since_a_future_date_is_empty(simulator: Simulator) -> None:
    with connect(simulator) as connector:
        connector.send(make_transfers(2))
        simulator.advance()
        assert connector.fetch_statement(since="2999-01-01") == \
            (STATEMENT_HEADER + "\nTRAILER,0,0\n").encode()
        with pytest.raises(TerminalError, match="HTTP 400: since must be an ISO date"):
            connector.fetch_statement(since="yesterday")


def test_statement_faults_are_in_the_file_and_the_trailer_counts_them(
        simulator: Simulator) -> None:
    chunk = make_transfers(10)
    truth = {t.reference: t.amount_centimes for t in chunk}
    with connect(simulator) as connector:
        connector.send(chunk)
        simulator.advance()                              # all ten paid
        simulator.faults(statement_missing_lines=2, statement_extra_lines=3,
                         statement_altered_lines=1, statement_duplicate_lines=1)
        raw = connector.fetch_statement()
        assert connector.fetch_statement() == raw        # the flaws are stable

    lines, trailer = parse_statement(raw)
    references = [line[0] for line in lines]
    assert references == sorted(references)
    assert len(set(truth) - set(references)) == 2
    assert len(set(references) - set(truth)) == 3
    assert [n for n in Counter(references).values() if n > 1] == [2]
    altered = {line[0] for line in lines
               if line[0] in truth and int(line[1]) == truth[line[0]] + 100}
    assert len(altered) == 1
    assert len(lines) == 10 - 2 + 1 + 3
    assert trailer == ["TRAILER", str(len(lines)), str(sum(int(line[1]) for line in lines))]


# -- the simulator itself -----------------------------------------------------

def test_same_seed_gives_the_same_fates(
        start_simulator: Callable[..., Simulator]) -> None:
    fates = []
    chunk = make_transfers(30)
    for _ in range(2):
        simulator = start_simulator("--seed", "7", "--reject-rate", "0.3",
                                    "--uncollected-rate", "0.3")
        with connect(simulator) as connector:
            connector.send(chunk)
            simulator.advance()
            fates.append(connector.status([t.reference for t in chunk]))

    assert fates[0] == fates[1]
    assert len(set(fates[0].values())) == 3


def test_fault_settings_are_validated(simulator: Simulator) -> None:
    before = simulator.control("GET", "/_sim/faults")
    for bad in ({"no_such_fault": 1}, {"error_rate": 2}, {"latency_ms": True},
                {"reject_rate": 0.6, "uncollected_rate": 0.6}):
        with pytest.raises(httpx.HTTPStatusError, match="400 BAD REQUEST"):
            simulator.faults(**bad)

    assert simulator.control("GET", "/_sim/faults") == before


def test_simulator_refuses_to_start_without_the_key(receiver: CallbackReceiver) -> None:
    env = {k: v for k, v in os.environ.items() if k != key_env_name(PARTNER)}
    finished = subprocess.run(
        [sys.executable, "-m", "connectors.simulators.rest", "--port", "0",
         "--partner", PARTNER, "--callback-url", receiver.url],
        cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=30)

    assert finished.returncode == 2
    assert f"PARTNER_{PARTNER}_HMAC_KEY is not set" in finished.stderr



def test_a_simulator_that_cannot_start_says_why(receiver: CallbackReceiver,
                                                tmp_path: Path) -> None:
    with pytest.raises(SimulatorStartError, match="Invalid value for '--reject-rate'"):
        Simulator.start(PARTNER, receiver.url, KEY_TEXT, "--reject-rate", "2",
                        log_path=tmp_path / "simulator.log")
