"""Liveness, readiness and Prometheus metrics.

/healthz says the process answers (no dependency is asked: a database outage
must not get every web process restarted). /readyz says whether this process
can do useful work: each check is named in the body, and one failure makes it
503 so a load balancer stops sending traffic here."""
from __future__ import annotations

import os

from flask import Blueprint, Response, jsonify
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from disbursement.services.monitoring import readiness
from disbursement.web.auth import services
from disbursement.web.scrape import scrape_registry

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def live():
    # The pid tells which worker process answered (a gunicorn has several).
    return jsonify({"status": "ok", "pid": os.getpid()})


@bp.get("/readyz")
def ready():
    checks = readiness.check(services())
    ok = all(c["ok"] for c in checks.values())
    return jsonify({"status": "ready" if ok else "not_ready", "checks": checks}), 200 if ok else 503


@bp.get("/metrics")
def metrics_view():
    svc = services()
    metrics_dir = str(svc.settings.metrics_dir) if svc.settings.metrics_dir else None
    return Response(generate_latest(scrape_registry(svc, metrics_dir)),
                    mimetype=CONTENT_TYPE_LATEST)
