from __future__ import annotations

from flask import Blueprint, Response, jsonify
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text

from disbursement.web.auth import services

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def live():
    return jsonify({"status": "ok"})


@bp.get("/readyz")
def ready():
    svc = services()
    checks = {}
    try:
        with svc.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        checks["database"] = "ok"
    except Exception as exc:  # reported, not raised: this is the readiness answer
        checks["database"] = f"error: {type(exc).__name__}"
    if svc.settings.redis_url:
        try:
            from redis import Redis
            Redis.from_url(svc.settings.redis_url, socket_timeout=2).ping()
            checks["redis"] = "ok"
        except Exception as exc:
            checks["redis"] = f"error: {type(exc).__name__}"
    ok = all(v == "ok" for v in checks.values())
    return jsonify({"status": "ok" if ok else "degraded", "checks": checks}), 200 if ok else 503


@bp.get("/metrics")
def metrics():
    return Response(generate_latest(), mimetype=CONTENT_TYPE_LATEST)
