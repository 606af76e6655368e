"""Bank-to-customer statements, `camt.053.001.08`: the end-of-day statement
of the programme's funding account (balances OPBD/CLBD, entries with our
EndToEndId references, returns with their reason codes)."""
from __future__ import annotations

from typing import BinaryIO, Iterator

from connectors.iso20022.camt import read_reports
from connectors.iso20022.camt_writer import AccountReport, BookedEntry, BookedTransaction, write_camt053
from connectors.iso20022.xml import CAMT_053
from reconciliation.entries import StatementEntry, StatementSummary

__all__ = ["AccountReport", "BookedEntry", "BookedTransaction", "read_camt053", "write_camt053"]


def read_camt053(stream: BinaryIO, summary: StatementSummary) -> Iterator[StatementEntry]:
    """Stream the entries of a camt.053.001.08, filling `summary` (statement
    id, account, currency, signed opening and closing balances, dates).

    Raises `StatementError` naming the element path when the file is wrong."""
    return read_reports(stream, summary, CAMT_053, "Stmt")
