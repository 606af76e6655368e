"""Matching rules: each statement entry and each expected transfer ends in
exactly one outcome. Plain Python, no database.

An entry meets its transfer by reference; then currency, then amount (over or
under), then what our records say of the transfer. A payment entry for a
transfer still `queued` / `sending` / `sent` / `available` / `unknown` here is
the partner's word that it paid: it matches, and the caller confirms the
payment. A return entry gives
back the funds of an expired transfer (or of a rejected / failed attempt);
a return of a paid transfer is not a transition our state table allows, so it
is flagged for an officer.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import date

from disbursement.domain.statements import EntryKind


class Outcome(enum.StrEnum):
    MATCHED = "matched"
    RETURNED = "returned"                      # funds given back, booked
    AMOUNT_OVER = "amount_over"
    AMOUNT_UNDER = "amount_under"
    CURRENCY_MISMATCH = "currency_mismatch"
    UNKNOWN_REFERENCE = "unknown_reference"
    DUPLICATE_LINE = "duplicate_line"
    PAID_BUT_CANCELLED = "paid_but_cancelled"
    PAID_BUT_EXPIRED = "paid_but_expired"
    PAID_BUT_RETURNED = "paid_but_returned"
    # From a partner's confirmation (not a statement): paid for an attempt that
    # was rejected or failed here, or an amount/currency not the transfer's.
    PAID_BUT_REJECTED = "paid_but_rejected"
    AMOUNT_MISMATCH = "amount_mismatch"
    NOT_PAID_HERE = "paid_in_statement_not_in_records"
    MISSING_FROM_STATEMENT = "paid_in_records_missing_from_statement"
    RETURN_OF_PAID = "return_of_paid"
    RETURN_NOT_ALLOWED = "return_not_allowed"
    BALANCE_DIFFERENCE = "balance_difference"  # statement level: opening + entries != closing


AGREEING = frozenset({Outcome.MATCHED, Outcome.RETURNED})
EXCEPTIONS = frozenset(Outcome) - AGREEING


class Action(enum.StrEnum):
    CONFIRM_PAID = "confirm_paid"    # move the transfer to paid, post the payment
    BOOK_RETURN = "book_return"      # move to returned (if expired), post the return


# The partner's word ahead of ours (a crash before we recorded its acceptance
# leaves a transfer queued or sending): the statement takes it along to paid.
PAID_LATE_FROM = frozenset({"queued", "sending", "sent", "available", "unknown"})
PAID_BUT = {"cancelled": Outcome.PAID_BUT_CANCELLED, "expired": Outcome.PAID_BUT_EXPIRED,
            "returned": Outcome.PAID_BUT_RETURNED}
FUNDS_RETURNABLE = frozenset({"expired", "rejected", "failed"})


@dataclass(frozen=True, slots=True)
class KnownTransfer:
    id: int
    amount_centimes: int
    currency: str
    status: str
    recon_outcome: str | None = None   # set once a payment entry met it
    funds_returned: bool = False


@dataclass(frozen=True, slots=True)
class Decision:
    outcome: Outcome
    detail: str | None = None
    action: Action | None = None

    def exposure(self, entry_amount: int, transfer: KnownTransfer | None) -> int:
        """Signed "statement minus our records" for the exceptions queue."""
        if self.outcome in (Outcome.AMOUNT_OVER, Outcome.AMOUNT_UNDER) and transfer is not None:
            return entry_amount - transfer.amount_centimes
        if self.outcome in (Outcome.RETURN_OF_PAID, Outcome.RETURN_NOT_ALLOWED):
            return -entry_amount
        return entry_amount


def match_entry(reference: str, amount_centimes: int, currency: str, kind: EntryKind,
                transfer: KnownTransfer | None, already_seen: bool) -> Decision:
    """`already_seen`: the same reference and kind appeared earlier in this statement."""
    if already_seen:
        return Decision(Outcome.DUPLICATE_LINE,
                        f"reference {reference} appears earlier in the statement")
    if transfer is None:
        return Decision(Outcome.UNKNOWN_REFERENCE, f"no transfer {reference} for this partner")
    if kind == EntryKind.PAYMENT and transfer.recon_outcome not in (
            None, Outcome.MISSING_FROM_STATEMENT.value):
        return Decision(Outcome.DUPLICATE_LINE,
                        f"reference {reference} already reconciled ({transfer.recon_outcome})")
    if currency != transfer.currency:
        return Decision(Outcome.CURRENCY_MISMATCH,
                        f"statement {currency}, transfer {transfer.currency}")
    if amount_centimes != transfer.amount_centimes:
        outcome = (Outcome.AMOUNT_OVER if amount_centimes > transfer.amount_centimes
                   else Outcome.AMOUNT_UNDER)
        return Decision(outcome, f"statement {amount_centimes}, "
                                 f"transfer {transfer.amount_centimes} "
                                 f"(difference {amount_centimes - transfer.amount_centimes})")
    if kind == EntryKind.RETURN:
        return _return(transfer)
    if transfer.status == "paid":
        return Decision(Outcome.MATCHED)
    if transfer.status in PAID_LATE_FROM:
        return Decision(Outcome.MATCHED,
                        f"payment confirmed by the statement (was {transfer.status})",
                        Action.CONFIRM_PAID)
    if transfer.status in PAID_BUT:
        return Decision(PAID_BUT[transfer.status], f"transfer is {transfer.status} in our records")
    return Decision(Outcome.NOT_PAID_HERE, f"transfer is {transfer.status} in our records")


def _return(transfer: KnownTransfer) -> Decision:
    if transfer.funds_returned or transfer.status == "returned":
        return Decision(Outcome.DUPLICATE_LINE, "funds already returned")
    if transfer.status in FUNDS_RETURNABLE:
        return Decision(Outcome.RETURNED, f"funds returned for a {transfer.status} transfer",
                        Action.BOOK_RETURN)
    if transfer.status == "paid":
        return Decision(Outcome.RETURN_OF_PAID,
                        "return of a paid transfer: a reversal for an officer")
    return Decision(Outcome.RETURN_NOT_ALLOWED, f"return of a {transfer.status} transfer")


AGEING_BUCKETS = (("0-7", 7), ("8-30", 30), ("31-60", 60))


def ageing_bucket(since: date, as_of: date) -> str:
    """The ageing bucket of an item opened on `since`, seen on `as_of`."""
    days = (as_of - since).days
    for name, upper in AGEING_BUCKETS:
        if days <= upper:
            return name
    return ">60"
