"""The console's blueprint, its CSRF protection and its error pages: what the
view modules attach their routes to. Kept apart from the package's
`__init__`, which imports every view module, so that no view imports back the
module that imports it.

Domain errors become an HTML page with the same status code the API would give,
and so does a database or Redis that does not answer (503, Retry-After)."""
from __future__ import annotations

from flask import Blueprint, render_template
from flask_wtf.csrf import CSRFError, CSRFProtect
from werkzeug.exceptions import HTTPException

from disbursement.domain.errors import DomainError
from disbursement.web.errors import (
    DEPENDENCY_ERRORS,
    RETRY_AFTER_SECONDS,
    log_unavailable,
    status_of,
    unavailable_dependency,
)

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


def _unavailable_page(exc: Exception) -> tuple[str, int, dict[str, str]]:
    """The API's 503 (`errors.unavailable_dependency`) as a page."""
    dependency = unavailable_dependency(exc)
    if dependency is None:
        raise exc
    log_unavailable(dependency, exc)
    page = render_template("console/error.html", status=503,
                           message=f"the {dependency} does not answer: try again in a "
                                   "few seconds")
    return page, 503, {"Retry-After": str(RETRY_AFTER_SECONDS)}


for _error in DEPENDENCY_ERRORS:
    bp.register_error_handler(_error, _unavailable_page)
