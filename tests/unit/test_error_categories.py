"""Each refusal's category decides the API status and the CLI exit code; the
table below pins the statuses and body codes the API has always answered."""
from __future__ import annotations

import pytest

from connectors.base import BadInboundMessage
from connectors.signing import ReplayError, SignatureError
from disbursement.bootstrap import UnknownPartner
from disbursement.cli.context import EXIT_BY_CATEGORY, EXIT_REFUSED, exit_code_of
from disbursement.domain import errors as categories
from disbursement.domain import statements as statement_entries
from disbursement.domain.entitlement import NoRulesForYear
from disbursement.services.batches import approval
from disbursement.services.cycles import planning
from disbursement.services.dispatch import cancellation, dead_letters
from disbursement.services.ledger import postings, reports
from disbursement.services.officers import sign_in, users
from disbursement.services.tracking import confirmations, inbound
from disbursement.web.errors import CODE_BY_ERROR, STATUS_BY_CATEGORY, code_of, status_of
from reconciliation import exceptions as recon_exceptions
from reconciliation.readers import csv_statement
from reconciliation.returns import BadReturn

CATEGORIES = [categories.Unauthenticated, categories.Refused, categories.NotFound,
              categories.Conflict, categories.BadInput, categories.Unavailable]

API_ANSWERS = [
    (SignatureError, 401, "bad_signature"),
    (ReplayError, 401, "bad_signature"),
    (inbound.NotJson, 400, "invalid_json"),
    (users.AuthenticationFailed, 401, "unauthenticated"),
    (approval.SelfApprovalRefused, 403, "self_approval"),
    (users.Forbidden, 403, "forbidden"),
    (sign_in.ConfirmationFailed, 403, "forbidden"),
    (approval.BatchNotFound, 404, "not_found"),
    (UnknownPartner, 404, "unknown_partner"),
    (planning.UnknownProgram, 404, "unknown_program"),
    (approval.BatchStateConflict, 409, "state_conflict"),
    (confirmations.BadConfirmation, 422, "invalid_confirmation"),
    (BadInboundMessage, 422, "invalid_confirmation"),
    (csv_statement.StatementError, 422, "invalid_statement"),
    (statement_entries.StatementError, 422, "invalid_statement"),
    (planning.BadPeriod, 422, "invalid_period"),
    (NoRulesForYear, 422, "no_rules_for_year"),
    (approval.MissingReason, 422, "reason_required"),
    (recon_exceptions.ExceptionNotFound, 404, "not_found"),
    (recon_exceptions.AlreadyResolved, 409, "already_resolved"),
    (recon_exceptions.BadResolution, 422, "invalid_resolution"),
    (recon_exceptions.UnknownAge, 422, "invalid_age"),
    (BadReturn, 422, "invalid_return"),
    (reports.UnknownReport, 404, "unknown_report"),
    (postings.LedgerError, 422, "ledger_rule"),
    (postings.UnbalancedPosting, 422, "ledger_rule"),
    (cancellation.TransferNotFound, 404, "unknown_reference"),
    (dead_letters.DeadLetterNotFound, 404, "not_found"),
    (cancellation.CancelRefused, 409, "cancel_refused"),
    (cancellation.CancelReasonMissing, 422, "reason_required"),
    (cancellation.PartnerUnavailable, 503, "partner_unavailable"),
]


@pytest.mark.parametrize(("error", "status", "code"), API_ANSWERS,
                         ids=[e.__qualname__ for e, _, _ in API_ANSWERS])
def test_api_status_and_code(error: type[categories.DomainError], status: int, code: str) -> None:
    exc = error.__new__(error)
    assert status_of(exc) == status
    assert code_of(exc) == code


@pytest.mark.parametrize("error", [e for e, _, _ in API_ANSWERS],
                         ids=[e.__qualname__ for e, _, _ in API_ANSWERS])
def test_cli_exit_code_is_refused_for_every_refusal(error: type[categories.DomainError]) -> None:
    assert exit_code_of(error.__new__(error)) == EXIT_REFUSED


def test_unknown_references_keep_their_code() -> None:
    exc = inbound.UnknownReferences.__new__(inbound.UnknownReferences)
    assert (status_of(exc), code_of(exc)) == (404, "unknown_reference")


def test_every_category_has_a_status_and_an_exit_code() -> None:
    assert set(STATUS_BY_CATEGORY) == set(CATEGORIES)
    assert set(EXIT_BY_CATEGORY) == set(CATEGORIES)


def test_every_error_with_an_api_code_is_a_categorised_refusal() -> None:
    uncategorised = [e.__qualname__ for e in CODE_BY_ERROR
                     if not issubclass(e, categories.DomainError)]
    assert uncategorised == []
