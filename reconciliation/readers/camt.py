"""What camt.053 statements and camt.054 notifications share: one account
report (Stmt / Ntfctn) of entries (Ntry), each with transaction details.

Reading turns every TxDtls carrying one of our references into a
`StatementEntry` (a batched Ntry gives one entry per TxDtls, with the TxDtls
amount) and fills the `StatementSummary`. Writing, for the bank simulator
and test fixtures, is `connectors.iso20022.camt_writer`.

Direction: the report is of the programme's funding account. A debit (DBIT)
is money paid out to a beneficiary (PAYMENT); a credit, a reversal (RvslInd)
or return information (RtrInf) is money coming back (RETURN).
"""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, BinaryIO

from disbursement.domain.statements import (
    EntryKind,
    StatementEntry,
    StatementError,
    StatementSummary,
)
from disbursement.iso20022.xml import (
    CAMT_053,
    CAMT_054,
    MessageError,
    MessageType,
    Node,
    format_centimes,
    parse_centimes,
    walk,
)
from reconciliation.readers.references import find_reference

BOOKED = "BOOK"
# PRCD: previously closed booked, used as opening by some banks
OPENING_BALANCES = ("OPBD", "PRCD")
CLOSING_BALANCES = ("CLBD",)


@dataclass
class _Report:
    """The report being read: what its header said, what its entries add up to."""
    where: str
    entries: int = 0                  # Ntry elements
    entries_total_centimes: int = 0   # sum of Ntry amounts (unsigned), as TxsSummry counts them
    declared_entries: int | None = None
    declared_total_centimes: int | None = None


def read_reports(stream: IO[bytes], summary: StatementSummary, message: MessageType,
                 report: str) -> Iterator[StatementEntry]:
    """Stream the entries of every `report` element (Stmt or Ntfctn).

    Raises `StatementError` naming the element path when the file is wrong."""
    try:
        yield from _read(stream, summary, message, report)
    except MessageError as exc:
        raise StatementError(str(exc)) from None


def _read(stream: IO[bytes], summary: StatementSummary, message: MessageType,
          report: str) -> Iterator[StatementEntry]:
    units = frozenset({"GrpHdr", *(f"{report}/{part}" for part in
                                   ("Id", "FrToDt", "Acct", "Bal", "TxsSummry", "Ntry"))})
    ordinal = 0
    current = _Report("")
    reports = 0
    for event in walk(stream, message, units=units, containers=frozenset({report})):
        node, part = event.node, event.path.partition("/")[2]
        if event.path == report:
            if event.kind == "start":
                reports += 1
                current = _Report(node.where)
            else:
                _check_totals(current)
        elif part == "Id":
            report_id = node.text()
            if summary.statement_id is None:
                summary.statement_id = report_id
            elif reports > 1:
                summary.notes.append(f"{node.where}: further {report} {report_id} read into "
                                     "the same summary")
        elif part == "FrToDt":
            _dates(node, summary)
        elif part == "Acct":
            _account(node, summary)
        elif part == "Bal":
            _balance(node, summary, first_report=reports == 1)
        elif part == "TxsSummry":
            count = node.text("TtlNtries/NbOfNtries", required=False)
            total = node.child("TtlNtries/Sum")
            if count is not None:
                if not (count.isascii() and count.isdigit()):
                    raise MessageError(f"{node.where}/TtlNtries/NbOfNtries: {count!r} "
                                       "is not a count")
                current.declared_entries = int(count)
            if total is not None:
                current.declared_total_centimes = parse_centimes(total.text() or "", total.where)
        elif part == "Ntry":
            for entry in _entry(node, ordinal, summary, current):
                ordinal += 1
                yield entry
    if reports == 0:
        raise StatementError(f"{message.root}/{report}: missing")


def _dates(node: Node, summary: StatementSummary) -> None:
    start, end = node.date("FrDtTm"), node.date("ToDtTm")
    summary.from_date = summary.from_date or start
    summary.to_date = end


def _account(node: Node, summary: StatementSummary) -> None:
    identifier = node.child("Id/IBAN") or node.child("Id/Othr/Id")
    if identifier is None:
        raise MessageError(f"{node.where}/Id: missing IBAN or Othr/Id")
    account = identifier.text()
    if summary.account is not None and summary.account != account:
        raise MessageError(f"{node.where}: another account than the first report's; "
                           "one file per account")
    summary.account = account
    currency = node.text("Ccy", required=False)
    if currency is not None:
        summary.currency = currency


def _balance(node: Node, summary: StatementSummary, *, first_report: bool) -> None:
    code = node.text("Tp/CdOrPrtry/Cd", required=False) or node.text("Tp/CdOrPrtry/Prtry")
    centimes, currency = node.amount("Amt")
    signed = centimes * _sign(node)
    on = node.date("Dt")
    if summary.currency is None:
        summary.currency = currency
    elif currency != summary.currency:
        raise MessageError(f"{node.where}/Amt/@Ccy: {currency} differs from the account's "
                           f"{summary.currency}")
    if code in OPENING_BALANCES and (first_report or summary.opening_balance_centimes is None):
        summary.opening_balance_centimes = signed
        summary.from_date = summary.from_date or on
    elif code in CLOSING_BALANCES:
        summary.closing_balance_centimes = signed
        if summary.to_date is None or (on and on > summary.to_date):
            summary.to_date = on


def _sign(node: Node) -> int:
    indicator = node.text("CdtDbtInd")
    if indicator not in ("CRDT", "DBIT"):
        raise MessageError(f"{node.where}/CdtDbtInd: {indicator!r} is neither CRDT nor DBIT")
    return 1 if indicator == "CRDT" else -1


def _entry(node: Node, ordinal: int, summary: StatementSummary,
           report: _Report) -> Iterator[StatementEntry]:
    amount, currency = node.amount("Amt")
    if amount == 0:
        raise MessageError(f"{node.where}/Amt: zero amount")
    sign = _sign(node)
    reversal = (node.text("RvslInd", required=False) or "false").lower() in ("true", "1")
    status = node.text("Sts/Cd", required=False) or node.text("Sts/Prtry", required=False)
    if status is None:
        raise MessageError(f"{node.where}/Sts: missing Cd or Prtry")
    value_date = node.date("ValDt", required=False) or node.date("BookgDt", required=False)
    if value_date is None:
        raise MessageError(f"{node.where}/ValDt: missing, and no BookgDt either")
    report.entries += 1
    report.entries_total_centimes += amount
    booked = status == BOOKED
    details = list(node.children("NtryDtls/TxDtls"))
    parts = _parts(node, details, amount, currency)
    for (where, reference, centimes, part_currency, return_code) in parts:
        if reference is None:
            if booked:
                summary.other_movements_centimes += sign * centimes
            movement = "credit" if sign > 0 else "debit"
            summary.notes.append(f"{where}: {movement} of {format_centimes(centimes)} "
                                 f"{part_currency} names no transfer reference; "
                                 "not a transfer of ours")
            continue
        kind = EntryKind.RETURN if (sign > 0 or reversal or return_code) else EntryKind.PAYMENT
        if summary.currency is None:
            summary.currency = part_currency     # camt.054 often names no account currency
        if booked:
            summary.entries += 1
            if kind == EntryKind.PAYMENT:
                summary.payments_centimes += centimes
            else:
                summary.returns_centimes += centimes
        yield StatementEntry(ordinal + 1, where, reference, centimes, part_currency, kind,
                             value_date, status, None, return_code)
        ordinal += 1


def _parts(node: Node, details: list[Node], amount: int, currency: str
           ) -> list[tuple[str, str | None, int, str, str | None]]:
    """(locator, reference, centimes, currency, return reason) per TxDtls, or
    one part for an entry without details."""
    if not details:
        text = node.text("AddtlNtryInf", required=False)
        return [(node.where, find_reference(text), amount, currency, None)]
    parts = []
    for detail in details:
        if detail.child("Amt") is not None:
            centimes, part_currency = detail.amount("Amt")
        elif detail.child("AmtDtls/TxAmt/Amt") is not None:
            centimes, part_currency = detail.amount("AmtDtls/TxAmt/Amt")
        elif len(details) == 1:
            centimes, part_currency = amount, currency
        else:
            raise MessageError(f"{detail.where}/Amt: missing in a batched entry")
        if centimes == 0:
            raise MessageError(f"{detail.where}/Amt: zero amount")
        reason = (detail.text("RtrInf/Rsn/Cd", required=False)
                  or detail.text("RtrInf/Rsn/Prtry", required=False))
        parts.append((detail.where, _reference(detail), centimes, part_currency, reason))
    same_currency = all(part[3] == currency for part in parts)
    if same_currency and sum(part[2] for part in parts) != amount:
        raise MessageError(f"{node.where}/Amt: the entry says {format_centimes(amount)}, "
                           "its TxDtls add up to "
                           f"{format_centimes(sum(part[2] for part in parts))}")
    return parts


def _reference(detail: Node) -> str | None:
    end_to_end = detail.text("Refs/EndToEndId", required=False)
    if end_to_end and end_to_end != "NOTPROVIDED":
        return end_to_end
    texts = [detail.text("AddtlTxInf", required=False)]
    texts += [line.text(required=False) for line in detail.children("RmtInf/Ustrd")]
    for text in texts:
        found = find_reference(text)
        if found:
            return found
    return None


def _check_totals(report: _Report) -> None:
    if report.declared_entries is not None and report.declared_entries != report.entries:
        raise MessageError(f"{report.where}/TxsSummry/TtlNtries/NbOfNtries: declares "
                           f"{report.declared_entries} entries, the report holds {report.entries}")
    if (report.declared_total_centimes is not None
            and report.declared_total_centimes != report.entries_total_centimes):
        raise MessageError(f"{report.where}/TxsSummry/TtlNtries/Sum: declares "
                           f"{format_centimes(report.declared_total_centimes)}, "
                           "the entries add up to "
                           f"{format_centimes(report.entries_total_centimes)}")



def read_camt053(stream: BinaryIO, summary: StatementSummary) -> Iterator[StatementEntry]:
    """Stream the entries of a camt.053.001.08 (the end-of-day statement of the
    programme's funding account), filling `summary` (statement id, account,
    currency, signed opening and closing balances, dates).

    Raises `StatementError` naming the element path when the file is wrong."""
    return read_reports(stream, summary, CAMT_053, "Stmt")


def read_camt054(stream: BinaryIO, summary: StatementSummary) -> Iterator[StatementEntry]:
    """Stream the entries of a camt.054.001.08 (booking notices, entry by entry,
    without balances), filling `summary` (notification id, account, currency).

    Raises `StatementError` naming the element path when the file is wrong."""
    return read_reports(stream, summary, CAMT_054, "Ntfctn")
