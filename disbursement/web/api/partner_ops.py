"""Partner operations for officers (issue 3): cancel a transfer, dead letters,
circuit breakers."""
from __future__ import annotations

from flask import Blueprint, g, jsonify, request

from disbursement.domain.states import Role
from disbursement.services.dispatch import cancellation, dead_letters
from disbursement.services.dispatch.partner_health import breaker_state
from disbursement.web.auth import require, services

bp = Blueprint("partner_ops", __name__, url_prefix="/api/v1")


@bp.post("/transfers/<reference>/cancel")
@require(Role.MAKER, Role.APPROVER)
def cancel_transfer(reference: str):
    reason = (request.get_json(silent=True) or {}).get("reason", "")
    result = cancellation.cancel_transfer(services(), reference, str(reason), g.actor)
    return jsonify(result.__dict__)


@bp.get("/dead-letters")
@require()
def list_dead_letters():
    with services().uow() as session:
        return jsonify({"dead_letters": dead_letters.list_dead(session)})


@bp.post("/dead-letters/<int:outbox_id>/retry")
@require(Role.MAKER, Role.APPROVER, Role.ADMIN)
def retry_dead_letter(outbox_id: int):
    dead_letters.retry(services(), outbox_id, g.actor)
    return jsonify({"id": outbox_id, "status": "pending"}), 202


@bp.get("/partners/breakers")
@require()
def breakers():
    svc = services()
    with svc.uow() as session:
        views = breaker_state(session)
    return jsonify({"breakers": [
        views[code].as_dict() if code in views else
        {"partner": code, "state": "closed", "consecutive_failures": 0, "opened_at": None}
        for code in sorted(svc.partners)]})
