"""The scheduler (issue 10): what runs by itself, and when. The outbox
sweeper (rebuilds dispatch work Redis lost), the status queries of transfers
in doubt, the file partners' collection (each every so many seconds) and the
expiry (daily at a set time, and at once when the active scheduler finds
that a day's run was missed). Intervals are settings
(`SWEEP_OUTBOX_EVERY_SECONDS`, ...); the timing itself is RQ's `CronJob`
(croniter for the daily time).

The scheduler only enqueues: the jobs run on the workers (or in-process in
the embedded mode), by name, like every other job. It runs:

- in production as `disburse scheduler`, RQ's `CronScheduler` (registered
  and heartbeating in RQ's registry of cron schedulers), any number of them:
  one holds the lease (`jobs.lease`) and enqueues, the others stand by;
- in the embedded mode (no Redis) as a thread of `disburse serve`.

Becoming the active scheduler (at start, on taking over from a dead one, or
after Redis lost the lease with the rest of its data) starts with a catch-up:
the periodic jobs run at once, and a daily job runs if its last recorded run
is older than its latest due time."""
from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Protocol, TypeVar

from croniter import croniter
from redis import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from rq.cron import CronJob, CronScheduler
from rq.exceptions import SchedulerNotFound

from disbursement.jobs.lease import Outcome, RedisLease
from disbursement.jobs.queue import QUEUE_NAME
from disbursement.jobs.worker import ENTRY_POINTS
from disbursement.services.ports import JobName, JobQueue, Services
from disbursement.settings import Settings

log = logging.getLogger(__name__)

REDIS_DOWN = (RedisConnectionError, RedisTimeoutError)
T = TypeVar("T")


class Lease(Protocol):
    seconds: int

    def hold(self) -> Outcome:
        """Takes or renews the lease; "taken" when another scheduler holds it."""

    def release(self) -> None: ...

    def record_run(self, job: str, at: datetime) -> None: ...

    def last_run(self, job: str) -> datetime | None: ...


class LocalLease:
    """The embedded mode: one process, so the lease is always ours; last runs
    are kept in memory (a restart catches up, which is harmless: every
    scheduled job is idempotent)."""

    def __init__(self, seconds: int) -> None:
        self.seconds = seconds
        self._held = False
        self._runs: dict[str, datetime] = {}

    def hold(self) -> Outcome:
        outcome: Outcome = "refreshed" if self._held else "acquired"
        self._held = True
        return outcome

    def release(self) -> None:
        self._held = False

    def record_run(self, job: str, at: datetime) -> None:
        self._runs[job] = at

    def last_run(self, job: str) -> datetime | None:
        return self._runs.get(job)


def cron_jobs(settings: Settings) -> list[CronJob]:
    """The schedule, from the settings; an interval of 0 turns a job off."""
    every = {JobName.SWEEP_OUTBOX: settings.sweep_outbox_every_seconds,
             JobName.QUERY_IN_DOUBT: settings.query_in_doubt_every_seconds,
             JobName.COLLECT_ALL_PARTNER_FILES: settings.collect_files_every_seconds}
    jobs = [CronJob(QUEUE_NAME, func=ENTRY_POINTS[job], interval=seconds, name=job.value)
            for job, seconds in every.items() if seconds > 0]
    hours, minutes = settings.expiry_daily_at.split(":")
    jobs.append(CronJob(QUEUE_NAME, func=ENTRY_POINTS[JobName.RUN_EXPIRY],
                        cron=f"{int(minutes)} {int(hours)} * * *", name=JobName.RUN_EXPIRY.value))
    return jobs


def latest_due(cron: str, at: datetime) -> datetime:
    """The latest time at or before `at` that `cron` (local time, as RQ reads
    it) was due, in UTC."""
    local = at.astimezone().replace(tzinfo=None) + timedelta(seconds=1)
    return croniter(cron, local).get_prev(datetime).astimezone(UTC)


class Timetable:
    """Enqueues the due jobs while this scheduler holds the lease."""

    def __init__(self, queue: JobQueue, lease: Lease, jobs: list[CronJob]) -> None:
        self.queue = queue
        self.lease = lease
        self.jobs = jobs
        self.active = False

    def tick(self) -> list[CronJob]:
        """Renews the lease and enqueues what is due; the jobs enqueued."""
        outcome = self.lease.hold()
        self.active = outcome != "taken"
        if not self.active:
            return []
        at = datetime.now(UTC)
        if outcome == "acquired":
            log.info("scheduler lease acquired: catching up", extra={"holder": self._holder()})
            self._catch_up(at)
        due = [job for job in self.jobs if job.should_run()]
        for job in due:
            self.queue.enqueue(JobName(job.name))
            job.set_enqueue_time(at)
            self.lease.record_run(job.name, at)
        return due

    def sleep_seconds(self) -> float:
        """Until the next job is due, but never longer than a third of the
        lease (it must be renewed before it lapses, and a standby must see a
        lapsed lease soon)."""
        renew = self.lease.seconds / 3
        if not self.active:
            return renew
        at = datetime.now(UTC)
        waits = [(job.next_enqueue_time - at).total_seconds() if job.next_enqueue_time else 0.0
                 for job in self.jobs]
        return max(0.0, min([renew, *waits]))

    def _catch_up(self, at: datetime) -> None:
        for job in self.jobs:
            if job.cron is None:
                job.latest_enqueue_time = job.next_enqueue_time = None   # due now
                continue
            last = self.lease.last_run(job.name)
            if last is None or last < latest_due(job.cron, at):
                job.next_enqueue_time = at

    def _holder(self) -> str:
        return getattr(self.lease, "holder", "this process")


class LeasedCronScheduler(CronScheduler):
    """`disburse scheduler`: RQ's cron scheduler loop (signals, its registry,
    heartbeats), enqueuing through our job queue (JSON, retries, one copy of a
    job at a time) and only while it holds the lease. A Redis outage is waited
    out, not fatal."""

    def __init__(self, connection: Redis, queue: JobQueue, settings: Settings) -> None:
        super().__init__(connection=connection)
        lease = RedisLease(connection, self.name, settings.scheduler_lease_seconds)
        self.timetable = Timetable(queue, lease, cron_jobs(settings))
        self._cron_jobs = self.timetable.jobs   # shown in RQ's registry of cron schedulers

    def enqueue_jobs(self) -> list[CronJob]:
        return _unless_redis_is_down(self.timetable.tick, [])

    def calculate_sleep_interval(self) -> float:
        return self.timetable.sleep_seconds()

    def heartbeat(self) -> None:
        _unless_redis_is_down(super().heartbeat, None)

    def save(self, pipeline=None) -> None:
        if pipeline is not None:   # part of a birth: let it fail, the process is starting
            super().save(pipeline)
            return
        _unless_redis_is_down(super().save, None)

    def register_death(self, pipeline=None) -> None:
        with contextlib.suppress(*REDIS_DOWN):
            self.timetable.lease.release()
        # Redis may have lost the registry entry with the rest of its data.
        with contextlib.suppress(SchedulerNotFound, *REDIS_DOWN):
            super().register_death(pipeline)


def _unless_redis_is_down(call: Callable[[], T], fallback: T) -> T:
    try:
        return call()
    except REDIS_DOWN as exc:
        log.warning("scheduler: Redis does not answer, trying again", extra={"error": str(exc)})
        return fallback


def rq_scheduler(svc: Services) -> LeasedCronScheduler:
    if not svc.settings.redis_url:
        raise ValueError("the RQ scheduler needs REDIS_URL")
    return LeasedCronScheduler(Redis.from_url(svc.settings.redis_url), svc.queue, svc.settings)


class EmbeddedScheduler:
    """The embedded mode's scheduler: a daemon thread of the serving process,
    its jobs run by the in-process queue."""

    def __init__(self, svc: Services) -> None:
        self.timetable = Timetable(svc.queue, LocalLease(svc.settings.scheduler_lease_seconds),
                                   cron_jobs(svc.settings))
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="scheduler", daemon=True)

    def start(self) -> EmbeddedScheduler:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        while True:
            try:
                self.timetable.tick()
            except Exception:  # logged and tried again at the next tick; the thread lives on
                log.exception("scheduler tick failed")
            if self._stop.wait(self.timetable.sleep_seconds()):
                return
