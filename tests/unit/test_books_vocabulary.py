"""The partners' books vocabulary names only words the partners (connectors)
and the statement matcher really use: a typo there would make a kind of
disagreement silently empty."""
from __future__ import annotations

from connectors.base import PartnerStatus
from disbursement.domain import books
from disbursement.domain.states import TransferStatus
from reconciliation.matcher import PAID_BUT, Outcome


def test_partner_words_are_partner_statuses():
    assert {books.PARTNER_PAID, *books.PARTNER_DENIES_PAYMENT} <= {s.value for s in PartnerStatus}
    assert books.PARTNER_PAID == PartnerStatus.PAID == TransferStatus.PAID


def test_statement_words_are_matcher_outcomes():
    outcomes = {o.value for o in Outcome}
    assert {*books.STATEMENT_SAYS_PAID, books.MISSING_FROM_STATEMENT} <= outcomes
    # Every outcome by which a statement's payment line says "paid" is counted.
    said_paid = {Outcome.MATCHED, Outcome.NOT_PAID_HERE, Outcome.AMOUNT_OVER,
                 Outcome.AMOUNT_UNDER, Outcome.CURRENCY_MISMATCH, *PAID_BUT.values()}
    assert set(books.STATEMENT_SAYS_PAID) == {o.value for o in said_paid}
