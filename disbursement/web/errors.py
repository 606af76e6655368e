"""One JSON error shape for the whole API: {"error": {"code", "message", "details"}}.

A refusal's HTTP status comes from its category (`disbursement.domain.errors`),
here and nowhere else; the console renders the same status as an HTML page.
The `code` of the body is the API's contract with its clients: a few errors
keep a code of their own, the others take their category's."""
from __future__ import annotations

import logging
from typing import Any

from flask import Flask, Response, jsonify, request
from redis import exceptions as redis_errors
from sqlalchemy import exc as database_errors
from werkzeug.exceptions import HTTPException

from connectors.base import BadInboundMessage
from connectors.signing import SignatureError
from disbursement.bootstrap import UnknownPartner
from disbursement.domain import errors as categories
from disbursement.domain import statements as statement_entries
from disbursement.domain.entitlement import NoRulesForYear
from disbursement.services.batches.approval import (
    BatchStateConflict,
    MissingReason,
    SelfApprovalRefused,
)
from disbursement.services.cycles.planning import BadPeriod, UnknownProgram
from disbursement.services.dispatch.cancellation import (
    CancelReasonMissing,
    CancelRefused,
    PartnerUnavailable,
    TransferNotFound,
)
from disbursement.services.ledger import postings as ledger_rules
from disbursement.services.ledger.reports import UnknownReport
from disbursement.services.tracking.confirmations import BadConfirmation
from disbursement.services.tracking.inbound import NotJson, UnknownReferences
from disbursement.services.tracking.inbound_checks import (
    ForbiddenCharacter,
    NestedTooDeeply,
    UnsupportedMediaType,
)
from reconciliation import exceptions as recon_exceptions
from reconciliation.readers.csv_statement import StatementError
from reconciliation.returns import BadReturn

log = logging.getLogger(__name__)

STATUS_BY_CATEGORY: dict[type[categories.DomainError], int] = {
    categories.Unauthenticated: 401,
    categories.Refused: 403,
    categories.NotFound: 404,
    categories.Conflict: 409,
    categories.BadInput: 422,
    categories.Unavailable: 503,
}

# The few errors whose status is not their category's: a signed body that is
# not JSON, or nested past any protocol's shape, is not even in the protocol's
# form (400, where bad content is 422); a body of another media type is 415.
STATUS_BY_ERROR: dict[type[Exception], int] = {NotJson: 400, NestedTooDeeply: 400,
                                               UnsupportedMediaType: 415}

CODE_BY_CATEGORY: dict[type[categories.DomainError], str] = {
    categories.Unauthenticated: "unauthenticated",
    categories.Refused: "forbidden",
    categories.NotFound: "not_found",
    categories.Conflict: "conflict",
    categories.BadInput: "invalid_input",
    categories.Unavailable: "unavailable",
}

# Errors whose body code says more than their category's (the most specific
# class in an error's ancestry wins).
CODE_BY_ERROR: dict[type[Exception], str] = {
    SignatureError: "bad_signature",
    NotJson: "invalid_json",
    NestedTooDeeply: "nested_too_deeply",
    UnsupportedMediaType: "unsupported_media_type",
    ForbiddenCharacter: "forbidden_character",
    SelfApprovalRefused: "self_approval",
    UnknownReferences: "unknown_reference",
    UnknownPartner: "unknown_partner",
    UnknownProgram: "unknown_program",
    BatchStateConflict: "state_conflict",
    BadConfirmation: "invalid_confirmation",
    BadInboundMessage: "invalid_confirmation",
    StatementError: "invalid_statement",
    statement_entries.StatementError: "invalid_statement",
    BadPeriod: "invalid_period",
    NoRulesForYear: "no_rules_for_year",
    MissingReason: "reason_required",
    recon_exceptions.AlreadyResolved: "already_resolved",
    recon_exceptions.BadResolution: "invalid_resolution",
    recon_exceptions.UnknownAge: "invalid_age",
    BadReturn: "invalid_return",
    UnknownReport: "unknown_report",
    ledger_rules.LedgerError: "ledger_rule",
    TransferNotFound: "unknown_reference",
    CancelRefused: "cancel_refused",
    CancelReasonMissing: "reason_required",
    PartnerUnavailable: "partner_unavailable",
}


# What a client is told to wait before trying again when the database or
# Redis does not answer: a restart or a failover takes seconds.
RETRY_AFTER_SECONDS = 5

# Third-party errors that may mean a dependency cannot be reached right now;
# `unavailable_dependency` says which of them do. Translated where they leave
# the app into 503 + Retry-After, never a 500 (issue 10).
DEPENDENCY_ERRORS: tuple[type[Exception], ...] = (
    database_errors.DBAPIError, database_errors.TimeoutError,
    redis_errors.ConnectionError, redis_errors.TimeoutError)


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, details: Any = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.details = status, code, message, details


def _first_in_ancestry(exc: Exception, table: dict) -> Any:
    return next(table[cls] for cls in type(exc).__mro__ if cls in table)


def status_of(exc: categories.DomainError) -> int:
    """The HTTP status of a refusal, from its category."""
    return int(_first_in_ancestry(exc, STATUS_BY_ERROR | STATUS_BY_CATEGORY))


def code_of(exc: categories.DomainError) -> str:
    """The `code` of the error body: the error's own, else its category's."""
    return str(_first_in_ancestry(exc, CODE_BY_ERROR | CODE_BY_CATEGORY))


def _details(exc: categories.DomainError) -> Any:
    if isinstance(exc, UnknownReferences):
        return getattr(exc, "details", None) or {"references": exc.references}
    return getattr(exc, "details", None)


def unavailable_dependency(exc: Exception) -> str | None:
    """"database" or "redis" when `exc` says that dependency does not answer
    (refused or lost connection, server shutting down, pool or socket
    timeout); None for any other error, which is a bug and stays a 500."""
    if isinstance(exc, database_errors.OperationalError | database_errors.TimeoutError):
        return "database"
    if isinstance(exc, database_errors.DBAPIError) and exc.connection_invalidated:
        return "database"
    if isinstance(exc, redis_errors.ConnectionError | redis_errors.TimeoutError):
        return "redis"
    return None


def log_unavailable(dependency: str, exc: Exception) -> None:
    """The error's class only: a database error's text may quote the
    statement's parameters, which may be personal data."""
    cause = getattr(exc, "orig", None) or exc
    log.warning("%s unavailable on %s %s: %s", dependency, request.method,
                request.endpoint or "unmatched", type(cause).__name__)


def body(status: int, code: str, message: str, details: Any = None) -> Response:
    response = jsonify({"error": {"code": code, "message": message, "details": details}})
    response.status_code = status
    return response


def register(app: Flask) -> None:
    app.register_error_handler(ApiError, _api_error)
    app.register_error_handler(categories.DomainError, _domain_error)
    for error in DEPENDENCY_ERRORS:
        app.register_error_handler(error, _dependency_error)

    @app.errorhandler(HTTPException)
    def _http(exc: HTTPException) -> Response:
        message = exc.description or exc.name
        if exc.code == 413:
            message = f"upload larger than {app.config['MAX_CONTENT_LENGTH']} bytes"
        return body(exc.code or 500, exc.name.lower().replace(" ", "_"), message)


def _api_error(exc: ApiError) -> Response:
    return body(exc.status, exc.code, exc.message, exc.details)


def _domain_error(exc: categories.DomainError) -> Response:
    return body(status_of(exc), code_of(exc), str(exc), _details(exc))


def _dependency_error(exc: Exception) -> Response:
    dependency = unavailable_dependency(exc)
    if dependency is None:
        raise exc
    log_unavailable(dependency, exc)
    response = body(503, "unavailable", f"the {dependency} does not answer: try again later",
                    {"dependency": dependency, "retry_after_seconds": RETRY_AFTER_SECONDS})
    response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response
