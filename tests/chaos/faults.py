"""The faults a chaos run injects, one function each, and the seeded schedule
that picks them. Every fault returns a short note for the report; a fault
that takes something down brings it back itself (after a seeded pause), the
way a supervisor would, so the run goes on while dispatch and confirmations
are under way."""
from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from redis import Redis
from redis.exceptions import RedisError
from rq import Worker
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from connectors import signing
from connectors.simulators.journal import read
from disbursement.bootstrap import Services
from disbursement.services.officers.users import Actor
from reconciliation import expiry
from tests.chaos.stack import Stack

# Partner fault switches stay on this long (seconds), drawn per fault.
SWITCH_SECONDS = (1.0, 4.0)
# A killed process stays down this long before its supervisor restarts it.
DOWN_SECONDS = (0.5, 3.0)
# A worker kill or a PostgreSQL restart waits this long for a busy worker.
BUSY_WAIT_SECONDS = 5.0
REPLAY_SAMPLE = 60
REPLAY_THREADS = 16
CONTROL_TIMEOUT_SECONDS = 10
# The program's expiry window is 30 days: this is a run the day after it closed
# for everything available or sent now.
EXPIRY_AS_OF_DAYS = 31

KINDS = (
    "worker_kill", "redis_flushall", "postgres_restart_fast", "postgres_restart_immediate",
    "partner_kill", "partner_timeouts", "partner_503", "partner_lost_requests",
    "gunicorn_worker_kill", "expiry_during_callbacks", "duplicate_callbacks",
    "out_of_order_callbacks", "callback_replay",
)


@dataclass
class World:
    """What the faults act on: the stack, the environment of our processes,
    partners' keys and URLs, and the seeded generator."""

    stack: Stack
    svc: Services
    operator: Actor
    env: dict[str, str]
    api: str
    keys: dict[str, str]
    sims: dict[str, str]
    rng: random.Random
    replay_answers: dict[str, int] = field(default_factory=dict)

    def pause(self, bounds: tuple[float, float]) -> float:
        seconds = self.rng.uniform(*bounds)
        time.sleep(seconds)
        return seconds

    def partner(self) -> str:
        return self.rng.choice(sorted(self.sims))

    def switch(self, code: str, **faults: Any) -> None:
        httpx.post(f"{self.sims[code]}/_sim/faults", json=faults,
                   timeout=CONTROL_TIMEOUT_SECONDS).raise_for_status()


def schedule(count: int, rng: random.Random) -> list[str]:
    """`count` fault kinds: every kind once (shuffled) before any repeats."""
    kinds: list[str] = []
    while len(kinds) < count:
        round_ = list(KINDS)
        rng.shuffle(round_)
        kinds += round_
    return kinds[:count]


def _busy_worker(world: World) -> str | None:
    """The name of an RQ worker of ours in the middle of a job (a chunk at a
    partner, most likely), waiting up to BUSY_WAIT_SECONDS for one; None if none."""
    pids = {proc.popen.pid: name for name, proc in world.stack.procs.items()
            if name.startswith("worker-") and proc.popen is not None}
    deadline = time.monotonic() + BUSY_WAIT_SECONDS
    with Redis.from_url(world.env["REDIS_URL"]) as connection:
        while time.monotonic() < deadline:
            try:
                busy = [pids[w.pid] for w in Worker.all(connection=connection)
                        if w.pid in pids and w.get_state() == "busy"]
            except RedisError:
                busy = []
            if busy:
                return world.rng.choice(sorted(busy))
            time.sleep(0.02)
    return None


def worker_kill(world: World) -> str:
    busy = _busy_worker(world)
    name = busy or world.rng.choice(["worker-1", "worker-2"])
    proc = world.stack.procs[name]
    proc.kill()
    down = world.pause(DOWN_SECONDS)
    proc.start()
    return f"{name} ({'busy' if busy else 'idle'}) killed, restarted after {down:.1f}s"


def redis_flushall(world: World) -> str:
    world.stack.flush_redis()
    return "FLUSHALL"


def _postgres_restart(world: World, mode: str) -> str:
    # Preferably while a worker has a chunk at a partner: its commit then fails.
    busy = _busy_worker(world)
    started = time.monotonic()
    world.stack.restart_postgres(mode)
    return (f"pg_ctl restart -m {mode} ({time.monotonic() - started:.1f}s)"
            f"{', a worker busy' if busy else ''}")


def postgres_restart_fast(world: World) -> str:
    return _postgres_restart(world, "fast")


def postgres_restart_immediate(world: World) -> str:
    return _postgres_restart(world, "immediate")


def partner_kill(world: World) -> str:
    code = world.partner()
    proc = world.stack.procs[f"partner-{code}"]
    proc.kill()
    down = world.pause(DOWN_SECONDS)
    proc.start()      # reloads its book and owed callbacks from the journal
    return f"{code} killed, restarted on its journal after {down:.1f}s"


def _switched(world: World, **faults: Any) -> str:
    code = world.partner()
    world.switch(code, **faults)
    on = world.pause(SWITCH_SECONDS)
    world.switch(code, **{name: type(value)() for name, value in faults.items()})
    return f"{code} {', '.join(f'{k}={v}' for k, v in faults.items())} for {on:.1f}s"


def partner_timeouts(world: World) -> str:
    return _switched(world, timeout_rate=0.5)


def partner_503(world: World) -> str:
    return _switched(world, error_rate=0.5)


def partner_lost_requests(world: World) -> str:
    return _switched(world, lost_request_rate=0.5)


def duplicate_callbacks(world: World) -> str:
    return _switched(world, duplicate_callbacks=True)


def out_of_order_callbacks(world: World) -> str:
    return _switched(world, out_of_order_callbacks=True)


def gunicorn_worker_kill(world: World) -> str:
    workers = world.stack.procs["gunicorn"].children()
    if not workers:
        return "no gunicorn worker to kill"
    pid = world.rng.choice(workers)
    os.kill(pid, signal.SIGKILL)
    return f"gunicorn worker {pid} killed (the master forks another)"


def _in_flight(world: World) -> int:
    """Our transfers sent or available (confirmations still to come)."""
    with world.svc.engine.connect() as conn:
        return conn.execute(text("SELECT count(*) FROM transfers "
                                 "WHERE status IN ('sent', 'available')")).scalar_one()


def expiry_during_callbacks(world: World) -> str:
    """The expiry job, run the day after the window closed for every transfer
    sent or available now, while their confirmations are on their way."""
    deadline = time.monotonic() + BUSY_WAIT_SECONDS
    in_flight = 0
    while time.monotonic() < deadline and not in_flight:
        with contextlib.suppress(SQLAlchemyError):
            in_flight = _in_flight(world)
        time.sleep(0.05)
    as_of = (datetime.now(UTC) + timedelta(days=EXPIRY_AS_OF_DAYS)).date()
    report = expiry.run(world.svc, world.operator, as_of)
    return (f"expiry run as of {as_of} with {in_flight} transfers sent or available: "
            f"expired {report.expired}, {_in_flight(world)} in flight after")


def callback_replay(world: World) -> str:
    """Signed confirmations the partners already queued, posted again
    concurrently: each one twice at the same moment, and a transfer's
    `available` and `paid` together, the later one first."""
    code = world.partner()
    events = [record["event"] for record in read(world.stack.journal(code))
              if record.get("t") == "callback"]
    if not events:
        return f"{code}: nothing to replay yet"
    sample = world.rng.sample(events, min(REPLAY_SAMPLE, len(events)))
    bodies = [[event] for event in sample for _ in range(2)]
    by_reference: dict[str, list[dict]] = {}
    for event in events:
        by_reference.setdefault(event["reference"], []).append(event)
    pairs = [list(reversed(v)) for v in by_reference.values() if len(v) > 1]
    for pair in world.rng.sample(pairs, min(REPLAY_SAMPLE // 2, len(pairs))):
        bodies += [[event] for event in pair]
    world.rng.shuffle(bodies)
    path = f"/api/v1/partners/{code}/confirmations"
    key = world.keys[code].encode()

    def post(body: list[dict]) -> int:
        raw = json.dumps(body, separators=(",", ":")).encode()
        headers = {"Content-Type": "application/json",
                   **signing.sign(key, raw, method="POST", target=path)}
        try:
            return httpx.post(f"{world.api}{path}", content=raw, headers=headers,
                              timeout=30).status_code
        except httpx.HTTPError:
            return 0

    with ThreadPoolExecutor(REPLAY_THREADS) as pool:
        answers = list(pool.map(post, bodies))
    counted: dict[int, int] = {}
    for status in answers:
        counted[status] = counted.get(status, 0) + 1
        world.replay_answers[str(status)] = world.replay_answers.get(str(status), 0) + 1
    return f"{code}: {len(bodies)} signed callbacks replayed concurrently, answers {counted}"


FAULTS: dict[str, Callable[[World], str]] = {
    "worker_kill": worker_kill, "redis_flushall": redis_flushall,
    "postgres_restart_fast": postgres_restart_fast,
    "postgres_restart_immediate": postgres_restart_immediate,
    "partner_kill": partner_kill, "partner_timeouts": partner_timeouts,
    "partner_503": partner_503, "partner_lost_requests": partner_lost_requests,
    "gunicorn_worker_kill": gunicorn_worker_kill,
    "expiry_during_callbacks": expiry_during_callbacks,
    "duplicate_callbacks": duplicate_callbacks, "out_of_order_callbacks": out_of_order_callbacks,
    "callback_replay": callback_replay,
}
assert set(FAULTS) == set(KINDS)
