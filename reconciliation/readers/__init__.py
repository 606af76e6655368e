"""The statement formats we read, by name. Each reader has the signature
described in `disbursement.domain.statements`."""
from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import BinaryIO

from disbursement.domain.statements import (
    EntryKind,
    StatementEntry,
    StatementError,
    StatementSummary,
)
from reconciliation.readers import csv_statement as statement_csv
from reconciliation.readers.camt import read_camt053, read_camt054
from reconciliation.readers.mt940 import read_mt940

Reader = Callable[[BinaryIO, StatementSummary], Iterator[StatementEntry]]


def read_csv(stream: BinaryIO, summary: StatementSummary) -> Iterator[StatementEntry]:
    trailer = statement_csv.Trailer()
    try:
        for line in statement_csv.read_lines(stream, trailer):
            kind = EntryKind.RETURN if line.status == "returned" else EntryKind.PAYMENT
            entry = StatementEntry(line.line_no, f"line {line.line_no}", line.reference,
                                   line.amount_centimes, line.currency, kind, line.value_date,
                                   line.status, line.service_point)
            summary.entries += 1
            if kind == EntryKind.PAYMENT:
                summary.payments_centimes += entry.amount_centimes
            else:
                summary.returns_centimes += entry.amount_centimes
            yield entry
    except statement_csv.StatementError as exc:
        raise StatementError(str(exc)) from exc
    summary.declared_count, summary.declared_total_centimes = trailer.count, trailer.total_centimes


READERS: dict[str, Reader] = {"csv": read_csv, "camt053": read_camt053, "camt054": read_camt054,
                           "mt940": read_mt940}


def reader(format_name: str) -> Reader:
    try:
        return READERS[format_name]
    except KeyError:
        raise StatementError(f"unknown statement format {format_name!r}; "
                             f"known: {', '.join(sorted(READERS))}") from None
