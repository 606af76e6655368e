"""SWIFT MT940 statements, read with the `mt-940` library, in bounded memory.

The file is split here, line by line, on statement boundaries (`:20:`, the
`-` / `-}` end of a SWIFT block); a long statement is further cut every
`CHUNK_TRANSACTIONS` `:61:` lines, each chunk fed to the library with the
statement's header lines repeated, so no statement is ever held whole.

References: the `:61:` customer reference, else the bank reference after
`//`, else a reference found in the `:86:` narrative (multi-line, `?20`-style
subfields or free text). A line naming none of ours is counted as another
movement of the account (fees, funding) and noted, not yielded.
"""
from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import BinaryIO

import mt940

from disbursement.domain import money
from disbursement.domain.references import is_valid_reference
from disbursement.domain.statements import (
    EntryKind,
    StatementEntry,
    StatementError,
    StatementSummary,
)
from reconciliation.readers.references import find_reference

CHUNK_TRANSACTIONS = 1000
NO_REFERENCE = "NONREF"
# Debit = paid out from the funding account; a credit, or a reversal mark
# (RD: reversal of a debit, RC: reversal of a credit), is money coming back.
PAYMENT_MARKS = frozenset({"D"})
RETURN_MARKS = frozenset({"C", "RD", "RC"})
_OPTIONS = mt940.Options.all()
_TAG = re.compile(r":([0-9]{2}[A-Z]?):", re.ASCII)
_SUBFIELD = re.compile(r"\?[0-9]{2}", re.ASCII)
_REASON = re.compile(r"(?<![0-9A-Z])(?:AC|AG|AM|BE|MD|MS|RC|RR|FF|DT|ED|RF)[0-9]{2}(?![0-9A-Z])",
                     re.ASCII)
_DATED_TAGS = frozenset({"60F", "60M", "61", "62F", "62M", "64", "65"})
_PLAIN_REFERENCE = re.compile(r"[0-9A-Za-z/.+-]{1,16}", re.ASCII)


@dataclass
class _Chunk:
    """Lines of one statement to be fed to the library: the header (up to the
    first `:61:`) and the transaction lines of this chunk, with their line
    numbers in the file."""
    start_line: int
    header: list[tuple[int, str]] = field(default_factory=list)
    body: list[tuple[int, str]] = field(default_factory=list)
    transactions: int = 0
    first: bool = True      # the statement's first chunk (carries its opening balance)


@dataclass
class _Progress:
    statements: int = 0
    previous_closing: int | None = None


def read_mt940(stream: BinaryIO, summary: StatementSummary) -> Iterator[StatementEntry]:
    """Stream the entries of an MT940 file, filling `summary` (statement id
    and account from the first statement, opening balance from the first
    `:60F:`/`:60M:`, closing from the last `:62F:`/`:62M:`).

    Raises `StatementError` naming the line when the file is wrong."""
    progress = _Progress()
    for chunk, last in _chunks(stream):
        yield from _read_chunk(chunk, last, summary, progress)
    if progress.statements == 0:
        raise StatementError("line 1: no MT940 statement (no :20: field)")


def _chunks(stream: BinaryIO) -> Iterator[tuple[_Chunk, bool]]:
    """(chunk, is the statement's last chunk) in file order."""
    chunk: _Chunk | None = None
    for number, raw in enumerate(stream, start=1):
        try:
            line = raw.decode("utf-8").rstrip("\r\n")
        except UnicodeDecodeError:
            raise StatementError(f"line {number}: not UTF-8 text") from None
        if "{4:" in line:   # SWIFT envelope: blocks 1-3 precede the text block
            line = line.split("{4:", 1)[1]
        stripped = line.strip()
        if stripped.startswith(":20:"):
            if chunk is not None:
                yield chunk, True
            chunk = _Chunk(number)
        if chunk is None:
            # Bank routing lines between statements ("ABNANL2A", "940"...).
            continue
        if stripped in ("-", "-}") or stripped.startswith("-}"):
            yield chunk, True
            chunk = None
            continue
        if not stripped:
            continue
        if stripped.startswith(":61:"):
            if chunk.transactions == CHUNK_TRANSACTIONS:
                yield chunk, False
                chunk = _Chunk(chunk.start_line, chunk.header, first=False)
            chunk.transactions += 1
        (chunk.body if chunk.transactions else chunk.header).append((number, line))
    if chunk is not None:
        yield chunk, True


def _read_chunk(chunk: _Chunk, last: bool, summary: StatementSummary,
                progress: _Progress) -> Iterator[StatementEntry]:
    lines = chunk.header + chunk.body
    text = "\n".join(line for _, line in lines) + "\n"
    try:
        transactions = mt940.parse(text, options=_OPTIONS)
    except RuntimeError as exc:
        raise StatementError(f"line {_line_of(exc, lines, chunk.start_line)}: malformed field: "
                             f"{_value_of(exc)!r}") from None
    except (ValueError, KeyError, IndexError, AttributeError, TypeError, InvalidOperation) as exc:
        # The library's own failures on odd input, translated where they enter.
        bad_line = _bad_date_line(lines) or chunk.start_line
        raise StatementError(f"line {bad_line}: statement not readable: {exc}") from None
    data = transactions.data
    if chunk.first:
        _statement_header(data, chunk, summary, progress)
    raw = _raw_transactions(chunk.body)
    if len(raw) != len(transactions):
        raise StatementError(f"line {chunk.start_line}: {len(raw)} :61: lines but "
                             f"{len(transactions)} transactions understood")
    for index, transaction in enumerate(transactions):
        number, details = raw[index] if index < len(raw) else (chunk.start_line, "")
        entry = _entry(transaction.data, number, details, summary)
        if entry is not None:
            yield entry
    if last:
        closing = data.get("final_closing_balance") or data.get("intermediate_closing_balance")
        if closing is None:
            raise StatementError(f"line {chunk.start_line}: statement has no closing balance "
                                 "(:62F: or :62M:)")
        closing_centimes = _centimes(closing.amount.amount, chunk.start_line)
        progress.previous_closing = summary.closing_balance_centimes = closing_centimes
        summary.to_date = _date(closing.date)


def _statement_header(data: dict, chunk: _Chunk, summary: StatementSummary,
                      progress: _Progress) -> None:
    progress.statements += 1
    where = f"line {chunk.start_line}"
    account = data.get("account_identification")
    if not account:
        raise StatementError(f"{where}: statement has no account (:25:)")
    if summary.account is not None and account != summary.account:
        raise StatementError(f"{where}: account differs from the first statement's; "
                             "one file per account")
    opening = data.get("final_opening_balance") or data.get("intermediate_opening_balance")
    if opening is None:
        raise StatementError(f"{where}: statement has no opening balance (:60F: or :60M:)")
    centimes = _centimes(opening.amount.amount, chunk.start_line)
    if progress.previous_closing is not None and centimes != progress.previous_closing:
        raise StatementError(f"{where}: opening balance {centimes} centimes does not continue "
                             f"the previous statement's closing balance "
                             f"{progress.previous_closing}")
    currency = opening.amount.currency
    if summary.currency is not None and currency != summary.currency:
        raise StatementError(f"{where}: currency {currency} differs from {summary.currency}")
    if progress.statements == 1:
        summary.statement_id = data.get("transaction_reference")
        summary.account, summary.currency = account, currency
        summary.opening_balance_centimes = centimes
        summary.from_date = _date(opening.date)


def _raw_transactions(body: list[tuple[int, str]]) -> list[tuple[int, str]]:
    """(line of the `:61:`, raw `:86:` text with its continuation lines) per
    transaction, read from the file's own lines: the library turns structured
    `:86:` fields into named parts and no longer keeps the text."""
    found: list[tuple[int, list[str]]] = []
    in_details = False
    for number, line in body:
        tag = _TAG.match(line)
        if tag:
            in_details = tag.group(1) == "86"
            if tag.group(1) == "61":
                found.append((number, []))
            elif in_details and found:
                found[-1][1].append(line[tag.end():])
        elif in_details and found:
            found[-1][1].append(line)
    return [(number, "\n".join(parts)) for number, parts in found]


def _entry(data: dict, line: int, details: str, summary: StatementSummary) -> StatementEntry | None:
    mark = data.get("status")
    if mark not in PAYMENT_MARKS | RETURN_MARKS:
        raise StatementError(f"line {line}: debit/credit mark {mark!r} is not D, C, RD or RC")
    centimes = _centimes(abs(data["amount"].amount), line)
    if centimes == 0:
        raise StatementError(f"line {line}: zero amount")
    kind = EntryKind.PAYMENT if mark in PAYMENT_MARKS else EntryKind.RETURN
    reference = _reference(data, details)
    if reference is None:
        signed = -centimes if kind == EntryKind.PAYMENT else centimes
        summary.other_movements_centimes += signed
        summary.notes.append(f"line {line}: {mark} {centimes} centimes names no transfer "
                             "reference; not a transfer of ours")
        return None
    summary.entries += 1
    if kind == EntryKind.PAYMENT:
        summary.payments_centimes += centimes
    else:
        summary.returns_centimes += centimes
    reason = _return_reason(details) if kind == EntryKind.RETURN else None
    return StatementEntry(line, f"line {line}", reference, centimes, data["amount"].currency, kind,
                          _date(data["date"]), "booked", None, reason)


def _reference(data: dict, details: str) -> str | None:
    """Ours from the `:61:` customer or bank reference, the `:86:` end-to-end
    reference, or the `:86:` text; else the customer reference as the bank
    gave it (an unknown reference for the matcher); None for NONREF lines."""
    customer = (data.get("customer_reference") or "").strip()
    for candidate in (customer, data.get("bank_reference"), data.get("end_to_end_reference")):
        if candidate and is_valid_reference(candidate.strip()):
            return candidate.strip()
    found = find_reference(details) or find_reference(data.get("extra_details"))
    if found:
        return found
    if customer.upper() == NO_REFERENCE or _PLAIN_REFERENCE.fullmatch(customer) is None:
        return None
    return customer


def _return_reason(details: str) -> str | None:
    """An ISO return reason (AC04, MD06...) when the narrative carries one."""
    match = _REASON.search(_SUBFIELD.sub(" ", details))
    return match.group(0) if match else None


def _centimes(amount: Decimal, line: int) -> int:
    """The library reads MT940's decimal comma into a Decimal; `domain.money` makes it centimes."""
    try:
        return money.centimes_of(amount)
    except money.TooManyDecimals:
        raise StatementError(f"line {line}: amount {amount} has more than 2 decimals") from None


def _date(value: date) -> date:
    return date(value.year, value.month, value.day)  # mt940's Date is a datetime.date subclass


def _bad_date_line(lines: list[tuple[int, str]]) -> int | None:
    """The first line whose YYMMDD date is no date (the library only says
    "day is out of range for month")."""
    for number, line in lines:
        tag = _TAG.match(line)
        if tag is None or tag.group(1) not in _DATED_TAGS:
            continue
        value = line[tag.end():]
        digits = value[:6] if tag.group(1) == "61" else value[1:7]
        try:
            date(2000 + int(digits[:2]), int(digits[2:4]), int(digits[4:6]))
        except ValueError:
            return number
    return None


def _value_of(exc: RuntimeError) -> str:
    return str(exc.args[2]) if len(exc.args) > 2 else str(exc.args[0])


def _line_of(exc: RuntimeError, lines: list[tuple[int, str]], default: int) -> int:
    value = _value_of(exc).split("\n", 1)[0]
    for number, line in lines:
        if line.startswith(":") and line.split(":", 2)[-1].startswith(value):
            return number
    return default
