from __future__ import annotations

from collections.abc import Sequence

from flask import Blueprint, g, jsonify, request

from disbursement.domain.states import Role
from disbursement.services.batches import approval as batches
from disbursement.services.batches import queries
from disbursement.web.auth import require, services
from disbursement.web.errors import ApiError

bp = Blueprint("batches", __name__, url_prefix="/api/v1/batches")
PAGE_SIZE = 100


def _view(batch: queries.Batch,
          decisions: Sequence[queries.BatchDecision] | None = None) -> dict:
    out = {c: getattr(batch, c) for c in (
        "id", "cycle_id", "partner_code", "seq", "status", "transfer_count", "total_centimes",
        "currency", "approvals_required", "created_by", "submitted_by", "released_by")}
    if decisions is not None:
        out["decisions"] = [{"username": d.username, "decision": d.decision, "reason": d.reason,
                             "at": d.at.isoformat()} for d in decisions]
    return out


@bp.get("")
@require()
def list_batches():
    after = request.args.get("after", 0, type=int)
    with services().uow() as session:
        rows = queries.batch_page(session, after, PAGE_SIZE, request.args.get("status"),
                                  request.args.get("program"), request.args.get("period"))
    return jsonify({"batches": [_view(b) for b in rows],
                    "next_after": rows[-1].id if len(rows) == PAGE_SIZE else None})


@bp.get("/<int:batch_id>")
@require()
def show(batch_id: int):
    with services().uow() as session:
        found = queries.batch_with_decisions(session, batch_id)
    if found is None:
        raise ApiError(404, "not_found", f"batch {batch_id} not found")
    return jsonify(_view(*found))


@bp.post("/<int:batch_id>/submit")
@require(Role.MAKER)
def submit(batch_id: int):
    return jsonify(_view(batches.submit(services(), batch_id, g.actor)))


@bp.post("/<int:batch_id>/approve")
@require(Role.APPROVER)
def approve(batch_id: int):
    return jsonify(_view(batches.approve(services(), batch_id, g.actor)))


@bp.post("/<int:batch_id>/reject")
@require(Role.APPROVER)
def reject(batch_id: int):
    reason = (request.get_json(silent=True) or {}).get("reason", "")
    return jsonify(_view(batches.reject(services(), batch_id, g.actor, reason)))


@bp.post("/<int:batch_id>/release")
@require(Role.MAKER, Role.APPROVER)
def release(batch_id: int):
    outbox = batches.release(services(), batch_id, g.actor)
    return jsonify({"batch_id": batch_id, "chunks_enqueued": len(outbox),
                    "already_released": not outbox}), 202
