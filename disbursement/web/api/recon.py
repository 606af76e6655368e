"""Reconciliation API (issue 4): the exceptions queue, reports, the ledger
check, and the partners' signed returns of funds."""
from __future__ import annotations

import io

from flask import Blueprint, g, jsonify, request, send_file

from disbursement.domain.states import Role
from disbursement.services.ledger import postings as ledger
from disbursement.services.ledger import reports
from disbursement.services.tracking import inbound
from disbursement.web.api.partner_messages import signed_request
from disbursement.web.auth import require, services
from disbursement.web.errors import ApiError
from reconciliation import exceptions, returns

bp = Blueprint("recon", __name__, url_prefix="/api/v1")
partner_bp = Blueprint("partner_returns", __name__, url_prefix="/api/v1/partners")
READERS = (Role.MAKER, Role.APPROVER, Role.AUDITOR)
MAX_PAGE = 500


@bp.get("/exceptions")
@require(*READERS)
def list_exceptions():
    args = request.args
    limit = min(args.get("limit", exceptions.PAGE_SIZE, type=int), MAX_PAGE)
    with services().uow() as session:
        page, next_after = exceptions.list_exceptions(
            session, type=args.get("type") or None, partner=args.get("partner") or None,
            status=args.get("status") or None, age=args.get("age") or None,
            after=args.get("after", 0, type=int), limit=limit)
    return jsonify({"exceptions": [e.as_dict() for e in page], "next_after": next_after})


@bp.get("/exceptions/counts")
@require(*READERS)
def exception_counts():
    with services().uow() as session:
        return jsonify(exceptions.counts_by_type(session, partner=request.args.get("partner"),
                                                 status=request.args.get("status")))


@bp.get("/exceptions/<int:exception_id>")
@require(*READERS)
def show_exception(exception_id: int):
    with services().uow() as session:
        return jsonify(exceptions.get_exception(session, exception_id).as_dict())


@bp.post("/exceptions/<int:exception_id>/resolve")
@require(Role.APPROVER)
def resolve_exception(exception_id: int):
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise ApiError(422, "invalid_resolution", "body must be a JSON object with kind and reason")
    amount = body.get("amount_centimes")
    if amount is not None and (not isinstance(amount, int) or isinstance(amount, bool)):
        raise ApiError(422, "invalid_resolution",
                       "amount_centimes must be a whole number of centimes")
    view = exceptions.resolve(services(), exception_id, g.actor, str(body.get("kind", "")),
                              str(body.get("reason", "")), amount_centimes=amount,
                              program=body.get("program"), period=body.get("period"))
    return jsonify(view.as_dict())


@bp.get("/reports/<kind>")
@require(*READERS)
def report(kind: str):
    fmt = request.args.get("format", "json")
    if fmt not in reports.FORMATS:
        raise ApiError(422, "invalid_format", f"format must be one of {', '.join(reports.FORMATS)}")
    with services().uow() as session:
        where = reports.scope(session, request.args.get("cycle", type=int),
                              request.args.get("program"), request.args.get("period"))
        rows = reports.build(session, kind, where)
    if fmt == "json":
        return jsonify(reports.as_json(kind, where, rows))
    content, mimetype, name = reports.as_file(kind, where, rows, fmt)
    return send_file(io.BytesIO(content), mimetype=mimetype, as_attachment=True,
                     download_name=name)


@bp.get("/ledger/check")
@require(*READERS, Role.MONITOR)
def ledger_check():
    with services().uow() as session:
        result = ledger.check(session, request.args.get("program"), request.args.get("period"))
    return jsonify(result.as_dict())


@partner_bp.post("/<code>/returns")
def partner_returns(code: str):
    """The partner gives funds back; signed like confirmations, checked before parsing."""
    svc = services()
    payload = inbound.verified_payload(svc, code, signed_request())
    result = returns.apply_partner_returns(svc, code, returns.parse(payload))
    return jsonify(result.as_dict()), 200
