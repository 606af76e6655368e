"""The monitors' dashboard data: one JSON snapshot the console draws its charts from."""
from __future__ import annotations

from flask import Blueprint, jsonify

from disbursement.domain.states import Role
from disbursement.services.monitoring.dashboard import snapshot_for
from disbursement.web.auth import require, services

bp = Blueprint("dashboard", __name__, url_prefix="/api/v1/dashboard")


@bp.get("")
@require(Role.MONITOR, Role.AUDITOR, Role.MAKER, Role.APPROVER, Role.ADMIN)
def show():
    return jsonify(snapshot_for(services()))
