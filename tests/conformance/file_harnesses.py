"""Conformance harnesses of the pull protocols over SFTP: the file exchange
(`sftp_csv`, CSV status files) and the ISO 20022 bank (pain.001 out, pain.002
and camt.054 in). Each runs its simulator as a process serving a real SFTP
server; `inbound()` is what the connector collects from the partner's outbox."""
from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from connectors.base import Connector, InboundUpdate, OutboundTransfer, PartnerStatus
from connectors.file_exchange import FileExchangeConnector
from connectors.iso20022.pain001 import Debtor
from connectors.iso20022_bank import Iso20022BankConnector
from connectors.sftp import SftpEndpoint
from connectors.simulators.file_process import FileSimulatorProcess
from disbursement.settings import SftpSecrets
from reconciliation.readers.camt import read_camt054
from tests.conformance.harness import Harness, unique_reference
from tests.support.iso20022 import rib
from tests.support.waiting import wait_until

IDLE_WAIT_SECONDS = 20
# The ISO bank's words for what it holds.
ISO_STATUSES = {"ACCP": PartnerStatus.RECEIVED, "ACSC": PartnerStatus.PAID,
                "RJCT": PartnerStatus.REJECTED}


def _faults(seconds_fault: Callable[[str], str], duplicate: str, out_of_order: str
            ) -> dict[str, Callable[..., dict[str, Any]]]:
    return {
        "outage": lambda on=True: {"refuse_connections": on},
        "accept_then_timeout": lambda seconds=2.0, on=True: {
            seconds_fault("accept_then_timeout"): seconds if on else 0},
        "lost_request": lambda seconds=2.0, on=True: {
            seconds_fault("lost_request"): seconds if on else 0},
        "duplicate_messages": lambda on=True: {duplicate: on},
        "out_of_order_messages": lambda on=True: {out_of_order: on},
        "clear": lambda: {"refuse_connections": False, "accept_then_timeout_seconds": 0,
                          "lost_request_seconds": 0, duplicate: False, out_of_order: False},
    }


@dataclass
class FileSimulatorHarness:
    name: str
    partner_code: str
    default_channel: str
    simulator: FileSimulatorProcess
    connector_factory: Callable[[SftpEndpoint, float], Connector]
    transfer_factory: Callable[[str, int, str], OutboundTransfer]
    faults: dict[str, Callable[..., dict[str, Any]]]
    cancels: bool = True        # False: the protocol carries no cancellation (banks: camt.055)
    connector: Connector = None  # type: ignore[assignment]
    _seen: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.connector = self.connect(5.0)

    def connect(self, timeout_seconds: float) -> Connector:
        endpoint = SftpEndpoint.from_url(self.partner_code, self.simulator.sftp_url,
                                         self.simulator.host_key, self.simulator.password)
        return self.connector_factory(endpoint, timeout_seconds)

    def _idle(self) -> dict[str, Any]:
        """The simulator's state once it has taken every complete inbox file."""
        return wait_until(lambda: (state := self.simulator.state())["inbox_pending"] == 0 and state,
                          f"{self.name}: inbox picked up", timeout=IDLE_WAIT_SECONDS)

    def make_transfers(self, n: int, channel: str | None = None) -> list[OutboundTransfer]:
        return [self.transfer_factory(unique_reference(), index, channel or self.default_channel)
                for index in range(n)]

    def partner_status(self, reference: str) -> PartnerStatus:
        held = self._idle()["statuses"].get(reference)
        if held is None:
            return PartnerStatus.NOT_FOUND
        return ISO_STATUSES.get(held) or PartnerStatus(held)

    def held_count(self) -> int:
        return self._idle()["transfers"]

    def advance(self, to: PartnerStatus, references: Sequence[str] | None = None) -> None:
        self._idle()
        self.simulator.control("POST", "/_sim/advance", {
            "to": to.value, "references": None if references is None else list(references)})

    def reject_next(self, reason_code: str) -> None:
        self.simulator.control("POST", "/_sim/reject-next", {"reason_code": reason_code})

    def fault(self, kind: str, **params: Any) -> None:
        self.simulator.faults(**self.faults[kind](**params))

    def inbound(self) -> list[InboundUpdate]:
        self._idle()
        files = self.connector.fetch_files(self._seen)          # type: ignore[attr-defined]
        self._seen.update(f.name for f in files)
        return [u for f in files if f.error is None for u in f.updates
                if u.status != PartnerStatus.RECEIVED]

    def service_overrides(self) -> dict[str, Any]:
        return {"partner_urls": {self.partner_code: self.simulator.sftp_url},
                "partner_keys": {},
                "partner_sftp": {self.partner_code: SftpSecrets(
                    password=self.simulator.password, host_key=self.simulator.host_key)}}


def _cash_transfer(reference: str, index: int, channel: str) -> OutboundTransfer:
    return OutboundTransfer(reference=reference, amount_centimes=50_000 + index * 100,
                            currency="MAD", channel=channel, beneficiary_name="Fatima Zahra",
                            national_id="BE123456", phone="+212612345678", account=None,
                            region_code="01", service_point="SP-0001")


def _bank_transfer(reference: str, index: int, channel: str) -> OutboundTransfer:
    return OutboundTransfer(reference=reference, amount_centimes=50_000 + index * 100,
                            currency="MAD", channel=channel, beneficiary_name="Fatima Zahra",
                            national_id="BE123456", phone=None, account=rib(bank="230"),
                            region_code="01")


@contextmanager
def _started(protocol: str, code: str, tmp_path: Path,
             *args: str) -> Iterator[FileSimulatorProcess]:
    root = tmp_path / f"{protocol}-partner"
    root.mkdir()
    with FileSimulatorProcess.start(protocol, code, root, f"conformance-{protocol}-password", *args,
                                    log_path=tmp_path / f"{protocol}-simulator.log") as sim:
        yield sim


@contextmanager
def sftp_csv_harness(tmp_path: Path) -> Iterator[Harness]:
    with _started("sftp", "DAMANE", tmp_path) as sim:
        harness = FileSimulatorHarness(
            "sftp_csv", "DAMANE", "cash", sim, FileExchangeConnector, _cash_transfer,
            _faults(lambda kind: f"{kind}_seconds", "duplicate_status_files",
                    "out_of_order_status_files"))
        try:
            yield harness
        finally:
            harness.connector.close()  # type: ignore[attr-defined]


@contextmanager
def iso20022_harness(tmp_path: Path) -> Iterator[Harness]:
    debtor = Debtor("Programme Aide Sociale Directe", "230780000123450000001772")
    # One "paid" message per transfer, as the scenarios count them: the camt.054
    # booking (pain.002 carries acceptances and rejections).
    with _started("iso20022", "CIHBANK", tmp_path, "--paid-reports", "camt054") as sim:
        harness = FileSimulatorHarness(
            "iso20022", "CIHBANK", "bank", sim,
            lambda endpoint, timeout: Iso20022BankConnector(endpoint,
                                                            debtor, read_camt054, timeout),
            _bank_transfer, _faults(lambda kind: f"{kind}_seconds", "duplicate_messages",
                                    "out_of_order_messages"), cancels=False)
        try:
            yield harness
        finally:
            harness.connector.close()  # type: ignore[attr-defined]
