"""A payment institution speaking the file-exchange protocol over SFTP, as a process.

    PARTNER_DAMANE_SFTP_PASSWORD=secret disburse simulator sftp --partner DAMANE

It serves SFTP on a loopback port (`connectors.simulators.file_partner`), picks
up instruction files and status/cancel requests from `inbox/` (protocol in
`connectors.file_exchange`), dedupes by reference so a resent file never pays
twice, and writes status files to `outbox/` when time is advanced
(POST /_sim/advance) and a settlement file on demand (POST /_sim/settlement).
Faults are switched by flags or at runtime (POST /_sim/faults).
"""
from __future__ import annotations

import random
import threading
from dataclasses import asdict, dataclass, fields, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
from flask import Flask, jsonify, request

from connectors import file_format as ff
from connectors.base import PartnerStatus as P
from connectors.simulators import file_partner

REJECT_REASONS = ("R01 beneficiary identity mismatch", "R02 national id not valid",
                  "R03 beneficiary deceased", "R04 duplicate beneficiary")
SERVICE_POINTS = 40
ALTERED_BY_CENTIMES = 100


@dataclass(frozen=True)
class Faults:
    latency_ms: int = 0
    refuse_connections: bool = False
    reject_rate: float = 0.0
    uncollected_rate: float = 0.0
    duplicate_status_files: bool = False
    out_of_order_status_files: bool = False
    # file faults hit the next N files written to outbox/, then switch off
    truncate_next_files: int = 0
    trailer_mismatch_next_files: int = 0
    checksum_mismatch_next_files: int = 0
    settlement_missing_lines: int = 0
    settlement_extra_lines: int = 0
    settlement_altered_lines: int = 0
    # the partner takes a delivered file, then its answer comes after N seconds
    accept_then_timeout_seconds: float = 0.0
    # the partner loses a delivered file and answers after N seconds
    lost_request_seconds: float = 0.0

    def updated(self, changes: dict[str, Any]) -> Faults:
        """Raises click.BadParameter naming an unknown fault or a bad value."""
        known = {f.name: f.type for f in fields(self)}
        for name, value in changes.items():
            if name not in known:
                raise click.BadParameter(f"unknown fault {name!r}")
            kind = {"int": int, "float": float, "bool": bool}[str(known[name])]
            rate = name.endswith("_rate")
            if not isinstance(value, (int, float)) or (kind is int and isinstance(value, float)) \
                    or value < 0 or (rate and value > 1):
                raise click.BadParameter(f"fault {name} must be a {kind.__name__} "
                                         f"{'in [0, 1]' if rate else '>= 0'}")
        return replace(self, **{k: bool(v) if known[k] == "bool" else v
                                for k, v in changes.items()})


@dataclass
class Held:
    reference: str
    amount_centimes: int
    currency: str
    status: P
    fate: str                     # "paid" | "rejected" | "uncollected"
    reason: str | None = None
    service_point: str | None = None
    paid_on: str | None = None


class CsvPartner:
    """The partner's book. Every method runs under the simulator's lock."""

    def __init__(self, code: str, folders: file_partner.Folders, seed: int, faults: Faults) -> None:
        self.code = code
        self.folders = folders
        self.seed = seed
        self.faults = faults
        self.held: dict[str, Held] = {}
        self.sequence = 0
        self.files_rejected: list[str] = []
        self.reject_codes: list[str] = []      # reject the next new transfers with these

    def refuse_connections(self) -> bool:
        return self.faults.refuse_connections

    def latency_seconds(self) -> float:
        return self.faults.latency_ms / 1000

    def on_rename(self, name: str) -> tuple[bool, float]:
        # The checksum file completes a delivery: the faults hit that rename.
        if not name.endswith(ff.CHECKSUM_SUFFIX):
            return True, 0.0
        if self.faults.lost_request_seconds:
            return False, self.faults.lost_request_seconds
        return True, self.faults.accept_then_timeout_seconds

    # -- inbox ---------------------------------------------------------------

    def take(self, name: str, data: bytes, checksum: bytes | None) -> None:
        try:
            verified = ff.verify(name, data, checksum)
        except ff.FileProblem as exc:
            self.files_rejected.append(name)
            self._write("FILEREJ", ff.FILE_REJECTION_COLUMNS, [{"file": name, "problem": str(exc)}])
            return
        if verified.kind == "instruction":
            self._instructions(verified.rows)
        elif verified.kind in ("status_request", "cancel_request"):
            cancel = verified.kind == "cancel_request"
            answers = [self._answer(row["reference"], cancel) for row in verified.rows]
            self._write_exact(f"ANSWER-{name.split('-', 1)[1]}", ff.STATUS_COLUMNS, answers)
        else:
            self.files_rejected.append(name)
            self._write("FILEREJ", ff.FILE_REJECTION_COLUMNS,
                        [{"file": name, "problem": f"a {verified.kind} file is not for the inbox"}])

    def _instructions(self, rows: list[dict[str, str]]) -> None:
        lines = []
        for row in rows:
            reference = row["reference"]
            if reference in self.held:
                continue           # a resend: the reference is the idempotency key
            rng = random.Random(f"{self.seed}:{reference}")
            roll = rng.random()
            fate = ("rejected" if roll < self.faults.reject_rate else "uncollected"
                    if roll < self.faults.reject_rate + self.faults.uncollected_rate else "paid")
            point = row["service_point"] or f"SP-{rng.randrange(SERVICE_POINTS):04d}"
            held = Held(reference, int(row["amount_centimes"]), row["currency"], P.RECEIVED, fate,
                        service_point=point)
            if not row["national_id"]:
                held.status, held.reason = P.REJECTED, "R02 national id not valid"
            elif self.reject_codes:
                held.status = P.REJECTED
                held.reason = f"{self.reject_codes.pop(0)} rejected by the partner"
            elif fate == "rejected":
                held.reason = rng.choice(REJECT_REASONS)
            self.held[reference] = held
            lines.append(self._line(held))
        if lines:
            self._write("STATUS", ff.STATUS_COLUMNS, lines)

    def _answer(self, reference: str, cancel: bool) -> dict[str, Any]:
        held = self.held.get(reference)
        if held is None:
            return {"reference": reference, "status": P.NOT_FOUND.value}
        if cancel and held.status in (P.RECEIVED, P.AVAILABLE):
            held.status, held.reason = P.CANCELLED, "cancelled at the payer's request"
        return self._line(held)

    # -- time, settlement ----------------------------------------------------

    def advance(self, to: P | None = None, references: list[str] | None = None) -> dict[str, int]:
        """Without `to`: received transfers become available (or rejected),
        available ones are collected (paid), and those fated to stay uncollected
        expire on the advance after they became available. Two status files, in
        that order unless the out-of-order fault swaps them. With `to`: the
        given (default: all open) transfers move straight to `to`."""
        if to is not None:
            return self._directed(to, references)
        first, second = [], []
        today = datetime.now(UTC).date().isoformat()
        for held in self.held.values():
            if held.status == P.AVAILABLE and held.fate == "uncollected":
                held.status = P.EXPIRED
                second.append(self._line(held))
            if held.status == P.RECEIVED:
                held.status = P.REJECTED if held.fate == "rejected" else P.AVAILABLE
                first.append(self._line(held))
            if held.status == P.AVAILABLE and held.fate == "paid":
                held.status, held.paid_on = P.PAID, today
                second.append(self._line(held))
        self._write_in_order([first, second])
        return {"available_or_rejected": len(first), "paid_or_expired": len(second)}

    def _directed(self, to: P, references: list[str] | None) -> dict[str, int]:
        open_states = (P.RECEIVED, P.AVAILABLE)
        chosen = [self.held[r] for r in references if r in self.held] if references is not None \
            else list(self.held.values())
        first, second = [], []
        for held in chosen:
            if held.status not in open_states or held.status == to:
                continue
            if to == P.PAID and held.status == P.RECEIVED:
                held.status = P.AVAILABLE
                first.append(self._line(held))
            held.status = to
            if to == P.PAID:
                held.paid_on = datetime.now(UTC).date().isoformat()
            second.append(self._line(held))
        self._write_in_order([first, second])
        return {"moved": len(second)}

    def _write_in_order(self, files: list[list[dict]]) -> None:
        files = [f for f in files if f]
        if self.faults.out_of_order_status_files:
            files.reverse()
        for lines in files:
            self._write("STATUS", ff.STATUS_COLUMNS, lines)

    def settlement(self) -> str:
        """Writes a settlement file of every paid transfer, flaws switched on included."""
        rng = random.Random(self.seed)
        rows = [{"reference": h.reference, "amount_centimes": h.amount_centimes,
                 "currency": h.currency, "status": "paid", "value_date": h.paid_on,
                 "service_point": h.service_point}
                for h in sorted(self.held.values(), key=lambda h: h.reference)
                if h.status == P.PAID]
        for _ in range(min(self.faults.settlement_missing_lines, len(rows))):
            rows.pop(rng.randrange(len(rows)))
        altered = min(self.faults.settlement_altered_lines, len(rows))
        for index in rng.sample(range(len(rows)), altered):
            rows[index] = {**rows[index],
                           "amount_centimes": int(str(rows[index]["amount_centimes"]))
                           + ALTERED_BY_CENTIMES}
        for n in range(self.faults.settlement_extra_lines):
            rows.append({"reference": f"X{self.seed:04d}{n:010d}"[:16], "currency": "MAD",
                         "amount_centimes": rng.randrange(1_000, 500_000), "status": "paid",
                         "value_date": datetime.now(UTC).date().isoformat(),
                         "service_point": "SP-9999"})
        return self._write("SETTLE", ff.SETTLEMENT_COLUMNS, rows)

    def snapshot(self) -> dict[str, Any]:
        by_status: dict[str, int] = {}
        for held in self.held.values():
            by_status[held.status.value] = by_status.get(held.status.value, 0) + 1
        return {"partner": self.code, "transfers": len(self.held), "by_status": by_status,
                "inbox_pending": self.folders.pending(),
                "files_rejected": list(self.files_rejected),
                "outbox": sorted(p.name for p in (self.folders.root / "outbox").iterdir()),
                "statuses": {r: h.status.value for r, h in self.held.items()}}

    # -- outbox ----------------------------------------------------------------

    def _line(self, held: Held) -> dict[str, Any]:
        return {"reference": held.reference, "status": held.status.value,
                "amount_centimes": held.amount_centimes, "currency": held.currency,
                "reason": held.reason if held.status in (P.REJECTED, P.CANCELLED) else None,
                "service_point": held.service_point if held.status == P.PAID else None,
                "occurred_at": datetime.now(UTC).isoformat(timespec="seconds")}

    def _write(self, prefix: str, columns: tuple[str, ...], rows: list[dict]) -> str:
        self.sequence += 1
        name = f"{prefix}-{self.sequence:06d}.csv"
        data = self._write_exact(name, columns, rows)
        if prefix == "STATUS" and self.faults.duplicate_status_files:
            self.sequence += 1
            self._publish(f"{prefix}-{self.sequence:06d}.csv", data, ff.sha256_hex(data))
        return name

    def _write_exact(self, name: str, columns: tuple[str, ...], rows: list[dict]) -> bytes:
        data = ff.render(columns, rows)
        faults = self.faults
        if faults.truncate_next_files:
            # A writer that died mid-file: the last line and the trailer never came.
            for _ in range(2 if rows else 1):
                data = data[:data.rstrip(b"\n").rfind(b"\n") + 1]
            self.faults = replace(faults, truncate_next_files=faults.truncate_next_files - 1)
        elif faults.trailer_mismatch_next_files:
            head, _, trailer = data.rstrip(b"\n").rpartition(b"\n")
            _, count, total = trailer.decode().split(",")
            data = head + f"\n{ff.TRAILER},{int(count) + 1},{total}\n".encode()
            self.faults = replace(
                faults, trailer_mismatch_next_files=faults.trailer_mismatch_next_files - 1)
        digest = ff.sha256_hex(data)
        if faults.checksum_mismatch_next_files and not faults.truncate_next_files \
                and not faults.trailer_mismatch_next_files:
            digest = ff.sha256_hex(data + b"altered in transit")
            self.faults = replace(
                faults, checksum_mismatch_next_files=faults.checksum_mismatch_next_files - 1)
        self._publish(name, data, digest)
        return data

    def _publish(self, name: str, data: bytes, digest: str) -> None:
        self.folders.write("outbox", name, data)
        self.folders.write("outbox", name + ff.CHECKSUM_SUFFIX, f"{digest}  {name}\n".encode())


def control_app(partner: CsvPartner, lock: threading.Lock) -> Flask:
    app = Flask(__name__)

    @app.post("/_sim/advance")
    def advance() -> Any:
        body = request.get_json(force=True, silent=True) or {}
        with lock:
            return jsonify(partner.advance(P(body["to"]) if body.get("to") else None,
                                           body.get("references")))

    @app.post("/_sim/reject-next")
    def reject_next() -> Any:
        body = request.get_json(force=True, silent=True) or {}
        with lock:
            partner.reject_codes.extend([str(body["reason_code"])] * int(body.get("count", 1)))
            return jsonify(pending=list(partner.reject_codes))

    @app.post("/_sim/settlement")
    def settlement() -> Any:
        with lock:
            return jsonify(file=partner.settlement())

    @app.get("/_sim/faults")
    def get_faults() -> Any:
        return jsonify(asdict(partner.faults))

    @app.post("/_sim/faults")
    def set_faults() -> Any:
        try:
            with lock:
                partner.faults = partner.faults.updated(request.get_json(force=True) or {})
        except click.BadParameter as exc:
            return jsonify(error=exc.message), 400
        return jsonify(asdict(partner.faults))

    @app.get("/_sim/state")
    def state() -> Any:
        with lock:
            return jsonify(partner.snapshot())

    return app


_RATE = click.FloatRange(0, 1)


@click.command("sftp")
@click.option("--partner", "partner_code", required=True, help="Partner code, e.g. DAMANE.")
@click.option("--root", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Folder served over SFTP (inbox/, outbox/, archive/ are created).")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=click.IntRange(0, 65535), default=0, show_default=True,
              help="0 picks a free port, printed on the ready line.")
@click.option("--user", default="partner", show_default=True, help="The SFTP login.")
@click.option("--password-env", default=None,
              help="Env var holding the SFTP password [default: PARTNER_<CODE>_SFTP_PASSWORD].")
@click.option("--authorized-key", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Public key file (OpenSSH format) allowed to log in.")
@click.option("--seed", type=int, default=1, show_default=True)
@click.option("--poll-seconds", type=click.FloatRange(min=0.01), default=0.1, show_default=True)
@click.option("--latency-ms", type=click.IntRange(min=0), default=0)
@click.option("--refuse-connections", is_flag=True)
@click.option("--reject-rate", type=_RATE, default=0.0)
@click.option("--uncollected-rate", type=_RATE, default=0.0)
@click.option("--duplicate-status-files", is_flag=True)
@click.option("--out-of-order-status-files", is_flag=True)
@click.option("--settlement-missing-lines", type=click.IntRange(min=0), default=0)
@click.option("--settlement-extra-lines", type=click.IntRange(min=0), default=0)
@click.option("--settlement-altered-lines", type=click.IntRange(min=0), default=0)
@click.option("--accept-then-timeout-seconds", type=click.FloatRange(min=0), default=0.0)
@click.option("--lost-request-seconds", type=click.FloatRange(min=0), default=0.0)
def sftp_command(partner_code: str, root: Path, host: str, port: int, user: str,
                 password_env: str | None, authorized_key: str | None, seed: int,
                 poll_seconds: float, **fault_options: Any) -> None:
    """Run a simulated payment institution exchanging CSV files over SFTP."""
    if fault_options["reject_rate"] + fault_options["uncollected_rate"] > 1:
        raise click.UsageError("--reject-rate + --uncollected-rate must not exceed 1")
    login = file_partner.login_from_options(partner_code, user, password_env, authorized_key)
    folders = file_partner.Folders(root)
    partner = CsvPartner(partner_code, folders, seed, Faults(**fault_options))
    lock = threading.Lock()
    file_partner.serve(folders, partner, login, user, control_app(partner, lock), lock,
                       host, port, poll_seconds)


if __name__ == "__main__":
    sftp_command()
