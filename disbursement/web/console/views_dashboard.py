"""The monitors' dashboard: charts (Chart.js, vendored) refreshed from the
dashboard JSON every few seconds."""
from __future__ import annotations

from flask import render_template

from disbursement.web.console import bp
from disbursement.web.console.guard import signed_in

REFRESH_SECONDS = 5


@bp.get("/dashboard")
@signed_in()
def dashboard():
    return render_template("console/dashboard.html", refresh_seconds=REFRESH_SECONDS)
