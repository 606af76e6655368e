"""A bank speaking ISO 20022 over SFTP, as a separate process.

    PARTNER_CIHBANK_SFTP_PASSWORD=secret disburse simulator iso20022 --partner CIHBANK --root DIR

It picks up `inbox/pain001-*.xml`, checks it (schema-level reading, NbOfTxs,
CtrlSum), and answers with `outbox/pain002-*.xml`: a file it cannot read gets a
group-level RJCT (FF01) naming the problem; a good one a group-level ACCP
listing its transactions. Time advanced (POST /_sim/advance) settles each
accepted transaction: a transaction-level ACSC or RJCT with a reason code
(AC01, AC04, AM04...), and a `camt054-*.xml` booking notification of the paid
ones. POST /_sim/statement writes a camt.053 of everything booked. Every file is
written with the `connectors.iso20022` writers. The bank dedupes by EndToEndId.
"""
from __future__ import annotations

import io
import random
import threading
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
from flask import Flask, jsonify, request

from connectors.iso20022.camt_writer import (
    AccountReport,
    BookedEntry,
    BookedTransaction,
    write_camt053,
    write_camt054,
)
from connectors.iso20022.pain001 import InitiationSummary, read_pain001
from connectors.iso20022.pain002 import (
    PaymentInformationStatus,
    StatusReport,
    TransactionStatus,
    write_pain002,
)
from connectors.simulators import file_partner
from disbursement.iso20022.xml import MessageError

REJECT_CODES = ("AC01", "AC04", "AM04", "MD07")
FUNDING_ACCOUNT = "230780000123450000001772"
OPENING_BALANCE_CENTIMES = 10_000_000_000


@dataclass(frozen=True)
class Faults:
    latency_ms: int = 0
    refuse_connections: bool = False
    reject_rate: float = 0.0
    reject_code: str = ""          # "" draws from REJECT_CODES; else always this code
    duplicate_messages: bool = False        # every report written twice, under two names
    out_of_order_messages: bool = False     # camt.054 before the pain.002 it follows
    accept_then_timeout_seconds: float = 0.0
    lost_request_seconds: float = 0.0
    truncate_next_files: int = 0           # the next N outbox files cut in half

    def updated(self, changes: dict[str, Any]) -> Faults:
        """Raises click.BadParameter naming an unknown fault or a bad value."""
        unknown = set(changes) - set(asdict(self))
        if unknown:
            raise click.BadParameter(f"unknown fault(s) {sorted(unknown)}")
        rate = changes.get("reject_rate", self.reject_rate)
        if not isinstance(rate, (int, float)) or not 0 <= rate <= 1:
            raise click.BadParameter("reject_rate must be in [0, 1]")
        return replace(self, **changes)


@dataclass
class Booked:
    reference: str
    amount_centimes: int
    currency: str
    message_id: str
    pmt_inf_id: str
    status: str = "ACCP"            # ACCP -> ACSC | RJCT
    reason: str | None = None
    booked_on: str | None = None


class Bank:
    """The bank's book. Every method runs under the simulator's lock."""

    def __init__(self, code: str, folders: file_partner.Folders, seed: int, faults: Faults,
                 paid_reports: str = "both") -> None:
        self.code, self.folders, self.seed, self.faults = code, folders, seed, faults
        # Which messages say "paid": pain.002 ACSC, camt.054 booking, or both
        # (a real bank sends both; our side takes the second as a duplicate).
        self.paid_reports = paid_reports
        self.held: dict[str, Booked] = {}
        self.sequence = 0
        self.files_rejected: list[str] = []
        self.reject_codes: list[str] = []      # reject the next new transactions with these

    def refuse_connections(self) -> bool:
        return self.faults.refuse_connections

    def latency_seconds(self) -> float:
        return self.faults.latency_ms / 1000

    def on_rename(self, name: str) -> tuple[bool, float]:
        if not name.endswith(".xml"):
            return True, 0.0
        if self.faults.lost_request_seconds:
            return False, self.faults.lost_request_seconds
        return True, self.faults.accept_then_timeout_seconds

    def _name(self, prefix: str) -> str:
        self.sequence += 1
        return f"{prefix}-{self.sequence:06d}.xml"

    def _publish(self, name: str, writer, *args: Any) -> str:
        out = io.BytesIO()
        writer(out, *args)
        data = out.getvalue()
        if self.faults.truncate_next_files:
            data = data[:len(data) // 2]
            self.faults = replace(self.faults,
                                  truncate_next_files=self.faults.truncate_next_files - 1)
        self.folders.write("outbox", name, data)
        if self.faults.duplicate_messages and not name.startswith("camt053"):
            self.folders.write("outbox", self._name(name.split("-")[0]), data)
        return name

    def take(self, name: str, data: bytes, checksum: bytes | None) -> None:
        summary = InitiationSummary()
        try:
            transfers = list(read_pain001(io.BytesIO(data), summary))
        except MessageError as exc:
            self.files_rejected.append(name)
            report = StatusReport(self._message_id(), _now(), summary.message_id or name,
                                  group_status="RJCT", group_reason_code="FF01",
                                  group_reason_text=f"{name}: {exc}"[:105])
            self._publish(self._name("pain002"), write_pain002, report)
            return
        fresh: list[TransactionStatus] = []
        by_pmt: dict[str, list[TransactionStatus]] = {}
        for transfer in transfers:
            if transfer.reference in self.held:
                continue             # EndToEndId already taken: never paid twice
            booked = Booked(transfer.reference, transfer.amount_centimes, transfer.currency,
                            summary.message_id or "", transfer.payment_information_id)
            self.held[transfer.reference] = booked
            if self.reject_codes:
                booked.status, booked.reason = "RJCT", self.reject_codes.pop(0)
                status = TransactionStatus(booked.reference, "RJCT", booked.reason)
            else:
                status = TransactionStatus(booked.reference, None)  # inherits the group's ACCP
            by_pmt.setdefault(booked.pmt_inf_id, []).append(status)
            fresh.append(status)
        if fresh:
            report = StatusReport(self._message_id(), _now(), summary.message_id or "",
                                  group_status="ACCP", payment_informations=[
                                      PaymentInformationStatus(p, None, transactions=txs)
                                      for p, txs in by_pmt.items()])
            self._publish(self._name("pain002"), write_pain002, report)

    def advance(self, to: str | None = None, references: list[str] | None = None) -> dict[str, int]:
        """Settles accepted transactions (all, or `references`): one pain.002 at
        transaction level, one camt.054 booking the paid ones. `to` ("paid",
        "rejected") forces the outcome instead of the drawn one."""
        today = _now().date()
        settled: dict[tuple[str, str], list[TransactionStatus]] = {}
        paid: list[Booked] = []
        chosen = self.held.values() if references is None else [
            self.held[r] for r in references if r in self.held]
        for booked in chosen:
            if booked.status != "ACCP":
                continue
            rng = random.Random(f"{self.seed}:{booked.reference}")
            rejected = rng.random() < self.faults.reject_rate if to is None else to == "rejected"
            if rejected:
                booked.status = "RJCT"
                booked.reason = self.faults.reject_code or rng.choice(REJECT_CODES)
            else:
                booked.status, booked.booked_on = "ACSC", today.isoformat()
                paid.append(booked)
            if booked.status == "RJCT" or self.paid_reports != "camt054":
                settled.setdefault((booked.message_id, booked.pmt_inf_id), []).append(
                    TransactionStatus(booked.reference, booked.status, booked.reason))
        if self.paid_reports == "pain002":
            paid = []
        reports = [(write_pain002, StatusReport(
            self._message_id(), _now(), message_id, payment_informations=[
                PaymentInformationStatus(pmt_inf_id, "PART" if any(
                    t.iso_status == "RJCT" for t in txs) else "ACSC", transactions=txs)]))
            for (message_id, pmt_inf_id), txs in settled.items()]
        notices = [(write_camt054, self._message_id(), _now(), [AccountReport(
            f"{self.code}-NTF-{self.sequence:06d}", FUNDING_ACCOUNT, paid[0].currency,
            [_entry(b, today) for b in paid])])] if paid else []
        files = [("pain002", r) for r in reports] + [("camt054", n) for n in notices]
        if self.faults.out_of_order_messages:
            files.reverse()
        for prefix, (writer, *args) in files:
            self._publish(self._name(prefix), writer, *args)
        return {"reported": sum(len(t) for t in settled.values()), "booked": len(paid)}

    def statement(self) -> str:
        """A camt.053 of every booked payment since the simulator started."""
        today = _now().date()
        paid = sorted((b for b in self.held.values() if b.status == "ACSC"),
                      key=lambda b: b.reference)
        name = self._name("camt053")
        return self._publish(name, write_camt053, self._message_id(), _now(), [AccountReport(
            name.removesuffix(".xml"), FUNDING_ACCOUNT, "MAD", [_entry(b, today) for b in paid],
            from_date=today, to_date=today, opening_balance_centimes=OPENING_BALANCE_CENTIMES)])

    def snapshot(self) -> dict[str, Any]:
        return {"partner": self.code, "transfers": len(self.held),
                "inbox_pending": self.folders.pending(),
                "statuses": {r: b.status for r, b in self.held.items()},
                "reasons": {r: b.reason for r, b in self.held.items() if b.reason},
                "files_rejected": list(self.files_rejected),
                "outbox": sorted(p.name for p in (self.folders.root / "outbox").iterdir())}

    def _message_id(self) -> str:
        return f"{self.code}-{self.seed}-{self.sequence:06d}"


def _entry(booked: Booked, on) -> BookedEntry:
    transaction = BookedTransaction(booked.reference, booked.amount_centimes, booked.currency)
    return BookedEntry([transaction], booking_date=on, value_date=on)


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def control_app(bank: Bank, lock: threading.Lock) -> Flask:
    app = Flask(__name__)

    @app.post("/_sim/advance")
    def advance() -> Any:
        body = request.get_json(force=True, silent=True) or {}
        with lock:
            return jsonify(bank.advance(body.get("to"), body.get("references")))

    @app.post("/_sim/reject-next")
    def reject_next() -> Any:
        body = request.get_json(force=True, silent=True) or {}
        with lock:
            bank.reject_codes.extend([str(body["reason_code"])] * int(body.get("count", 1)))
            return jsonify(pending=list(bank.reject_codes))

    @app.post("/_sim/statement")
    def statement() -> Any:
        with lock:
            return jsonify(file=bank.statement())

    @app.post("/_sim/faults")
    def set_faults() -> Any:
        try:
            with lock:
                bank.faults = bank.faults.updated(request.get_json(force=True) or {})
        except click.BadParameter as exc:
            return jsonify(error=exc.message), 400
        return jsonify(asdict(bank.faults))

    @app.get("/_sim/state")
    def state() -> Any:
        with lock:
            return jsonify(bank.snapshot())

    return app


@click.command("iso20022")
@click.option("--partner", "partner_code", required=True, help="Bank code, e.g. CIHBANK.")
@click.option("--root", type=click.Path(file_okay=False, path_type=Path), required=True)
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=click.IntRange(0, 65535), default=0, show_default=True)
@click.option("--user", default="partner", show_default=True)
@click.option("--password-env", default=None,
              help="Env var holding the SFTP password [default: PARTNER_<CODE>_SFTP_PASSWORD].")
@click.option("--authorized-key", type=click.Path(exists=True, dir_okay=False), default=None)
@click.option("--seed", type=int, default=1, show_default=True)
@click.option("--poll-seconds", type=click.FloatRange(min=0.01), default=0.1, show_default=True)
@click.option("--latency-ms", type=click.IntRange(min=0), default=0)
@click.option("--refuse-connections", is_flag=True)
@click.option("--reject-rate", type=click.FloatRange(0, 1), default=0.0)
@click.option("--reject-code", default="", help="Always this ISO reason code (e.g. AC04).")
@click.option("--paid-reports", type=click.Choice(["both", "pain002", "camt054"]), default="both",
              show_default=True, help="Which messages report a payment as settled.")
@click.option("--duplicate-messages", is_flag=True)
@click.option("--out-of-order-messages", is_flag=True)
def iso20022_command(partner_code: str, root: Path, host: str, port: int, user: str,
                     password_env: str | None, authorized_key: str | None, seed: int,
                     poll_seconds: float, paid_reports: str, **fault_options: Any) -> None:
    """Run a simulated bank exchanging ISO 20022 files over SFTP."""
    login = file_partner.login_from_options(partner_code, user, password_env, authorized_key)
    folders = file_partner.Folders(root, require_checksum=False)
    bank = Bank(partner_code, folders, seed, Faults(**fault_options), paid_reports)
    lock = threading.Lock()
    file_partner.serve(folders, bank, login, user, control_app(bank, lock), lock, host, port,
                       poll_seconds)


if __name__ == "__main__":
    iso20022_command()
