"""Bearer-token authentication and role checks for the API."""
from __future__ import annotations

from functools import wraps

from flask import current_app, g, request

from disbursement.domain.states import Role
from disbursement.services.officers import users
from disbursement.web.errors import ApiError


def services():
    return current_app.extensions["disburse"]


def require(*roles: Role):
    def decorator(view):
        @wraps(view)
        def wrapper(*args, **kwargs):
            header = request.headers.get("Authorization", "")
            if not header.startswith("Bearer "):
                raise ApiError(401, "unauthenticated",
                               "an API token is required: Authorization: Bearer <token>")
            with services().uow() as session:
                g.actor = users.actor_for_token(session, header[len("Bearer "):].strip())
            if roles:
                g.actor.require(*roles)
            return view(*args, **kwargs)
        return wrapper
    return decorator
