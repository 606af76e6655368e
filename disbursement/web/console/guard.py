"""Who is signed in, and what they may do. The session cookie holds only the
username; the officer's roles and whether they are still active are read
from the database on every request, so a deactivated officer is out at once."""
from __future__ import annotations

from functools import wraps

from flask import abort, current_app, g, redirect, render_template, request, session, url_for

from disbursement.domain.states import Role
from disbursement.services.officers import users
from disbursement.web.console.blueprint import bp, csrf

# Roles that may read national IDs, phones and accounts in clear.
PERSONAL_DATA_ROLES = frozenset({Role.AUDITOR, Role.ADMIN})


def services():
    return current_app.extensions["disburse"]


@bp.before_request
def before_console_request():
    if not current_app.config.get("SECRET_KEY"):
        return render_template("console/error.html", status=503,
                               message="the console is disabled: DISBURSE_SESSION_SECRET is "
                                       "not set"), 503
    if request.method not in ("GET", "HEAD", "OPTIONS"):
        csrf.protect()
    g.officer = None
    username = session.get("username")
    if username:
        with services().uow() as db:
            try:
                g.officer = users.actor_by_name(db, username)
            except users.AuthenticationFailed:
                session.clear()
    return None


def may_see_personal_data(actor: users.Actor | None) -> bool:
    return bool(actor and actor.roles & PERSONAL_DATA_ROLES)


def signed_in(*roles: Role):
    """The view needs a signed-in officer, holding one of `roles` if given
    (admins hold every role)."""
    def decorator(view):
        @wraps(view)
        def wrapper(*args, **kwargs):
            if g.officer is None:
                return redirect(url_for("officer.login", next=request.full_path.rstrip("?")))
            if roles:
                g.officer.require(*roles)
            return view(*args, **kwargs)
        return wrapper
    return decorator


def has_role(*roles: Role) -> bool:
    actor = g.get("officer")
    return bool(actor and (actor.roles & set(roles) or Role.ADMIN in actor.roles))


@bp.app_context_processor
def _console_context():
    return {"officer": g.get("officer"), "has_role": has_role, "Role": Role}


def safe_next(target: str | None) -> str:
    """Only paths inside the console: never an open redirect."""
    if target and target.startswith("/console") and not target.startswith("//"):
        return target
    return url_for("officer.home")


def not_found(what: str):
    abort(404, description=f"{what} not found")
