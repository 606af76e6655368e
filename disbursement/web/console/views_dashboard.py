"""The monitors' dashboard: charts drawn by Chart.js (vendored under
static/vendor/chartjs) from the dashboard snapshot, refreshed every few
seconds. The page reads the snapshot through the console's own session (the
API's /api/v1/dashboard wants a bearer token a browser page does not hold)."""
from __future__ import annotations

from flask import jsonify, render_template

from disbursement.services.monitoring.dashboard import snapshot_for
from disbursement.web.console.blueprint import bp
from disbursement.web.console.guard import services, signed_in

REFRESH_SECONDS = 5


@bp.get("/dashboard")
@signed_in()
def dashboard():
    return render_template("console/dashboard.html", refresh_seconds=REFRESH_SECONDS)


@bp.get("/dashboard.json")
@signed_in()
def dashboard_data():
    return jsonify(snapshot_for(services()))
