"""The conformance harness: one connector, its simulator over the real transport,
and the controls the shared scenarios need.

Every protocol plugs in with one `Harness` implementation and one line in
`HARNESSES` (tests/conformance/conftest.py). The scenarios in `test_scenarios.py` then run
against it unchanged.

A harness provides:

- `partner_code`: a partner of config/partners.toml speaking this protocol
  (scenarios that touch our database create transfers for it);
- `connector`: a `connectors.base.Connector`, talking to the simulator;
- `make_transfers(n, channel=None)`: n fresh `OutboundTransfer`s the partner
  accepts (unique references; `channel` defaults to `default_channel`);
- `partner_status(reference)`: what the simulator holds, read through its own
  control (`/_sim` or its folder), NOT through the connector;
  `PartnerStatus.NOT_FOUND` when it holds nothing;
- `held_count()`: how many transfers the partner holds in all (idempotency);
- `advance(to, references=None)`: the partner moves the given (default: all
  open) transfers to `to` (AVAILABLE, PAID or EXPIRED) and emits its messages;
- `reject_next(reason_code)`: the partner rejects the next new transfer with
  that code; the rejection reaches us at send (synchronous protocols) or as an
  inbound update after `advance` (asynchronous ones);
- `fault(kind, **params)`: switch a fault on (`fault("clear")` switches all
  off). Kinds: "outage" (every call fails, retryable), "accept_then_timeout"
  (the partner takes the request, the answer never comes: params `seconds`),
  "lost_request" (the partner loses the request and answers too late),
  "duplicate_messages", "out_of_order_messages";
- `inbound()`: the partner's messages since the last call, as
  `connectors.base.InboundUpdate`s. Push protocols: signed callbacks received
  on a loopback HTTP receiver and parsed by the connector's own verification
  (`receive_callback`). Pull protocols: `connector.collect()`.
- `connect(timeout_seconds)`: another connector to the same partner (for
  short timeouts); `service_overrides()`: settings for our services so
  `svc.connector(partner_code)` reaches this simulator with the right keys.
"""
from __future__ import annotations

import itertools
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from connectors.base import Connector, InboundUpdate, OutboundTransfer, PartnerStatus
from connectors.rest import RestConnector
from connectors.signing import MemoryNonces, SignatureError, request_target
from connectors.simulators.rest_process import RestSimulatorProcess
from connectors.wallet import WalletConnector

_serial = itertools.count(1)


class Harness(Protocol):
    name: str
    partner_code: str
    default_channel: str
    connector: Connector

    def make_transfers(self, n: int, channel: str | None = None) -> list[OutboundTransfer]: ...

    def partner_status(self, reference: str) -> PartnerStatus: ...

    def held_count(self) -> int: ...

    def advance(self, to: PartnerStatus, references: Sequence[str] | None = None) -> None: ...

    def reject_next(self, reason_code: str) -> None: ...

    def fault(self, kind: str, **params: Any) -> None: ...

    def inbound(self) -> list[InboundUpdate]: ...

    def connect(self, timeout_seconds: float) -> Connector: ...

    def service_overrides(self) -> dict[str, Any]: ...


def unique_reference() -> str:
    """Upper-case alphanumeric, at most 16 characters, unique within a run."""
    return f"C{os.getpid() % 1_000_000:06d}{next(_serial):09d}"


class CallbackReceiver:
    """A loopback HTTP server standing for our callback endpoint: each request
    goes through the connector's `receive_callback` (signature and nonce
    first), and what it yields is kept for `inbound()`."""

    def __init__(self) -> None:
        self.url = ""
        self.connector: Any = None
        self.refusals: list[str] = []
        self._updates: list[InboundUpdate] = []
        self._nonces = MemoryNonces()
        self._lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        request = Request(environ)
        body = request.get_data()
        try:
            updates = self.connector.receive_callback(
                request.method, request_target(request.path, request.query_string),
                request.headers, body, self._nonces)
        except SignatureError as exc:
            with self._lock:
                self.refusals.append(str(exc))
            return Response(str(exc), 401)(environ, start_response)
        with self._lock:
            self._updates.extend(updates)
        return Response(status=204)(environ, start_response)

    def take(self) -> list[InboundUpdate]:
        with self._lock:
            taken, self._updates = self._updates, []
            return taken


@contextmanager
def callback_receiver() -> Iterator[CallbackReceiver]:
    receiver = CallbackReceiver()
    server = make_server("127.0.0.1", 0, receiver, threaded=True)
    receiver.url = f"http://127.0.0.1:{server.server_port}/callbacks"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              name="conformance-callbacks", daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        thread.join()
        server.server_close()


# Fault kinds of the harness vocabulary -> the HTTP simulators' fault settings.
_HTTP_FAULTS: dict[str, Callable[..., dict[str, Any]]] = {
    "outage": lambda on=True: {"error_rate": 1 if on else 0},
    "accept_then_timeout": lambda seconds=2.0, on=True: {
        "timeout_rate": 1 if on else 0, "timeout_sleep_seconds": seconds},
    "lost_request": lambda seconds=2.0, on=True: {
        "lost_request_rate": 1 if on else 0, "timeout_sleep_seconds": seconds},
    "duplicate_messages": lambda on=True: {"duplicate_callbacks": on},
    "out_of_order_messages": lambda on=True: {"out_of_order_callbacks": on},
    "clear": lambda: {"error_rate": 0, "timeout_rate": 0, "lost_request_rate": 0,
                      "duplicate_callbacks": False, "out_of_order_callbacks": False},
}


@dataclass
class HttpSimulatorHarness:
    """Shared by the push protocols whose simulators expose the /_sim controls
    (REST and wallet): they differ in the connector and the transfers."""
    name: str
    partner_code: str
    default_channel: str
    key_text: str
    simulator: RestSimulatorProcess
    receiver: CallbackReceiver
    connector_factory: Callable[[str, bytes, float], Connector]
    transfer_factory: Callable[[str, int, str], OutboundTransfer]
    connector: Connector = None  # type: ignore[assignment]

    def __post_init__(self) -> None:
        self.connector = self.connect(5.0)
        self.receiver.connector = self.connector

    def connect(self, timeout_seconds: float) -> Connector:
        return self.connector_factory(self.simulator.url, self.key_text.encode(),
                                      timeout_seconds)

    def make_transfers(self, n: int, channel: str | None = None) -> list[OutboundTransfer]:
        return [self.transfer_factory(unique_reference(), index, channel or self.default_channel)
                for index in range(n)]

    def partner_status(self, reference: str) -> PartnerStatus:
        held = self.simulator.held(reference)
        return PartnerStatus.NOT_FOUND if held is None else PartnerStatus(held["status"])

    def held_count(self) -> int:
        return self.simulator.state()["transfers"]

    def advance(self, to: PartnerStatus, references: Sequence[str] | None = None) -> None:
        answer = self.simulator.advance(to.value, None if references is None
                                        else list(references))
        if answer["pending"]:
            raise AssertionError(f"{self.name}: callbacks not delivered: {answer}, "
                                 f"refused: {self.receiver.refusals}")

    def reject_next(self, reason_code: str) -> None:
        self.simulator.reject_next(reason_code)

    def fault(self, kind: str, **params: Any) -> None:
        self.simulator.faults(**_HTTP_FAULTS[kind](**params))

    def inbound(self) -> list[InboundUpdate]:
        return self.receiver.take()

    def service_overrides(self) -> dict[str, Any]:
        return {"partner_urls": {self.partner_code: self.simulator.url},
                "partner_keys": {self.partner_code: (self.key_text.encode(),)}}


def rest_transfer(reference: str, index: int, channel: str) -> OutboundTransfer:
    """A transfer as the REST harness sends it (cash or bank, region 01)."""
    return OutboundTransfer(reference=reference, amount_centimes=50_000 + index * 100,
                            currency="MAD", channel=channel, beneficiary_name="Fatima Zahra",
                            national_id="BE123456", phone="+212612345678", account=None,
                            region_code="01")


@contextmanager
def rest_harness(tmp_path: Path) -> Iterator[Harness]:
    code, key = "BARID", "conformance-rest-key"
    with callback_receiver() as receiver, RestSimulatorProcess.start(
            code, receiver.url, key, log_path=tmp_path / "rest-simulator.log") as simulator:
        harness = HttpSimulatorHarness(
            "rest", code, "cash", key, simulator, receiver,
            lambda url, k, t: RestConnector(code, url, k, t), rest_transfer)
        try:
            yield harness
        finally:
            harness.connector.close()  # type: ignore[attr-defined]


def _wallet_transfer(reference: str, index: int, channel: str) -> OutboundTransfer:
    return OutboundTransfer(reference=reference, amount_centimes=50_000 + index * 100,
                            currency="MAD", channel=channel, beneficiary_name="Khadija Alaoui",
                            national_id="AB654321", phone=f"+2126{index + 10_000_000:08d}",
                            account=None, region_code="06", wallet_tier=2)


@contextmanager
def wallet_harness(tmp_path: Path) -> Iterator[Harness]:
    code, key = "MWALLET", "conformance-wallet-key"
    with callback_receiver() as receiver, RestSimulatorProcess.start(
            code, receiver.url, key, log_path=tmp_path / "wallet-simulator.log",
            module="connectors.simulators.wallet") as simulator:
        harness = HttpSimulatorHarness(
            "wallet", code, "wallet", key, simulator, receiver,
            lambda url, k, t: WalletConnector(code, url, k, t), _wallet_transfer)
        try:
            yield harness
        finally:
            harness.connector.close()  # type: ignore[attr-defined]


@dataclass(frozen=True)
class HarnessSpec:
    name: str
    start: Callable[[Path], AbstractContextManager[Harness]]
