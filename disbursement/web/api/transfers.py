from __future__ import annotations

from flask import Blueprint, jsonify

from disbursement.services.tracking.queries import transfer_view
from disbursement.web.auth import require, services
from disbursement.web.errors import ApiError

bp = Blueprint("transfers", __name__, url_prefix="/api/v1/transfers")


@bp.get("/<reference>")
@require()
def show(reference: str):
    with services().uow() as session:
        view = transfer_view(session, reference)
    if view is None:
        raise ApiError(404, "unknown_reference", f"no transfer with reference {reference}")
    return jsonify(view)
