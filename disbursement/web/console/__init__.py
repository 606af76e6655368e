"""The officers' console: server-rendered pages on a signed session cookie,
CSRF tokens on every form, roles checked on every view.

Views load input, call one service and render; they never commit. Domain
errors become an HTML page with the same status code the API would give."""
from __future__ import annotations

from datetime import timedelta

from flask import Blueprint, Flask, render_template
from flask_wtf.csrf import CSRFError, CSRFProtect
from werkzeug.exceptions import HTTPException

from disbursement.domain.errors import DomainError
from disbursement.domain.money import format_units
from disbursement.web.errors import status_of

SESSION_HOURS = 8
bp = Blueprint("officer", __name__, url_prefix="/console")
csrf = CSRFProtect()


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
    from disbursement.web.console import (  # noqa: F401  # noqa: F401
        guard,
        views_batches,
        views_cycles,
        views_dashboard,
        views_exceptions,
        views_reports,
        views_session,
        views_transfers,
    )

    app.register_blueprint(bp)
    app.jinja_env.filters["mad"] = format_units


@bp.errorhandler(DomainError)
def _refusal_page(exc: DomainError):
    status = status_of(exc)
    return render_template("console/error.html", status=status, message=str(exc)), status


@bp.errorhandler(CSRFError)
def _csrf_error(exc: CSRFError):
    return render_template("console/error.html", status=400,
                           message=f"the form could not be trusted ({exc.description}): "
                                   "reload the page and try again"), 400


@bp.errorhandler(HTTPException)
def _http_error(exc: HTTPException):
    status = exc.code or 500
    return render_template("console/error.html", status=status,
                           message=exc.description or exc.name), status
