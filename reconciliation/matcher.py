"""Matching rules: each statement line and each expected transfer ends in
exactly one outcome. Plain Python, no database."""
from __future__ import annotations

import enum
from dataclasses import dataclass

from reconciliation.statement_csv import StatementLine


class Outcome(enum.StrEnum):
    MATCHED = "matched"
    AMOUNT_MISMATCH = "amount_mismatch"
    CURRENCY_MISMATCH = "currency_mismatch"
    UNKNOWN_REFERENCE = "unknown_reference"
    DUPLICATE_LINE = "duplicate_line"
    NOT_PAID_HERE = "paid_in_statement_not_in_records"
    MISSING_FROM_STATEMENT = "paid_in_records_missing_from_statement"


EXCEPTIONS = frozenset(Outcome) - {Outcome.MATCHED}


@dataclass(frozen=True, slots=True)
class KnownTransfer:
    id: int
    amount_centimes: int
    currency: str
    status: str


def match_line(line: StatementLine, transfer: KnownTransfer | None,
               already_seen: bool) -> tuple[Outcome, str | None]:
    if already_seen:
        return Outcome.DUPLICATE_LINE, f"reference {line.reference} appears earlier in the statement"
    if transfer is None:
        return Outcome.UNKNOWN_REFERENCE, f"no transfer {line.reference} for this partner"
    if line.currency != transfer.currency:
        return Outcome.CURRENCY_MISMATCH, f"statement {line.currency}, transfer {transfer.currency}"
    if line.amount_centimes != transfer.amount_centimes:
        return (Outcome.AMOUNT_MISMATCH,
                f"statement {line.amount_centimes}, transfer {transfer.amount_centimes} "
                f"(difference {line.amount_centimes - transfer.amount_centimes})")
    if transfer.status != "paid":
        return Outcome.NOT_PAID_HERE, f"transfer is {transfer.status} in our records"
    return Outcome.MATCHED, None
