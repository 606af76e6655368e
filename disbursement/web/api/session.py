"""API sign-in: a username and password exchanged for a bearer token."""
from __future__ import annotations

from flask import Blueprint, jsonify, request

from disbursement.services.officers import users
from disbursement.web.auth import services
from disbursement.web.errors import ApiError

bp = Blueprint("session", __name__, url_prefix="/api/v1/auth")


@bp.post("/tokens")
def create_token():
    data = request.get_json(silent=True) or {}
    if not isinstance(data.get("username"), str) or not isinstance(data.get("password"), str):
        raise ApiError(422, "invalid_credentials_body",
                       "body must be {\"username\": ..., \"password\": ...}")
    svc = services()
    actor, token = users.sign_in_for_token(svc.uow, data["username"], data["password"],
                                           svc.settings.token_ttl_seconds)
    return jsonify({"token": token, "username": actor.username,
                    "roles": sorted(r.value for r in actor.roles),
                    "expires_in": svc.settings.token_ttl_seconds}), 201
