"""The CSV settlement statement partners send (the REST simulator's format):

    reference,amount_centimes,currency,status,value_date,service_point
    D1234...,70000,MAD,paid,2026-12-05,SP-0001
    TRAILER,<line count>,<sum of amount_centimes>

Streamed line by line; every error names the line and the problem.
"""
from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from typing import BinaryIO

from disbursement.domain.errors import BadInput

HEADER = ["reference", "amount_centimes", "currency", "status", "value_date", "service_point"]
# str.isdigit() also takes '²' and Arabic-Indic digits; date.fromisoformat()
# also takes '20261205' and '2026-W49-1'. The format is ASCII only.
_WHOLE = re.compile(r"[0-9]+")
_SIGNED_WHOLE = re.compile(r"-?[0-9]+")
_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


class StatementError(BadInput, ValueError):
    """Raised when a statement file is malformed; the message names the line."""


@dataclass(frozen=True, slots=True)
class StatementLine:
    line_no: int
    reference: str
    amount_centimes: int
    currency: str
    status: str
    value_date: date
    service_point: str | None


@dataclass
class Trailer:
    count: int = -1
    total_centimes: int = 0


def read_lines(stream: BinaryIO, trailer: Trailer) -> Iterator[StatementLine]:
    """Yields the lines; fills `trailer` and checks it against them at the end."""
    text = io.TextIOWrapper(stream, encoding="utf-8-sig", newline="")
    rows = csv.reader(text)
    header = next(rows, None)
    if header != HEADER:
        raise StatementError(f"line 1: header must be {','.join(HEADER)}, "
                             f"got {','.join(header or [])}")
    count = total = 0
    for line_no, row in enumerate(rows, start=2):
        if trailer.count >= 0:
            raise StatementError(f"line {line_no}: data after the TRAILER line")
        if row and row[0] == "TRAILER":
            trailer.count, trailer.total_centimes = _trailer(line_no, row)
            continue
        line = _line(line_no, row)
        count += 1
        total += line.amount_centimes
        yield line
    if trailer.count < 0:
        raise StatementError("statement has no TRAILER line (truncated file?)")
    if (trailer.count, trailer.total_centimes) != (count, total):
        raise StatementError(f"trailer says {trailer.count} lines totalling "
                             f"{trailer.total_centimes}, "
                             f"file has {count} lines totalling {total}")


def _trailer(line_no: int, row: list[str]) -> tuple[int, int]:
    if len(row) != 3 or not _WHOLE.fullmatch(row[1]) or not _SIGNED_WHOLE.fullmatch(row[2]):
        raise StatementError(f"line {line_no}: TRAILER must be TRAILER,<count>,<total_centimes>")
    return int(row[1]), int(row[2])


def _line(line_no: int, row: list[str]) -> StatementLine:
    if len(row) != len(HEADER):
        raise StatementError(f"line {line_no}: expected {len(HEADER)} fields, got {len(row)}")
    reference, amount, currency, status, value_date, service_point = (c.strip() for c in row)
    if not reference:
        raise StatementError(f"line {line_no}: empty reference")
    if not _WHOLE.fullmatch(amount):
        raise StatementError(f"line {line_no}: amount_centimes {amount!r} is not a whole "
                             "number of centimes")
    if len(currency) != 3 or not currency.isalpha():
        raise StatementError(f"line {line_no}: currency {currency!r} is not an ISO 4217 code")
    when = _iso_date(value_date)
    if when is None:
        raise StatementError(f"line {line_no}: value_date {value_date!r} is not YYYY-MM-DD")
    return StatementLine(line_no, reference, int(amount), currency.upper(), status.lower(), when,
                         service_point or None)


def _iso_date(text: str) -> date | None:
    if not _ISO_DATE.fullmatch(text):
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:  # e.g. 2026-02-30
        return None
