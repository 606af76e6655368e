"""Partner-facing endpoints. The signature is checked over the raw body before
anything is parsed."""
from __future__ import annotations

import json

from flask import Blueprint, g, jsonify, request

from connectors import signing
from disbursement.domain.states import Role
from disbursement.services.tracking import confirmations
from disbursement.services.tracking.nonces import DatabaseNonces
from disbursement.web.auth import require, services
from disbursement.web.errors import ApiError
from reconciliation import reconcile

bp = Blueprint("partners", __name__, url_prefix="/api/v1/partners")


@bp.post("/<code>/confirmations")
def confirm(code: str):
    svc = services()
    partner = svc.partner(code)
    raw = request.get_data(cache=False)
    payload = _verified_payload(svc, partner, raw)
    items = confirmations.parse(payload)
    report = confirmations.apply(svc, partner.code, items)
    return jsonify(report.as_dict()), 200


def _verified_payload(svc, partner, raw: bytes):
    """Signature and nonce first, then the body: the REST protocol's own JSON,
    or, for another push protocol, its connector's updates in that shape."""
    target = signing.request_target(request.path, request.query_string)
    with svc.uow() as session:
        nonces = DatabaseNonces(session, partner.code)
        if partner.protocol == "rest":
            signing.verify(svc.partner_keys(partner.code), request.headers, raw,
                           method=request.method, target=target, nonces=nonces)
            updates = None
        else:
            connector = svc.connector(partner.code)
            try:
                updates = connector.receive_callback(request.method, target, request.headers,
                                                     raw, nonces)
            finally:
                getattr(connector, "close", lambda: None)()
        session.commit()
    if updates is not None:
        return [{**u.as_confirmation(), "occurred_at":
                 u.occurred_at.isoformat() if u.occurred_at else None} for u in updates]
    try:
        return json.loads(raw)
    except ValueError:
        raise ApiError(400, "invalid_json", "body is not JSON") from None


@bp.post("/<code>/statements")
@require(Role.MAKER, Role.APPROVER, Role.AUDITOR)
def upload_statement(code: str):
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        raise ApiError(422, "file_required", "send the statement as multipart field 'file'")
    report = reconcile.reconcile(services(), code, upload.stream, upload.filename, g.actor,
                                 request.form.get("format") or "csv")
    return jsonify(report.as_dict()), 200 if report.duplicate_of else 201
