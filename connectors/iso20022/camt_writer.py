"""Writing camt.053 statements and camt.054 notifications (the bank simulator
and the test fixtures), streamed like every writer here.

A statement's closing balance and entry totals sit before its entries, so
entries are a sequence read twice: once for the sums, once to write.
"""
from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import IO

from disbursement.domain.statements import EntryKind
from disbursement.iso20022.writing import DocumentWriter, Spec, iso_datetime
from disbursement.iso20022.xml import CAMT_053, CAMT_054, MessageType, format_centimes

# Bank transaction codes (ISO external code set): payments domain, issued
# credit transfers, domestic credit transfer / its return.
DOMAIN = "PMNT"
FAMILY = "ICDT"
PAYMENT_SUBFAMILY = "DMCT"
RETURN_SUBFAMILY = "RRTN"


class CamtWriteError(ValueError):
    """Raised before anything is written when a report cannot be expressed:
    an entry mixing payments and returns or currencies, a non-positive amount,
    or a notification given balances."""


@dataclass(frozen=True, slots=True)
class BookedTransaction:
    # our transfer reference (EndToEndId); None: a movement of the bank's
    reference: str | None
    amount_centimes: int
    currency: str = "MAD"
    kind: EntryKind = EntryKind.PAYMENT
    reason_code: str | None = None   # return reason (AC04, MD06...) for a RETURN


@dataclass(frozen=True)
class BookedEntry:
    """One Ntry; more than one transaction makes it a batched entry."""
    transactions: Sequence[BookedTransaction]
    booking_date: date
    value_date: date
    status: str = "BOOK"
    bank_reference: str | None = None      # AcctSvcrRef
    reversal: bool = False
    note: str | None = None                # AddtlNtryInf

    @property
    def kind(self) -> EntryKind:
        return self.transactions[0].kind

    @property
    def amount_centimes(self) -> int:
        return sum(t.amount_centimes for t in self.transactions)


@dataclass(frozen=True)
class AccountReport:
    """One Stmt (camt.053) or Ntfctn (camt.054) of one account."""
    report_id: str
    account: str                           # the account's RIB (Othr/Id) or IBAN
    currency: str
    entries: Sequence[BookedEntry]
    from_date: date | None = None
    to_date: date | None = None
    opening_balance_centimes: int | None = None      # signed; statements only
    closing_balance_centimes: int | None = None      # None: opening - payments + returns
    # (code, signed centimes, date)
    extra_balances: Sequence[tuple[str, int, date]] = field(default_factory=tuple)


def write_camt053(out: str | os.PathLike | IO[bytes], message_id: str, created_at: datetime,
                  statements: Sequence[AccountReport]) -> None:
    """Write a camt.053.001.08 with one Stmt per report.

    Raises `CamtWriteError` before writing when a report is inconsistent."""
    _write(out, CAMT_053, "Stmt", message_id, created_at, statements)


def write_camt054(out: str | os.PathLike | IO[bytes], message_id: str, created_at: datetime,
                  notifications: Sequence[AccountReport]) -> None:
    """Write a camt.054.001.08 with one Ntfctn per report (no balances).

    Raises `CamtWriteError` before writing when a report is inconsistent."""
    for report in notifications:
        if (report.opening_balance_centimes is not None
                or report.closing_balance_centimes is not None):
            raise CamtWriteError(f"notification {report.report_id}: camt.054 carries no balances")
    _write(out, CAMT_054, "Ntfctn", message_id, created_at, notifications)


def closing_balance(report: AccountReport) -> int:
    """The closing balance a statement must show: opening - payments + returns
    (other booked movements of the bank's counted by direction)."""
    balance = report.opening_balance_centimes or 0
    for entry in report.entries:
        if entry.status == "BOOK":
            balance += entry.amount_centimes * _sign(entry)
    return balance


def _write(out, message: MessageType, element: str, message_id: str, created_at: datetime,
           reports: Sequence[AccountReport]) -> None:
    for report in reports:
        _check(report)
    with DocumentWriter(out, message) as doc:
        doc.write(("GrpHdr", [("MsgId", message_id), ("CreDtTm", iso_datetime(created_at))]))
        for report in reports:
            with doc.open(element):
                doc.write(("Id", report.report_id))
                doc.write(("CreDtTm", iso_datetime(created_at)))
                if report.from_date and report.to_date:
                    doc.write(("FrToDt", [
                        ("FrDtTm", f"{report.from_date.isoformat()}T00:00:00+00:00"),
                        ("ToDtTm", f"{report.to_date.isoformat()}T23:59:59+00:00")]))
                doc.write(("Acct", [("Id", _account_id(report.account)), ("Ccy", report.currency)]))
                if message is CAMT_053:
                    for spec in _balances(report, created_at.date()):
                        doc.write(spec)
                doc.write(("TxsSummry", [("TtlNtries", [
                    ("NbOfNtries", str(len(report.entries))),
                    ("Sum", format_centimes(sum(e.amount_centimes for e in report.entries)))])]))
                for number, entry in enumerate(report.entries, start=1):
                    doc.write(_entry(entry, f"{report.report_id}-{number}"))


def _check(report: AccountReport) -> None:
    for number, entry in enumerate(report.entries, start=1):
        where = f"report {report.report_id}, entry {number}"
        if not entry.transactions:
            raise CamtWriteError(f"{where}: no transaction")
        if (len({t.kind for t in entry.transactions}) > 1
                or len({t.currency for t in entry.transactions}) > 1):
            raise CamtWriteError(f"{where}: one entry carries one kind and one currency")
        if any(t.amount_centimes <= 0 for t in entry.transactions):
            raise CamtWriteError(f"{where}: amounts must be positive centimes")


def _sign(entry: BookedEntry) -> int:
    return 1 if entry.kind == EntryKind.RETURN else -1


def _indicator(signed: int) -> str:
    return "CRDT" if signed >= 0 else "DBIT"


def _account_id(account: str) -> list[Spec]:
    if account[:2].isalpha():
        return [("IBAN", account)]
    return [("Othr", [("Id", account), ("SchmeNm", [("Cd", "BBAN")])])]


def _balances(report: AccountReport, created_on: date) -> list[Spec]:
    opening = report.opening_balance_centimes or 0
    closing = report.closing_balance_centimes
    closing = closing_balance(report) if closing is None else closing
    start = report.from_date or created_on
    end = report.to_date or start
    balances = [("OPBD", opening, start), *report.extra_balances, ("CLBD", closing, end)]
    return [("Bal", [("Tp", [("CdOrPrtry", [("Cd", code)])]),
                     ("Amt", format_centimes(abs(signed)), {"Ccy": report.currency}),
                     ("CdtDbtInd", _indicator(signed)),
                     ("Dt", [("Dt", on.isoformat())])]) for code, signed, on in balances]


def _entry(entry: BookedEntry, bank_reference: str) -> Spec:
    currency = entry.transactions[0].currency
    indicator = _indicator(_sign(entry))
    subfamily = RETURN_SUBFAMILY if entry.kind == EntryKind.RETURN else PAYMENT_SUBFAMILY
    return ("Ntry", [
        ("NtryRef", bank_reference),
        ("Amt", format_centimes(entry.amount_centimes), {"Ccy": currency}),
        ("CdtDbtInd", indicator),
        ("RvslInd", "true" if entry.reversal else None),
        ("Sts", [("Cd", entry.status)]),
        ("BookgDt", [("Dt", entry.booking_date.isoformat())]),
        ("ValDt", [("Dt", entry.value_date.isoformat())]),
        ("AcctSvcrRef", entry.bank_reference or bank_reference),
        ("BkTxCd", [("Domn", [("Cd", DOMAIN),
                              ("Fmly", [("Cd", FAMILY), ("SubFmlyCd", subfamily)])])]),
        ("NtryDtls", [_details(t, indicator) for t in entry.transactions]),
        ("AddtlNtryInf", entry.note),
    ])


def _details(transaction: BookedTransaction, indicator: str) -> Spec:
    return ("TxDtls", [
        ("Refs", [("EndToEndId", transaction.reference or "NOTPROVIDED")]),
        ("Amt", format_centimes(transaction.amount_centimes), {"Ccy": transaction.currency}),
        ("CdtDbtInd", indicator),
        ("RtrInf",
         [("Rsn", [("Cd", transaction.reason_code)])] if transaction.reason_code else None),
    ])
