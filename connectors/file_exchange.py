"""File-exchange connector (protocol `sftp_csv`): CSV files over the partner's SFTP server.

The protocol, as both sides speak it (formats in `connectors.file_format`):

- Folders under the partner's SFTP root: `inbox/` (we write), `outbox/` (the
  partner writes). Every data file is written under a temporary name and
  renamed, then its `<name>.sha256` likewise; a reader takes a data file only
  once its checksum file is there. File names are never reused.
- `send`: `inbox/INS-<digest>.csv`, one line per transfer. The digest covers the
  chunk's references, so a redelivery of the same chunk is the same file, and
  the partner dedupes by reference anyway: a resend never pays twice. Once the
  file is renamed into place every transfer is RECEIVED on our side.
- The partner answers with `outbox/STATUS-<seq>.csv` files (received, available,
  paid, rejected with a reason code, cancelled), one line per reference, in
  sequence order; `outbox/SETTLE-<seq>.csv` settlement files (the columns of the
  REST settlement statement, for reconciliation); `outbox/FILEREJ-<seq>.csv`
  when one of our files failed its checks (which file, which problem).
- `status`: `inbox/STATUSREQ-<id>.csv` listing references; the partner answers
  `outbox/ANSWER-<id>.csv` with each reference's latest status, `not_found`
  for one it never received (the only answer that allows a resend).
- `cancel`: `inbox/CANCELREQ-<id>.csv` with one reference; the partner answers
  `outbox/ANSWER-<id>.csv`: `cancelled` when it cancelled it, otherwise the
  status that prevented it (paid, ...).
- `collect`: every status file in `outbox/` that verifies, as `InboundUpdate`s
  (acknowledgements, `received`, are not updates: the upload made them `sent`)
  whose event id is the file's checksum plus the line number, so a file read
  twice changes nothing. The collection service records each file it saw
  (`disbursement.services.dispatch.file_collection`).
"""
from __future__ import annotations

import hashlib
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol, runtime_checkable

from connectors import file_format as ff
from connectors.base import (
    AmbiguousOutcome,
    Connector,
    InboundUpdate,
    OutboundTransfer,
    PartnerStatus,
    RetryableError,
    SendResult,
    TerminalError,
)
from connectors.sftp import SftpEndpoint, SftpSession

INBOX = "inbox"
OUTBOX = "outbox"
ANSWER_POLL_SECONDS = 0.1
# Kinds the collection reads from the outbox; answers belong to their request.
COLLECTED_KINDS = ("status", "settlement", "file_rejection")
# Event ids must fit `inbound_messages.event_id` (64): half a digest is plenty.
EVENT_DIGEST_CHARS = 32


@dataclass
class PartnerFile:
    """One file collected from the partner's outbox, verified or not."""
    name: str
    kind: str
    sha256: str
    data: bytes
    lines: int = 0
    total_centimes: int = 0
    error: str | None = None
    updates: list[InboundUpdate] = field(default_factory=list)
    # where each update sits in the file ("line 7", an XML element path), to
    # name it when one is refused
    update_where: list[str] = field(default_factory=list)
    # a file rejection: what the partner found wrong with one of our files
    partner_problems: list[str] = field(default_factory=list)


@runtime_checkable
class FileConnector(Connector, Protocol):
    """A connector whose partner leaves files for us to collect (SFTP CSV, ISO 20022).
    Runtime-checkable: file collection refuses a partner whose connector is not one."""

    def fetch_files(self, known: set[str]) -> list[PartnerFile]:
        """Files in the partner's outbox not named in `known`, each verified or
        carrying its error."""

    def close(self) -> None:
        """Release the connection."""


def instruction_name(transfers: Sequence[OutboundTransfer]) -> str:
    digest = hashlib.sha256("\n".join(sorted(t.reference for t in transfers)).encode())
    return f"INS-{digest.hexdigest()[:24]}.csv"


def event_id(sha256: str, line: int) -> str:
    return f"{sha256[:EVENT_DIGEST_CHARS]}:{line}"


class FileExchangeConnector:
    """One partner reached through its SFTP folders; one SSH connection, opened
    on first use and released by `close()`."""

    def __init__(self, endpoint: SftpEndpoint, timeout_seconds: float = 10.0,
                 answer_timeout_seconds: float = 30.0) -> None:
        self.partner_code = endpoint.partner_code
        self.session = SftpSession(endpoint, timeout_seconds)
        self._answer_timeout = answer_timeout_seconds

    def __enter__(self) -> FileExchangeConnector:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self.session.close()

    def put_file(self, folder: str, name: str, data: bytes) -> None:
        """Data first, checksum last: the checksum file says "complete"."""
        self.session.upload(folder, name, data)
        self.session.upload(folder, name + ff.CHECKSUM_SUFFIX, ff.checksum_file(name, data))

    # -- the Connector contract ------------------------------------------------

    def send(self, transfers: Sequence[OutboundTransfer]) -> list[SendResult]:
        if not transfers:
            return []
        rows = [{"reference": t.reference, "amount_centimes": t.amount_centimes,
                 "currency": t.currency, "channel": t.channel,
                 "beneficiary_name": t.beneficiary_name, "national_id": t.national_id,
                 "phone": t.phone, "account": t.account, "region_code": t.region_code,
                 "service_point": t.service_point, "withdrawal_code": t.withdrawal_code}
                for t in transfers]
        self.put_file(INBOX, instruction_name(transfers), ff.render(ff.INSTRUCTION_COLUMNS, rows))
        return [SendResult(t.reference, PartnerStatus.RECEIVED) for t in transfers]

    def status(self, references: Sequence[str]) -> dict[str, PartnerStatus]:
        if not references:
            return {}
        answer = self._ask("STATUSREQ", references, changes_state=False)
        missing = [r for r in references if r not in answer]
        if missing:
            raise TerminalError(f"{self.partner_code}: status answer omits {missing[:5]}")
        return {r: answer[r][0] for r in references}

    def cancel(self, reference: str) -> PartnerStatus:
        answer = self._ask("CANCELREQ", [reference], changes_state=True)
        if reference not in answer:
            raise AmbiguousOutcome(f"{self.partner_code}: cancel answer omits {reference}")
        return answer[reference][0]

    def collect(self) -> list[InboundUpdate]:
        return [u for f in self.fetch_files(set()) if f.error is None for u in f.updates
                if u.status != PartnerStatus.RECEIVED]

    # -- files ---------------------------------------------------------------

    def fetch_files(self, known: set[str]) -> list[PartnerFile]:
        """Complete files of the outbox not in `known` (names), in name order,
        each verified; a file that fails carries its error and no update."""
        names = self.session.listdir(OUTBOX)
        present = set(names)
        files = []
        for name in names:
            kind = ff.kind_of(name)
            if kind not in COLLECTED_KINDS or name in known:
                continue
            if name + ff.CHECKSUM_SUFFIX not in present:
                continue       # still being written: its checksum file comes last
            data = self.session.read(OUTBOX, name) or b""
            files.append(self._parse(name, kind, data,
                                     self.session.read(OUTBOX, name + ff.CHECKSUM_SUFFIX)))
        return files

    def _parse(self, name: str, kind: str, data: bytes, checksum: bytes | None) -> PartnerFile:
        found = PartnerFile(name, kind, ff.sha256_hex(data), data)
        try:
            verified = ff.verify(name, data, checksum)
            found.lines, found.total_centimes = len(verified.rows), verified.total_centimes
            if kind == "status":
                for row in verified.rows:
                    found.updates.append(status_update(name, verified.sha256, row))
                    found.update_where.append(f"line {row['_line']}")
            elif kind == "file_rejection":
                found.partner_problems = [row["problem"] for row in verified.rows]
        except ff.FileProblem as exc:
            found.error = str(exc)
            found.updates, found.update_where = [], []
        return found

    def _ask(self, prefix: str, references: Sequence[str],
             changes_state: bool) -> dict[str, tuple[PartnerStatus, str | None]]:
        request_id = uuid.uuid4().hex[:16]
        self.put_file(INBOX, f"{prefix}-{request_id}.csv",
                      ff.render(ff.REQUEST_COLUMNS, [{"reference": r} for r in references]))
        name = f"ANSWER-{request_id}.csv"
        deadline = time.monotonic() + self._answer_timeout
        while time.monotonic() < deadline:
            checksum = self.session.read(OUTBOX, name + ff.CHECKSUM_SUFFIX)
            if checksum is not None:
                data = self.session.read(OUTBOX, name) or b""
                try:
                    rows = ff.verify(name, data, checksum).rows
                    return {row["reference"]: (parse_status(name, row), row["reason"] or None)
                            for row in rows}
                except ff.FileProblem as exc:
                    error = AmbiguousOutcome if changes_state else RetryableError
                    raise error(f"{self.partner_code}: {exc}") from exc
            time.sleep(ANSWER_POLL_SECONDS)
        # The request file is there; whether the partner acted on it is unknown.
        error = AmbiguousOutcome if changes_state else RetryableError
        raise error(f"{self.partner_code}: no {name} within {self._answer_timeout}s")


def parse_status(name: str, row: dict[str, str]) -> PartnerStatus:
    """Raises FileProblem when the status is not one of the protocol's."""
    try:
        return PartnerStatus(row["status"])
    except ValueError:
        raise ff.FileProblem(name, f"unknown status {row['status']!r}", int(row["_line"])) from None


def status_update(name: str, sha256: str, row: dict[str, str]) -> InboundUpdate:
    """Raises FileProblem when the status or the timestamp is malformed."""
    occurred_at = None
    if row["occurred_at"]:
        try:
            occurred_at = datetime.fromisoformat(row["occurred_at"])
        except ValueError:
            raise ff.FileProblem(name, f"occurred_at {row['occurred_at']!r} is not an ISO "
                                       "timestamp", int(row["_line"])) from None
    return InboundUpdate(reference=row["reference"], status=parse_status(name, row),
                         event_id=event_id(sha256, int(row["_line"])),
                         reason=row["reason"] or None, service_point=row["service_point"] or None,
                         occurred_at=occurred_at)
