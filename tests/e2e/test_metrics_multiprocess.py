"""/metrics under the real gunicorn configuration with 2 worker processes, and
job counters from a real `disburse worker --burst` process, all in one scrape:
prometheus-client multiprocess mode on PostgreSQL + Redis."""
from __future__ import annotations

import base64
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from disbursement.jobs.queue import RQJobQueue
from disbursement.services.ports import JobName
from tests.conftest import PARTNER_KEYS, ROOT
from tests.support.gunicorn import gunicorn

pytestmark = pytest.mark.e2e

MAX_ROUNDS = 20
REQUESTS_PER_ROUND = 40


@pytest.fixture
def env(pg_url, redis_url, tmp_path) -> dict[str, str]:
    from redis import Redis

    Redis.from_url(redis_url).flushdb()
    base = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
    return {**base, "DATABASE_URL": pg_url, "REDIS_URL": redis_url,
            "DISBURSE_VAR_DIR": str(tmp_path),
            "DISBURSE_DATA_KEY": base64.b64encode(os.urandom(32)).decode(),
            **{f"PARTNER_{c}_HMAC_KEYS": k for c, k in PARTNER_KEYS.items()}}


def _scrape(url: str) -> dict[tuple[str, tuple], float]:
    text = httpx.get(f"{url}/metrics", timeout=30).text
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def _sum(samples, name: str, **labels) -> float:
    return sum(v for (n, lbls), v in samples.items()
               if n == name and set(labels.items()) <= set(lbls))


def _hit_until_both_workers_served(url: str) -> tuple[int, set[int]]:
    """Concurrent requests to /healthz, which names the pid that served it,
    until both workers have answered. Returns (requests served, pids)."""
    served, pids = 0, set()
    with httpx.Client(timeout=30) as client, ThreadPoolExecutor(8) as pool:
        for _ in range(MAX_ROUNDS):
            responses = list(pool.map(lambda _: client.get(f"{url}/healthz"),
                                      range(REQUESTS_PER_ROUND)))
            assert all(r.status_code == 200 for r in responses)
            served += len(responses)
            pids |= {r.json()["pid"] for r in responses}
            if len(pids) == 2:
                break
    return served, pids


def test_metrics_sum_both_gunicorn_workers_and_an_rq_worker(env, tmp_path):
    metrics_dir = Path(tmp_path) / "prometheus"   # gunicorn.conf.py's default under the var dir
    metrics_dir.mkdir()
    stale = metrics_dir / "counter_4999999.db"    # a process from an earlier run (no such pid)
    stale.write_bytes(b"\0" * 16)
    with gunicorn(env) as url:
        assert not stale.exists()                 # wiped when the server started
        served, pids = _hit_until_both_workers_served(url)
        assert len(pids) == 2, f"only {pids} answered {served} requests"
        assert {f"counter_{pid}.db" for pid in pids} <= {p.name for p in metrics_dir.iterdir()}
        samples = _scrape(url)
        assert _sum(samples, "disburse_http_requests_total", endpoint="health.live",
                    status="200") == served
        assert _sum(samples, "disburse_http_request_duration_seconds_count",
                    endpoint="health.live") == served
        # Read at scrape time, once: one series per partner and state, not one per worker.
        assert _sum(samples, "disburse_transfers", partner="BARID", state="paid") == 0
        assert len([k for k in samples if k[0] == "disburse_transfers"
                    and dict(k[1]) == {"partner": "BARID", "state": "paid"}]) == 1
        assert samples[("disburse_state_scrape_up", ())] == 1
        assert samples[("disburse_rq_workers", (("queue", "disburse"),))] == 0

        # Three real jobs (outbox ids that do not exist: each one is a no-op
        # that succeeds) run by a separate worker process writing to the same
        # directory.
        queue = RQJobQueue(env["REDIS_URL"])
        for outbox_id in (101, 102, 103):
            queue.enqueue(JobName.DISPATCH_CHUNK, outbox_id)
        assert _scrape(url)[("disburse_rq_queued_jobs", (("queue", "disburse"),))] == 3
        worker = subprocess.run(
            [sys.executable, "-m", "disbursement.cli", "worker", "--burst"],
            env={**env, "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)}, cwd=ROOT,
            capture_output=True, text=True, timeout=120)
        assert worker.returncode == 0, worker.stderr[-2000:]
        samples = _scrape(url)
        assert _sum(samples, "disburse_jobs_total", job="dispatch_chunk",
                    outcome="succeeded") == 3
        assert _sum(samples, "disburse_job_duration_seconds_count", job="dispatch_chunk") == 3
        assert samples[("disburse_rq_queued_jobs", (("queue", "disburse"),))] == 0
        # The gunicorn counters are still all there after the worker came and went.
        assert _sum(samples, "disburse_http_requests_total", endpoint="health.live") == served
