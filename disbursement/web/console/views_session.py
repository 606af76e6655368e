"""Sign in, sign out, and the home page (what needs the officer's attention)."""
from __future__ import annotations

from flask import flash, g, redirect, render_template, request, session, url_for

from disbursement.domain.states import BatchStatus, Role
from disbursement.services.batches import queries as batch_queries
from disbursement.services.officers import sign_in as officers
from disbursement.services.officers import users
from disbursement.web.console.blueprint import bp
from disbursement.web.console.guard import safe_next, services, signed_in

HOME_BATCHES = 100


@bp.route("/login", methods=["GET", "POST"])
def login():
    if request.method == "GET":
        return render_template("console/login.html", next=request.args.get("next", ""))
    try:
        actor = officers.login(services(), request.form.get("username", ""),
                               request.form.get("password", ""))
    except users.AuthenticationFailed as exc:
        return render_template("console/login.html", error=str(exc),
                               next=request.form.get("next", ""),
                               username=request.form.get("username", "")), 401
    # A fresh session: nothing from before sign-in carries over.
    session.clear()
    session.permanent = True
    session["username"] = actor.username
    if Role.MONITOR in actor.roles and len(actor.roles) == 1:
        return redirect(url_for("officer.dashboard"), 303)
    return redirect(safe_next(request.form.get("next")), 303)


@bp.post("/logout")
def logout():
    session.clear()
    flash("signed out", "info")
    return redirect(url_for("officer.login"), 303)


@bp.get("/")
@signed_in()
def home():
    with services().uow() as db:
        rows = batch_queries.recent_batches(db, HOME_BATCHES)
    waiting = [b for b, _, _ in rows if b.status == BatchStatus.SUBMITTED.value
               and g.officer.username not in (b.created_by, b.submitted_by)]
    return render_template("console/home.html", rows=rows, waiting=waiting)
