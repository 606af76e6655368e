"""The scheduler's lease (issue 10): one key in Redis that names the active
scheduler. Every scheduler process tries to take it at each tick; the holder
renews it, the others stand by. A holder that dies (SIGKILL, a lost machine)
stops renewing and its lease lapses after `Settings.scheduler_lease_seconds`,
so a standby takes over within seconds. If Redis loses its data, the next
tick takes the lease again.

RQ's own lock script does the compare-and-set (`rq.scripts`), and the
scheduler's last runs live beside the lease, for /readyz and the operator."""
from __future__ import annotations

from datetime import datetime
from typing import Literal

from redis import Redis
from rq.scripts import acquire_or_refresh_lock, release_lock

LEASE_KEY = "disburse:scheduler:lease"
LAST_RUNS_KEY = "disburse:scheduler:last-runs"   # hash: job name -> ISO time (UTC)

Outcome = Literal["acquired", "refreshed", "taken"]


class RedisLease:
    """`holder` names this scheduler (host:pid:random), so a lease is only
    renewed or released by the scheduler that holds it."""

    def __init__(self, connection: Redis, holder: str, seconds: int) -> None:
        self.connection = connection
        self.holder = holder
        self.seconds = seconds

    def hold(self) -> Outcome:
        return acquire_or_refresh_lock(self.connection, LEASE_KEY, self.holder, self.seconds)

    def release(self) -> None:
        release_lock(self.connection, LEASE_KEY, self.holder)

    def record_run(self, job: str, at: datetime) -> None:
        self.connection.hset(LAST_RUNS_KEY, job, at.isoformat())

    def last_run(self, job: str) -> datetime | None:
        raw = self.connection.hget(LAST_RUNS_KEY, job)
        return datetime.fromisoformat(raw.decode()) if raw else None


def lease_ttl_seconds(connection: Redis) -> int:
    """Seconds left on the active scheduler's lease; 0 when no scheduler holds it."""
    return max(int(connection.ttl(LEASE_KEY)), 0)
