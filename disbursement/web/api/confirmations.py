"""Partner-facing endpoints. Signed messages take the inbound path: the
signature is checked over the raw body before anything is parsed."""
from __future__ import annotations

from flask import Blueprint, g, jsonify, request

from disbursement.domain.states import Role
from disbursement.services.tracking import confirmations, inbound
from disbursement.web.api.partner_messages import signed_request
from disbursement.web.auth import require, services
from disbursement.web.errors import ApiError
from reconciliation import reconcile

bp = Blueprint("partners", __name__, url_prefix="/api/v1/partners")


@bp.post("/<code>/confirmations")
def confirm(code: str):
    svc = services()
    payload = inbound.verified_payload(svc, code, signed_request(), through_connector=True)
    report = confirmations.apply(svc, code, confirmations.parse(payload))
    return jsonify(report.as_dict()), 200


@bp.post("/<code>/statements")
@require(Role.MAKER, Role.APPROVER, Role.AUDITOR)
def upload_statement(code: str):
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        raise ApiError(422, "file_required", "send the statement as multipart field 'file'")
    report = reconcile.reconcile(services(), code, upload.stream, upload.filename, g.actor,
                                 request.form.get("format") or "csv")
    return jsonify(report.as_dict()), 200 if report.duplicate_of else 201
