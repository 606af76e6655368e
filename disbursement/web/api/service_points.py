"""Service points: a partner's registry upload and each point's daily load."""
from __future__ import annotations

from dataclasses import asdict
from datetime import date

from flask import Blueprint, g, jsonify, request

from disbursement.domain.states import Role
from disbursement.services.cycles import service_points as sp
from disbursement.web.auth import require, services
from disbursement.web.errors import ApiError

bp = Blueprint("service_points", __name__, url_prefix="/api/v1/service-points")


@bp.post("")
@require(Role.MAKER)
def upload():
    upload_file = request.files.get("file")
    partner = request.values.get("partner", "").strip()
    if not partner:
        raise ApiError(422, "partner_required", "name the partner: form field 'partner'")
    if upload_file is None or not upload_file.filename:
        raise ApiError(422, "file_required", "send the service-point CSV as multipart field 'file'")
    try:
        result = sp.import_file(services(), partner, upload_file.stream, g.actor)
    except sp.ServicePointFileError as exc:
        raise ApiError(422, "invalid_service_points", str(exc), exc.details) from None
    except sp.NotACashPartner as exc:
        raise ApiError(422, "not_a_cash_partner", str(exc)) from None
    body = asdict(result)
    body.pop("codes")
    return jsonify(body), 201 if result.created else 200


@bp.get("/<code>/load")
@require()
def load(code: str):
    raw_day = request.args.get("date", "")
    try:
        day = date.fromisoformat(raw_day)
    except ValueError:
        raise ApiError(422, "invalid_date", f"date {raw_day!r} is not YYYY-MM-DD") from None
    with services().uow() as session:
        try:
            view = sp.point_load(session, code, day, request.args.get("partner") or None)
        except sp.ServicePointNotFound as exc:
            raise ApiError(404, "not_found", str(exc)) from None
    return jsonify(view)
