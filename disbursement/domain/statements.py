"""What every statement format becomes: a stream of `StatementEntry`s and a
`StatementSummary` filled while the stream is read.

CSV settlement files, ISO 20022 camt.053 / camt.054 and SWIFT MT940 each have
a reader (see `reconciliation.readers`) with one signature:

    read(stream: BinaryIO, summary: StatementSummary) -> Iterator[StatementEntry]

The reader streams (never holds the whole file), fills `summary` as it meets
the header, balances and trailer, and raises `StatementError` naming the line
or XML element when the file is wrong. Amounts are positive integer centimes;
`kind` says whether the money went to a beneficiary or came back.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import date

from disbursement.domain.errors import BadInput


class StatementError(BadInput, ValueError):
    """Raised when a statement file is malformed; the message names the line
    (CSV, MT940) or the element path (ISO 20022) that is wrong."""


class EntryKind(enum.StrEnum):
    PAYMENT = "payment"      # paid out to the beneficiary (collected / credited)
    RETURN = "return"        # funds came back: reversal, return, expiry refund


@dataclass(frozen=True, slots=True)
class StatementEntry:
    line_no: int                 # 1-based line (CSV, MT940) or entry ordinal (camt)
    locator: str                 # where in the file: "line 12", "Ntry[3]/NtryDtls/TxDtls[1]"
    reference: str               # our transfer reference (EndToEndId, :61:/:86: reference)
    amount_centimes: int         # always > 0
    currency: str                # ISO 4217
    kind: EntryKind
    value_date: date
    status: str = "paid"         # the partner's word for the entry (CSV status column, BOOK...)
    service_point: str | None = None
    reason_code: str | None = None   # ISO return reason (AC04, MD06...) for returns


@dataclass
class StatementSummary:
    """Filled by the reader. Balances are signed centimes, None when the format
    carries none (CSV). `declared_*` come from a trailer or a group header."""
    statement_id: str | None = None
    account: str | None = None
    currency: str | None = None
    opening_balance_centimes: int | None = None
    closing_balance_centimes: int | None = None
    from_date: date | None = None
    to_date: date | None = None
    declared_count: int | None = None
    declared_total_centimes: int | None = None
    entries: int = 0
    payments_centimes: int = 0
    returns_centimes: int = 0
    # Booked movements that are no transfer of ours (pre-funding credits, bank
    # fees), signed as seen from the account: credits +, debits -. They are not
    # yielded as entries but still move the balance.
    other_movements_centimes: int = 0
    notes: list[str] = field(default_factory=list)

    def balance_difference(self) -> int | None:
        """opening - payments + returns - closing, as seen from the programme's
        funding account at the partner (payments debit it, returns credit it);
        None when the format carries no balances; 0 when they agree."""
        if self.opening_balance_centimes is None or self.closing_balance_centimes is None:
            return None
        return (self.opening_balance_centimes - self.payments_centimes + self.returns_centimes
                + self.other_movements_centimes - self.closing_balance_centimes)
