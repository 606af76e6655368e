"""Reports per batch, partner, cycle or region: the figures on the page and
the same rows as CSV or XLSX downloads, built by the reports service; and the
transfers on which the partners' books disagree with ours (`ledger check`)."""
from __future__ import annotations

import io

from flask import render_template, request, send_file

from disbursement.domain.states import Role
from disbursement.services.cycles import review as cycle_review
from disbursement.services.ledger import books, reports
from disbursement.web.console.blueprint import bp
from disbursement.web.console.guard import services, signed_in

READERS = (Role.MAKER, Role.APPROVER, Role.AUDITOR)
DEFAULT_KIND = "partner"
# References shown per kind of disagreement with the partners' books.
BOOKS_REFERENCES = 10
# Section of the report -> its heading on the page, in the order shown.
SECTIONS = {"state": "Transfers by state", "exception": "Unresolved exceptions by type",
            "ageing": "Unresolved exceptions by age (days)"}


def _report(kind: str):
    """The report's scope and rows for the cycle named in the query string
    (all cycles when none). Raises reports.UnknownReport (404) for an unknown
    kind or cycle."""
    with services().uow() as db:
        where = reports.scope(db, request.args.get("cycle", type=int))
        return where, reports.build(db, kind, where)


@bp.get("/reports")
@signed_in(*READERS)
def reports_page():
    kind = request.args.get("kind") or DEFAULT_KIND
    where, rows = _report(kind)
    with services().uow() as db:
        cycles = [c for c, _, _ in cycle_review.list_cycles(db)]
        disagreements = books.compare(db, where.program, where.period, first=BOOKS_REFERENCES)
    sections = {name: [r for r in rows if r.section == name] for name in SECTIONS}
    totals = {name: (sum(r.count for r in part), sum(r.amount_centimes for r in part),
                     sum(r.fee_centimes for r in part)) for name, part in sections.items()}
    return render_template("console/reports.html", kind=kind, kinds=reports.KINDS, where=where,
                           cycles=cycles, sections=sections, titles=SECTIONS, totals=totals,
                           books=disagreements)


@bp.get("/reports/<kind>.<any(csv, xlsx):fmt>")
@signed_in(*READERS)
def report_download(kind: str, fmt: str):
    where, rows = _report(kind)
    content, mimetype, name = reports.as_file(kind, where, rows, fmt)
    return send_file(io.BytesIO(content), mimetype=mimetype, as_attachment=True,
                     download_name=name)
