"""Bank-to-customer debit/credit notifications, `camt.054.001.08`: booking
notices for the programme's funding account, entry by entry, without
balances."""
from __future__ import annotations

from typing import BinaryIO, Iterator

from connectors.iso20022.camt import read_reports
from connectors.iso20022.camt_writer import AccountReport, BookedEntry, BookedTransaction, write_camt054
from connectors.iso20022.xml import CAMT_054
from reconciliation.entries import StatementEntry, StatementSummary

__all__ = ["AccountReport", "BookedEntry", "BookedTransaction", "read_camt054", "write_camt054"]


def read_camt054(stream: BinaryIO, summary: StatementSummary) -> Iterator[StatementEntry]:
    """Stream the entries of a camt.054.001.08, filling `summary` (notification
    id, account, currency; no balances).

    Raises `StatementError` naming the element path when the file is wrong."""
    return read_reports(stream, summary, CAMT_054, "Ntfctn")
