from __future__ import annotations

from dataclasses import asdict

from flask import Blueprint, g, jsonify, request

from disbursement.domain.states import Role
from disbursement.services.cycles import planning, queries
from disbursement.web.auth import require, services
from disbursement.web.errors import ApiError

bp = Blueprint("cycles", __name__, url_prefix="/api/v1/cycles")


@bp.post("")
@require(Role.MAKER)
def plan():
    data = request.get_json(silent=True) or {}
    program, period = data.get("program"), data.get("period")
    if not isinstance(program, str) or not isinstance(period, str):
        raise ApiError(422, "invalid_body", 'body must be {"program": "asd", "period": "YYYY-MM"}')
    result = planning.plan_cycle(services(), program, period, g.actor)
    return jsonify(asdict(result)), 201


@bp.get("/<program>/<period>")
@require()
def show(program: str, period: str):
    with services().uow() as session:
        cycle = queries.cycle_overview(session, program, period)
    if cycle is None:
        raise ApiError(404, "not_found", f"cycle {program} {period} has not been planned")
    return jsonify({"id": cycle.id, "program": program, "period": period,
                    "transfers_by_status": cycle.transfers_by_status,
                    "batches": cycle.batches})
