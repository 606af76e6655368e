"""The console's blueprint, its CSRF protection and its error pages: what the
view modules attach their routes to. Kept apart from the package's
`__init__`, which imports every view module, so that no view imports back the
module that imports it.

Domain errors become an HTML page with the same status code the API would give."""
from __future__ import annotations

from flask import Blueprint, render_template
from flask_wtf.csrf import CSRFError, CSRFProtect
from werkzeug.exceptions import HTTPException

from disbursement.domain.errors import DomainError
from disbursement.web.errors import status_of

bp = Blueprint("officer", __name__, url_prefix="/console")
csrf = CSRFProtect()


@bp.errorhandler(DomainError)
def _refusal_page(exc: DomainError) -> tuple[str, int]:
    status = status_of(exc)
    return render_template("console/error.html", status=status, message=str(exc)), status


@bp.errorhandler(CSRFError)
def _csrf_error(exc: CSRFError) -> tuple[str, int]:
    return render_template("console/error.html", status=400,
                           message=f"the form could not be trusted ({exc.description}): "
                                   "reload the page and try again"), 400


@bp.errorhandler(HTTPException)
def _http_error(exc: HTTPException) -> tuple[str, int]:
    status = exc.code or 500
    return render_template("console/error.html", status=status,
                           message=exc.description or exc.name), status
