"""The service running by itself (issue 10), with real `disburse worker` and
`disburse scheduler` processes on a private Redis that the tests flush: after
Redis loses its data the workers register again, /readyz goes back to ready
and the scheduled sweeper rebuilds the lost dispatch jobs; one scheduler is
active at a time and a standby takes over within seconds of a SIGKILL; a
worker's scheduler child dies with its worker; `disburse recover` puts lost
work back and says what it did."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import pytest
from redis import Redis
from sqlalchemy import select

from disbursement.bootstrap import Services, build
from disbursement.db.models import Transfer
from disbursement.demo import api_server, simulator
from disbursement.jobs.lease import LEASE_KEY
from disbursement.services.batches import approval as batches
from disbursement.web.app import create_app
from tests.conftest import PARTNER_KEYS, ROOT, _truncate_all, create_officers, make_settings
from tests.support import processes
from tests.support import services as test_services
from tests.support.cycle import approve_all, import_and_plan
from tests.support.waiting import wait_until

pytestmark = pytest.mark.e2e

LEASE_SECONDS = 3
# A worker heartbeats every WORKER_TTL - 15 seconds (RQ): every 3 s here.
WORKER_TTL_SECONDS = 18
HEARTBEAT_SECONDS = WORKER_TTL_SECONDS - 15
RQ_SCHEDULER_LOCK = "rq:scheduler-lock:disburse"
PROCESS_ENV = {"WORKER_TTL_SECONDS": str(WORKER_TTL_SECONDS),
               "SCHEDULER_LEASE_SECONDS": str(LEASE_SECONDS),
               "SWEEP_OUTBOX_EVERY_SECONDS": "2", "QUERY_IN_DOUBT_EVERY_SECONDS": "5",
               "COLLECT_FILES_EVERY_SECONDS": "0"}


@pytest.fixture(scope="module")
def private_redis() -> Iterator[str]:
    """A redis-server of our own: these tests FLUSHALL it."""
    info = test_services.start_private_redis()
    try:
        yield f"redis://127.0.0.1:{info['port']}/0"
    finally:
        test_services.stop_one(info)


@dataclass
class World:
    svc: Services
    officers: object
    env: dict[str, str]
    redis: Redis
    logs: Path
    started: list[subprocess.Popen]

    def start(self, *args: str) -> subprocess.Popen:
        process = processes.start(list(args), self.env, self.logs / f"{args[0]}.log")
        self.started.append(process)
        return process

    def statuses(self) -> set[str]:
        with self.svc.uow() as session:
            return set(session.execute(select(Transfer.status).distinct()).scalars())


@pytest.fixture
def world(pg_url, private_redis, tmp_path) -> Iterator[World]:
    redis = Redis.from_url(private_redis)
    redis.flushall()
    settings = make_settings(tmp_path, pg_url, private_redis,
                             scheduler_lease_seconds=LEASE_SECONDS)
    svc = build(settings)
    officers = create_officers(svc)
    started: list[subprocess.Popen] = []
    try:
        with ExitStack() as stack:
            api = stack.enter_context(api_server(svc, "127.0.0.1", 0))
            sims = {code: stack.enter_context(simulator(
                code, 0, f"{api}/api/v1/partners/{code}/confirmations", key, 1))
                for code, key in PARTNER_KEYS.items()}
            svc = svc.with_partner_urls(sims)
            env = processes.disburse_env(settings, sims, **PROCESS_ENV)
            yield World(svc, officers, env, redis, tmp_path, started)
            for process in started:
                processes.stop(process)
    finally:
        for process in started:
            processes.stop(process)
        _truncate_all(svc)
        svc.engine.dispose()
        redis.flushall()


def _failed(client) -> set[str]:
    body = client.get("/readyz").get_json()
    return {name for name, check in body["checks"].items() if not check["ok"]}


def _released_batches(world: World, households_csv) -> None:
    plan = import_and_plan(world.svc, world.officers, households_csv(200))
    approve_all(world.svc, world.officers, plan)
    for batch_id in plan.batches_created:
        batches.release(world.svc, batch_id, world.officers.maker)


def test_after_flushall_workers_register_again_and_the_scheduler_rebuilds_lost_dispatch(
        world, households_csv):
    client = create_app(services=world.svc).test_client()
    assert _failed(client) == {"workers", "scheduler"}
    worker = world.start("worker")
    wait_until(lambda: _failed(client) == {"scheduler"}, "the worker counted")

    # Redis loses everything: the worker is no longer counted, until its next heartbeat.
    world.redis.flushall()
    wait_until(lambda: _failed(client) == {"scheduler"}, "the worker registered again",
               timeout=HEARTBEAT_SECONDS + 10)

    world.start("scheduler")
    wait_until(lambda: not _failed(client), "/readyz ready with a worker and a scheduler")
    world.redis.flushall()
    wait_until(lambda: not _failed(client), "/readyz ready again without any restart",
               timeout=HEARTBEAT_SECONDS + 10)
    assert worker.poll() is None

    # Work enqueued while no worker runs, then lost with Redis.
    processes.stop(worker)
    _released_batches(world, households_csv)
    assert world.statuses() == {"queued"}
    assert world.redis.llen("rq:queue:disburse") >= 1
    world.redis.flushall()
    world.start("worker")
    # Nobody types a command: the scheduler's sweep puts the work back.
    wait_until(lambda: "queued" not in world.statuses(), "every transfer sent after the flush",
               timeout=60)
    wait_until(lambda: not _failed(client), "/readyz ready at the end")
    # And back: a stopped worker, a killed scheduler are seen.
    for process in (p for p in world.started if p.poll() is None):
        os.kill(process.pid, signal.SIGKILL if "scheduler" in process.args else signal.SIGTERM)
    wait_until(lambda: _failed(client) == {"workers", "scheduler"},
               "/readyz names the missing worker and scheduler", timeout=LEASE_SECONDS + 10)


def test_a_killed_workers_scheduler_child_dies_with_it_and_frees_its_lock(world):
    worker = world.start("worker")
    child = wait_until(lambda: processes.children_of(worker.pid),
                       "the worker forks RQ's scheduler")[0]
    assert world.redis.get(RQ_SCHEDULER_LOCK) is not None
    os.kill(worker.pid, signal.SIGKILL)
    worker.wait(timeout=10)
    wait_until(lambda: not processes.alive(child), "the scheduler child is gone", timeout=5)
    assert world.redis.get(RQ_SCHEDULER_LOCK) is None


def _holder_pid(world: World) -> int | None:
    holder = world.redis.get(LEASE_KEY)
    return int(holder.decode().split(":")[1]) if holder else None


def test_one_scheduler_is_active_and_a_standby_takes_over_after_a_kill(world):
    first, second = world.start("scheduler"), world.start("scheduler")
    active = wait_until(lambda: _holder_pid(world), "a scheduler holds the lease")
    assert active in (first.pid, second.pid)
    standby = second if active == first.pid else first
    os.kill(active, signal.SIGKILL)
    wait_until(lambda: _holder_pid(world) == standby.pid, "the standby holds the lease",
               timeout=LEASE_SECONDS + 5)


def test_recover_puts_lost_work_back_and_prints_what_it_did(world, households_csv):
    _released_batches(world, households_csv)
    world.redis.flushall()
    world.start("worker")
    with world.svc.uow() as session:
        queued = len(session.execute(select(Transfer.id)).all())
    result = subprocess.run([sys.executable, "-m", "disbursement.cli", "recover",
                             "--timeout", "120"],
                            env=world.env, cwd=ROOT, capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "in doubt: 0 transfer(s) asked, settled: none, 0 sent again" in result.stdout
    enqueued = [line for line in result.stdout.splitlines() if line.startswith("outbox: ")]
    assert len(enqueued) == 1 and enqueued[0].endswith(" done"), result.stdout
    assert "queued" not in world.statuses() and queued > 0
