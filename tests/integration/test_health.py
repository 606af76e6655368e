"""Liveness and readiness on real components: each failing check is produced
for real (a database or Redis on a closed loopback port, a database behind on
migrations, no RQ worker registered) and named in the 503 body."""
from __future__ import annotations

import base64
import os
import subprocess
import sys

import pytest
from redis import Redis
from sqlalchemy import create_engine

from disbursement.bootstrap import build
from disbursement.db.migrate import upgrade
from disbursement.demo import free_port
from disbursement.web.app import create_app
from tests.conftest import PARTNER_KEYS, ROOT, make_settings
from tests.support.waiting import wait_until

pytestmark = pytest.mark.integration

WORKER_REGISTERED_SECONDS = 30


def _client(settings):
    svc = build(settings)
    return svc, create_app(services=svc).test_client()


def _failed(body) -> set[str]:
    return {name for name, check in body["checks"].items() if not check["ok"]}


def _ready_once_registered(client, worker: subprocess.Popen):
    """The readiness answer if it is 200; None while the worker has not
    registered yet. A worker that exited will never register."""
    assert worker.poll() is None, "the worker exited"
    ready = client.get("/readyz")
    return ready if ready.status_code == 200 else None


def test_embedded_mode_is_ready_with_jobs_in_process(sqlite_svc):
    client = create_app(services=sqlite_svc).test_client()
    live = client.get("/healthz")
    assert live.status_code == 200 and live.get_json() == {"status": "ok", "pid": os.getpid()}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    body = ready.get_json()
    assert body["status"] == "ready"
    assert body["checks"]["database"] == {"ok": True, "detail": "sqlite"}
    assert body["checks"]["migrations"]["ok"]
    assert "at head" in body["checks"]["migrations"]["detail"]
    assert body["checks"]["workers"] == {"ok": True, "detail": "in-process"}
    assert body["checks"]["scheduler"] == {"ok": True, "detail": "in-process"}
    assert body["checks"]["redis"]["detail"] == "not configured: jobs run in-process"


def test_database_unreachable_fails_readiness_not_liveness(tmp_path):
    closed = free_port()
    svc, client = _client(make_settings(
        tmp_path, f"postgresql+psycopg://postgres@127.0.0.1:{closed}/nowhere?connect_timeout=2"))
    try:
        assert client.get("/healthz").status_code == 200
        ready = client.get("/readyz")
        assert ready.status_code == 503
        body = ready.get_json()
        assert body["status"] == "not_ready"
        assert _failed(body) == {"database", "migrations"}
        assert body["checks"]["database"]["detail"].startswith("OperationalError")
    finally:
        svc.engine.dispose()


def test_database_behind_on_migrations_is_not_ready(tmp_path):
    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = create_engine(url)
    upgrade(engine, "0005")
    engine.dispose()
    svc, client = _client(make_settings(tmp_path, url))
    try:
        ready = client.get("/readyz")
        assert ready.status_code == 503
        body = ready.get_json()
        assert _failed(body) == {"migrations"}
        assert body["checks"]["migrations"]["detail"].startswith("database at 0005, code expects ")
    finally:
        svc.engine.dispose()


def test_redis_unreachable_is_not_ready(pg_url, tmp_path):
    closed = free_port()
    svc, client = _client(make_settings(tmp_path, pg_url, f"redis://127.0.0.1:{closed}/0"))
    try:
        ready = client.get("/readyz")
        assert ready.status_code == 503
        body = ready.get_json()
        assert _failed(body) == {"redis", "workers", "scheduler"}
        assert body["checks"]["redis"]["detail"].startswith("ConnectionError")
        assert body["checks"]["workers"]["detail"] == "Redis unreachable"
    finally:
        svc.engine.dispose()


def test_ready_only_once_an_rq_worker_is_registered(pg_url, redis_url, tmp_path):
    Redis.from_url(redis_url).flushdb()
    settings = make_settings(tmp_path, pg_url, redis_url)
    svc, client = _client(settings)
    env = {**os.environ, "DATABASE_URL": pg_url, "REDIS_URL": redis_url,
           "DISBURSE_VAR_DIR": str(tmp_path),
           "DISBURSE_DATA_KEY": base64.b64encode(settings.data_key).decode(),
           **{f"PARTNER_{c}_HMAC_KEYS": k for c, k in PARTNER_KEYS.items()}}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    try:
        ready = client.get("/readyz")
        assert ready.status_code == 503
        assert _failed(ready.get_json()) == {"workers", "scheduler"}
        assert ready.get_json()["checks"]["workers"]["detail"] == \
            "no RQ worker registered on the queue"
        worker = subprocess.Popen([sys.executable, "-m", "disbursement.cli", "worker"], env=env,
                                  cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        scheduler = subprocess.Popen([sys.executable, "-m", "disbursement.cli", "scheduler"],
                                     env=env, cwd=ROOT, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        try:
            ready = wait_until(lambda: _ready_once_registered(client, worker),
                               "/readyz answers 200 once the worker registers",
                               timeout=WORKER_REGISTERED_SECONDS)
            assert ready.get_json()["checks"]["workers"] == {
                "ok": True, "detail": "1 RQ worker(s) registered"}
            assert ready.get_json()["checks"]["scheduler"]["ok"]
        finally:
            for process in (worker, scheduler):
                process.terminate()
                process.wait(timeout=30)
    finally:
        svc.engine.dispose()
