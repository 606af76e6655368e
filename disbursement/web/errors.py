"""One JSON error shape for the whole API: {"error": {"code", "message", "details"}}.
Domain errors are mapped to status codes here, nowhere else."""
from __future__ import annotations

from flask import Flask, jsonify
from werkzeug.exceptions import HTTPException

from connectors.base import BadInboundMessage
from connectors.signing import SignatureError
from disbursement.bootstrap import UnknownPartner
from disbursement.domain import statements as statement_entries
from disbursement.domain.entitlement import NoRulesForYear
from disbursement.services.batches.approval import (
    BatchNotFound,
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
from disbursement.services.dispatch.dead_letters import DeadLetterNotFound
from disbursement.services.ledger import postings as ledger_rules
from disbursement.services.ledger.reports import UnknownReport
from disbursement.services.officers.users import AuthenticationFailed, Forbidden
from disbursement.services.tracking.confirmations import BadConfirmation
from disbursement.services.tracking.inbound import NotJson, UnknownReferences
from reconciliation import exceptions as recon_exceptions
from reconciliation.readers.csv_statement import StatementError
from reconciliation.returns import BadReturn


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, details=None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.details = status, code, message, details


STATUS_BY_ERROR: list[tuple[type[Exception], int, str]] = [
    (SignatureError, 401, "bad_signature"),
    (NotJson, 400, "invalid_json"),
    (AuthenticationFailed, 401, "unauthenticated"),
    (SelfApprovalRefused, 403, "self_approval"),
    (Forbidden, 403, "forbidden"),
    (UnknownReferences, 404, "unknown_reference"),
    (BatchNotFound, 404, "not_found"),
    (UnknownPartner, 404, "unknown_partner"),
    (UnknownProgram, 404, "unknown_program"),
    (BatchStateConflict, 409, "state_conflict"),
    (BadConfirmation, 422, "invalid_confirmation"),
    (BadInboundMessage, 422, "invalid_confirmation"),
    (StatementError, 422, "invalid_statement"),
    (BadPeriod, 422, "invalid_period"),
    (NoRulesForYear, 422, "no_rules_for_year"),
    (MissingReason, 422, "reason_required"),
    # reconciliation, ledger, exceptions (issue 4)
    (statement_entries.StatementError, 422, "invalid_statement"),
    (recon_exceptions.ExceptionNotFound, 404, "not_found"),
    (recon_exceptions.AlreadyResolved, 409, "already_resolved"),
    (recon_exceptions.BadResolution, 422, "invalid_resolution"),
    (recon_exceptions.UnknownAge, 422, "invalid_age"),
    (BadReturn, 422, "invalid_return"),
    (UnknownReport, 404, "unknown_report"),
    (ledger_rules.LedgerError, 422, "ledger_rule"),
    # partners (issue 3)
    (TransferNotFound, 404, "unknown_reference"),
    (DeadLetterNotFound, 404, "not_found"),
    (CancelRefused, 409, "cancel_refused"),
    (CancelReasonMissing, 422, "reason_required"),
    (PartnerUnavailable, 503, "partner_unavailable"),
]


def body(status: int, code: str, message: str, details=None):
    response = jsonify({"error": {"code": code, "message": message, "details": details}})
    response.status_code = status
    return response


def register(app: Flask) -> None:
    @app.errorhandler(ApiError)
    def _api_error(exc: ApiError):
        return body(exc.status, exc.code, exc.message, exc.details)

    for error_type, status, code in STATUS_BY_ERROR:
        def handler(exc, status=status, code=code):
            return body(status, code, str(exc), getattr(exc, "details", None)
                        or ({"references": exc.references} if isinstance(exc, UnknownReferences) else None))
        app.register_error_handler(error_type, handler)

    @app.errorhandler(HTTPException)
    def _http(exc: HTTPException):
        message = exc.description or exc.name
        if exc.code == 413:
            message = f"upload larger than {app.config['MAX_CONTENT_LENGTH']} bytes"
        return body(exc.code or 500, exc.name.lower().replace(" ", "_"), message)
