"""The officers' console: server-rendered pages on a signed session cookie,
CSRF tokens on every form, roles checked on every view.

Views load input, call one service and render; they never commit. The
blueprint and its error pages are in `blueprint.py`."""
from __future__ import annotations

from datetime import timedelta

from flask import Flask

from disbursement.domain.money import format_units

# Importing the view modules attaches their routes to the blueprint.
from disbursement.web.console import (  # noqa: F401
    guard,
    views_batches,
    views_cycles,
    views_dashboard,
    views_exceptions,
    views_reports,
    views_session,
    views_transfers,
)
from disbursement.web.console.blueprint import bp, csrf

SESSION_HOURS = 8


def init_app(app: Flask) -> None:
    settings = app.extensions["disburse"].settings
    app.config.update(
        SECRET_KEY=settings.session_secret or None,
        SESSION_COOKIE_NAME="disburse_console",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SECURE=settings.cookie_secure,
        SESSION_COOKIE_SAMESITE="Lax",
        PERMANENT_SESSION_LIFETIME=timedelta(hours=SESSION_HOURS),
        # Only the console's forms carry CSRF tokens: the API authenticates
        # with bearer tokens and partners with signatures, neither of which a
        # browser sends on its own. The console protects itself in
        # `guard.before_console_request`.
        WTF_CSRF_CHECK_DEFAULT=False,
        WTF_CSRF_TIME_LIMIT=SESSION_HOURS * 3600,
    )
    csrf.init_app(app)
    app.register_blueprint(bp)
    app.jinja_env.filters["mad"] = format_units
