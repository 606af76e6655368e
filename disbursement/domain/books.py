"""The partners' books beside ours: the kinds of disagreement `disburse ledger
check` looks for, transfer by transfer, and the words of the partners and of
their statements each kind reads. Plain vocabulary; the tables turn each kind
into one predicate (`disbursement.db.models.core.BOOKS_WHERE`).

What a partner says of a transfer is `transfers.partner_status` (its last word,
kept even when it could not move our state); what its statements say is the
outcome of the statement's payment line for the transfer
(`transfers.recon_outcome`, a `reconciliation.matcher.Outcome` value).
"""
from __future__ import annotations

import enum


class Disagreement(enum.StrEnum):
    """One transfer on which two books disagree. Each kind is counted per
    partner; any of them fails the ledger check."""

    # Paid at the partner, not paid here (outstanding, queued, sent, unknown,
    # available, expired, cancelled...): money left and our records do not show it.
    PAID_AT_PARTNER_NOT_HERE = "paid_at_partner_not_here"
    ON_STATEMENT_NOT_PAID_HERE = "on_statement_not_paid_here"
    # Paid here, not paid at the partner: its last word is a refusal, or its
    # statements left the payment out past the partner's statement SLA.
    PAID_HERE_PARTNER_SAYS_NOT = "paid_here_partner_says_not"
    PAID_HERE_MISSING_FROM_STATEMENT = "paid_here_missing_from_statement"
    # The ledger against our own states.
    PAID_WITHOUT_PAYMENT_POSTING = "paid_without_payment_posting"
    PAYMENT_POSTING_NOT_PAID = "payment_posting_not_paid"


# The partner's words (connectors.base.PartnerStatus values) that deny a payment.
PARTNER_PAID = "paid"
PARTNER_DENIES_PAYMENT: tuple[str, ...] = ("rejected", "not_found", "cancelled", "expired")

# Outcomes of a statement payment line (reconciliation.matcher.Outcome values):
# each says "paid" (an amount or currency that differs from ours is an exception
# of its own in the queue, not a disagreement on whether it was paid).
STATEMENT_SAYS_PAID: tuple[str, ...] = (
    "matched", "paid_but_cancelled", "paid_but_expired", "paid_but_returned",
    "paid_in_statement_not_in_records", "amount_over", "amount_under", "currency_mismatch")
# The outcome of a payment of ours that no statement has carried yet.
MISSING_FROM_STATEMENT = "paid_in_records_missing_from_statement"
