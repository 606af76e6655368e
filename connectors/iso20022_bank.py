"""ISO 20022 bank connector (protocol `iso20022`): pain.001 out, pain.002 and
camt.054 in, over the bank's SFTP server (`connectors.sftp`). XML is written
and read by the `connectors.iso20022` library only.

The exchange:

- `send`: one `inbox/pain001-<digest>.xml` per chunk (one file per batch and
  bank: a chunk never mixes partners), written under a temporary name and
  renamed. The digest covers the chunk's references, so the MsgId and the file
  of a redelivered chunk are the same; EndToEndId is our transfer reference,
  the creditor account the beneficiary's RIB. A transfer whose RIB is not a
  valid RIB is refused here (AC01) and never reaches the bank.
- The bank answers `outbox/pain002-*.xml` (ACCP on receipt, then ACSC or RJCT
  with a reason code such as AC01, AC04, AM04; at group, payment-information or
  transaction level) and books each credit in `outbox/camt054-*.xml`
  notifications (a booked debit of the funding account = paid).
- `collect`: every pain.002 and camt.054 of the outbox as `InboundUpdate`s; event
  ids come from the report's MsgId / notification id and the transaction, so a
  report read twice changes nothing.
- `status`: the latest status the bank's reports give each reference; one the
  bank never reported is `not_found` (the bank refuses a duplicate EndToEndId,
  so a resend cannot pay twice).
- `cancel`: banks take cancellations as camt.055, which this channel does not
  carry: a transfer the bank already settled answers its status, any other
  raises TerminalError (the officer cancels with the bank directly).
"""
from __future__ import annotations

import hashlib
import io
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, date, datetime
from typing import BinaryIO

from connectors.base import (
    InboundUpdate,
    OutboundTransfer,
    PartnerStatus,
    SendResult,
    TerminalError,
)
from connectors.file_exchange import PartnerFile
from connectors.iso20022.pain001 import Debtor, InitiationHeader, write_pain001
from connectors.iso20022.pain002 import read_pain002
from connectors.sftp import SftpEndpoint, SftpSession
from disbursement.domain.rib import rib_problem
from disbursement.domain.routing import FundingAccount
from disbursement.domain.statements import (
    EntryKind,
    StatementEntry,
    StatementError,
    StatementSummary,
)
from disbursement.iso20022.xml import MessageError

INBOX = "inbox"
OUTBOX = "outbox"
INITIATING_PARTY = "Programme d'aide sociale directe"
KIND_BY_PREFIX = {"pain002": "pain.002", "camt054": "camt.054"}
# A report's status order: a later report never moves a reference backwards.
PROGRESS = {PartnerStatus.RECEIVED: 0, PartnerStatus.REJECTED: 1, PartnerStatus.CANCELLED: 1,
            PartnerStatus.AVAILABLE: 1, PartnerStatus.PAID: 2}


# Reads a camt.054 notification: reconciliation's reader, handed in by the
# composition root (a connector never imports reconciliation).
NotificationReader = Callable[[BinaryIO, StatementSummary], Iterator[StatementEntry]]


class BankConfigError(ValueError):
    """Raised when a bank partner is given no funding account (the configuration
    refuses a bank without one; a partner built by hand may still lack it)."""


def debtor(partner_code: str, account: FundingAccount | None) -> Debtor:
    """The programme's account at the bank, debited by every pain.001."""
    if account is None:
        raise BankConfigError(f"partner {partner_code}: no funding account "
                              "(debtor_name, debtor_rib in partners.toml)")
    return Debtor(name=account.name, rib=account.rib, bic=account.bic)


class Iso20022BankConnector:
    def __init__(self, endpoint: SftpEndpoint, debtor: Debtor,
                 read_notifications: NotificationReader,
                 timeout_seconds: float = 10.0) -> None:
        self.partner_code = endpoint.partner_code
        self.session = SftpSession(endpoint, timeout_seconds)
        self.debtor = debtor
        self.read_notifications = read_notifications

    def close(self) -> None:
        self.session.close()

    def __enter__(self) -> Iso20022BankConnector:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def send(self, transfers: Sequence[OutboundTransfer]) -> list[SendResult]:
        if not transfers:
            return []
        refused = {t.reference: rib_problem(t.account) for t in transfers if rib_problem(t.account)}
        good = [t for t in transfers if t.reference not in refused]
        if good:
            references = "\n".join(sorted(t.reference for t in good))
            digest = hashlib.sha256(references.encode()).hexdigest()
            now = datetime.now(UTC)
            header = InitiationHeader(message_id=f"MSG-{digest[:24]}",
                                      payment_information_id=f"PMT-{digest[:24]}",
                                      created_at=now, requested_execution_date=now.date(),
                                      initiating_party=INITIATING_PARTY, debtor=self.debtor)
            out = io.BytesIO()
            write_pain001(out, header, good)
            self.session.upload(INBOX, f"pain001-{digest[:24]}.xml", out.getvalue())
        return [SendResult(t.reference, PartnerStatus.REJECTED, f"AC01 {refused[t.reference]}")
                if t.reference in refused else SendResult(t.reference, PartnerStatus.RECEIVED)
                for t in transfers]

    def status(self, references: Sequence[str]) -> dict[str, PartnerStatus]:
        latest: dict[str, PartnerStatus] = {}
        for found in self.fetch_files(set()):
            for update in found.updates:
                known = latest.get(update.reference)
                if known is None or PROGRESS.get(update.status, 1) >= PROGRESS.get(known, 1):
                    latest[update.reference] = update.status
        return {r: latest.get(r, PartnerStatus.NOT_FOUND) for r in references}

    def cancel(self, reference: str) -> PartnerStatus:
        current = self.status([reference])[reference]
        if current in (PartnerStatus.PAID, PartnerStatus.REJECTED, PartnerStatus.CANCELLED):
            return current
        raise TerminalError(f"{self.partner_code}: cancellation needs camt.055, not offered on "
                            f"this channel; cancel {reference} with the bank directly")

    def collect(self) -> list[InboundUpdate]:
        # ACCP only repeats what the upload told us (`sent`): not an update.
        return [u for f in self.fetch_files(set()) if f.error is None for u in f.updates
                if u.status != PartnerStatus.RECEIVED]

    def fetch_files(self, known: set[str]) -> list[PartnerFile]:
        """pain.002 and camt.054 files of the outbox not in `known`, in name order,
        each read; a file that fails to read carries its error and no update."""
        files = []
        # The bank numbers its files across kinds: read them in that order.
        for name in sorted(self.session.listdir(OUTBOX), key=lambda n: n.partition("-")[2]):
            kind = KIND_BY_PREFIX.get(name.split("-", 1)[0])
            if kind is None or not name.endswith(".xml") or name in known:
                continue
            data = self.session.read(OUTBOX, name) or b""
            found = PartnerFile(name, kind, hashlib.sha256(data).hexdigest(), data)
            try:
                if kind == "pain.002":
                    _pain002(found)
                else:
                    _camt054(found, self.read_notifications)
            except (MessageError, StatementError) as exc:
                found.error = f"{name}: {exc}"
                found.updates, found.update_where = [], []
            files.append(found)
        return files


def _pain002(found: PartnerFile) -> None:
    for record in read_pain002(io.BytesIO(found.data)):
        found.lines += 1
        update = record.as_update()
        if update is None:
            # A whole-message status naming no transaction, or a code that says
            # nothing definite (PART): transfers wait for a report naming them.
            continue
        found.updates.append(update)
        found.update_where.append(record.locator)


def _camt054(found: PartnerFile, read_notifications: NotificationReader) -> None:
    summary = StatementSummary()
    for entry in read_notifications(io.BytesIO(found.data), summary):
        found.lines += 1
        found.total_centimes += entry.amount_centimes
        if entry.kind != EntryKind.PAYMENT or entry.status != "BOOK":
            continue       # returns and pending entries are reconciliation's
        found.updates.append(InboundUpdate(
            entry.reference, PartnerStatus.PAID,
            event_id=f"camt054:{summary.statement_id}:{entry.line_no}"[:64],
            occurred_at=datetime.combine(entry.value_date, datetime.min.time(), UTC)
            if isinstance(entry.value_date, date) else None))
        found.update_where.append(entry.locator)
