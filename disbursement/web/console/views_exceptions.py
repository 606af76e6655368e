"""The reconciliation exceptions queue: filters (type, partner, status, age),
keyset pages, and an approver's resolution confirmed with their password or
one-time code. The exceptions service does the reading, the resolving and its
audit row; the views only map the form onto it."""
from __future__ import annotations

from flask import flash, g, redirect, render_template, request, url_for

from disbursement.domain.errors import DomainError
from disbursement.domain.money import parse_units
from disbursement.domain.states import Role
from disbursement.services.officers import sign_in as officers
from disbursement.web.console.blueprint import bp
from disbursement.web.console.guard import has_role, not_found, services, signed_in
from disbursement.web.errors import status_of
from reconciliation import exceptions

READERS = (Role.MAKER, Role.APPROVER, Role.AUDITOR)
FILTERS = ("type", "partner", "status", "age")


class BadFilter(ValueError):
    """Raised when a filter of the exceptions queue names no known value."""


def _filters() -> dict[str, str]:
    """The queue's filters from the query string, each checked against the
    values it may take (a typo is an error, not an empty page)."""
    chosen = {name: request.args.get(name, "").strip() for name in FILTERS}
    allowed = {"type": exceptions.known_types(), "partner": sorted(services().partners),
               "status": exceptions.STATUSES, "age": exceptions.AGES}
    for name, value in chosen.items():
        if value and value not in allowed[name]:
            raise BadFilter(f"unknown {name} {value!r}; one of {', '.join(allowed[name])}")
    return chosen


@bp.get("/exceptions")
@signed_in(*READERS)
def exceptions_queue():
    try:
        chosen = _filters()
    except BadFilter as exc:
        return render_template("console/error.html", status=422, message=str(exc)), 422
    after = request.args.get("after", 0, type=int)
    wanted = {k: v or None for k, v in chosen.items()}
    with services().uow() as db:
        page, next_after = exceptions.list_exceptions(db, after=after, **wanted)
        counts = exceptions.counts_by_type(db, partner=wanted["partner"], status=wanted["status"],
                                           age=wanted["age"])
    kept = {k: v for k, v in chosen.items() if v}
    return render_template(
        "console/exceptions.html", page=page, counts=counts, chosen=chosen, after=after,
        next_url=(url_for("officer.exceptions_queue", after=next_after, **kept)
                  if next_after else None),
        first_url=url_for("officer.exceptions_queue", **kept) if after else None,
        types=exceptions.known_types(), partners=sorted(services().partners),
        statuses=exceptions.STATUSES, ages=exceptions.AGES)


def resolve_refusal(item: exceptions.ExceptionView) -> str | None:
    """Why the signed-in officer may not resolve this exception (None: they may)."""
    if item.status not in exceptions.UNSETTLED:
        return f"the exception is {item.status}: nothing is left to resolve"
    if not has_role(Role.APPROVER):
        return "resolving needs the approver role"
    return None


def _render_exception(exception_id: int, error: str | None = None, status: int = 200):
    svc = services()
    with svc.uow() as db:
        try:
            item = exceptions.get_exception(db, exception_id)
        except exceptions.ExceptionNotFound:
            not_found(f"exception {exception_id}")
    refusal = resolve_refusal(item)
    return render_template("console/exception.html", e=item, error=error, refusal=refusal,
                           kinds=[k.value for k in exceptions.ResolutionKind],
                           totp=not refusal and officers.has_totp(svc, g.officer.username),
                           form=request.form if error else {}), status


@bp.get("/exceptions/<int:exception_id>")
@signed_in(*READERS)
def exception_detail(exception_id: int):
    return _render_exception(exception_id)


def _correction_amount(text: str) -> int | None:
    """The officer's signed correction in MAD ('-12.50'), as centimes."""
    if not text.strip():
        return None
    try:
        return parse_units(text)
    except ValueError as exc:
        raise exceptions.BadResolution(f"amount (MAD): {exc}") from None


@bp.post("/exceptions/<int:exception_id>/resolve")
@signed_in(*READERS)
def exception_resolve(exception_id: int):
    form = request.form
    try:
        # Before the confirmation: a maker's password typed here must not
        # count as a decision, nor a refused one as a failed sign-in.
        g.officer.require(Role.APPROVER)
        reason = form.get("reason", "")
        if not reason.strip():
            raise exceptions.BadResolution("a resolution needs a reason")
        amount = _correction_amount(form.get("amount_mad", ""))
        how = officers.confirm(services(), g.officer, form.get("confirmation", ""))
        item = exceptions.resolve(services(), exception_id, g.officer, form.get("kind", ""), reason,
                                  amount_centimes=amount, program=form.get("program") or None,
                                  period=form.get("period") or None)
    except DomainError as exc:
        return _render_exception(exception_id, error=str(exc), status=status_of(exc))
    flash(f"exception {exception_id} resolved by {item.resolution} (confirmed by {how}); "
          f"it is now {item.status}", "info")
    return redirect(url_for("officer.exception_detail", exception_id=exception_id), 303)
