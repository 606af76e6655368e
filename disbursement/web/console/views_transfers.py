"""Transfers: search, and one transfer's timeline with who or what caused
each step. Personal data is masked unless the officer's role may see it."""
from __future__ import annotations

from flask import g, render_template, request

from disbursement.services.tracking import search as transfer_search
from disbursement.services.tracking.queries import transfer_view
from disbursement.web.console.blueprint import bp
from disbursement.web.console.guard import may_see_personal_data, not_found, services, signed_in


@bp.route("/transfers", methods=["GET", "POST"])
@signed_in()
def transfers():
    # Posted, not in the URL: a national ID typed here must not end up in
    # access logs or the browser's history.
    query = request.form.get("q", "") if request.method == "POST" else ""
    svc = services()
    with svc.uow() as db:
        found = transfer_search.search(db, svc.vault, query)
    return render_template("console/transfers.html", q=query, found=found)


@bp.get("/transfers/<reference>")
@signed_in()
def transfer_detail(reference: str):
    svc = services()
    with svc.uow() as db:
        view = transfer_view(db, reference.upper())
        if view is None:
            not_found(f"transfer {reference}")
        who = transfer_search.household_identity(db, svc.vault, view["instruction"]["household_id"],
                                                 may_see_personal_data(g.officer))
    return render_template("console/transfer.html", t=view, who=who,
                           clear=may_see_personal_data(g.officer))
