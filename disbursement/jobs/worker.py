"""What an RQ worker runs. RQ imports a job's function by its module path and
calls it with the ids only (JSON-serialised), so each job has a module-level
entry function here. The Services the jobs run with are the ones the worker
was built with (`disburse worker` builds them once through the composition
root): `ServicesWorker` sets them in a context variable around each job; a job
performed by any other worker fails loudly instead of guessing its wiring.

Two faults RQ leaves to its user are handled here (issue 10): a worker whose
registration Redis lost (FLUSHALL, a restart without persistence) registers
again at its next heartbeat, and the scheduler child a worker forks (it moves
retries' delayed jobs to the queue) dies with its worker, even a SIGKILLed one."""
from __future__ import annotations

import ctypes
import logging
import os
import signal
import sys
from collections.abc import Callable
from contextvars import ContextVar
from typing import Any

from redis.client import Pipeline
from rq import Queue, SimpleWorker, worker_registration
from rq.defaults import DEFAULT_LOGGING_DATE_FORMAT, DEFAULT_LOGGING_FORMAT
from rq.executions import Execution
from rq.job import Job
from rq.scheduler import RQScheduler

from disbursement.jobs.catalog import perform
from disbursement.services.ports import JobName, Services

log = logging.getLogger(__name__)

_services: ContextVar[Services] = ContextVar("disburse_worker_services")

# How often a worker runs RQ's maintenance (registry cleaning, and taking over
# the delayed-jobs scheduler when no live worker runs it). RQ's default is 600.
MAINTENANCE_INTERVAL_SECONDS = 60
# prctl(2): ask the kernel for a signal when the parent process dies (Linux).
PR_SET_PDEATHSIG = 1


class NoWorkerServices(RuntimeError):
    """Raised when a job runs outside a `ServicesWorker` (e.g. a bare `rq worker`)."""


class ServicesWorker(SimpleWorker):
    """An RQ SimpleWorker whose jobs run with the Services it was given. It
    performs jobs in its own process: one set of metrics files per worker."""

    def __init__(self, *args: Any, services: Services, **kwargs: Any) -> None:
        kwargs.setdefault("worker_ttl", services.settings.worker_ttl_seconds)
        kwargs.setdefault("maintenance_interval", MAINTENANCE_INTERVAL_SECONDS)
        super().__init__(*args, **kwargs)
        self.services = services

    def perform_job(self, job: Job, queue: Queue, execution: Execution) -> bool:
        token = _services.set(self.services)
        try:
            return super().perform_job(job, queue, execution)
        finally:
            _services.reset(token)

    def heartbeat(self, timeout: int | None = None, pipeline: Pipeline | None = None) -> None:
        super().heartbeat(timeout, pipeline)
        if (pipeline is None and self.birth_date is not None
                and not self.connection.sismember(self.redis_workers_keys, self.key)):
            self._register_again()

    def _register_again(self) -> None:
        """Redis lost this worker's registration: without it the worker still
        takes jobs but no one counts it (/readyz says no worker)."""
        log.warning("worker registration lost (Redis lost its data?): registering again",
                    extra={"worker": self.name})
        with self.connection.pipeline() as pipeline:
            pipeline.hset(self.key, mapping=self.serialize())
            worker_registration.register(self, pipeline)
            pipeline.expire(self.key, self.worker_ttl + 60)
            pipeline.execute()

    def _start_scheduler(self, burst: bool = False, logging_level: str | None = "INFO",
                         date_format: str = DEFAULT_LOGGING_DATE_FORMAT,
                         log_format: str = DEFAULT_LOGGING_FORMAT) -> None:
        # RQ's own body, with a scheduler that dies with this worker.
        self.scheduler = ParentBoundScheduler(
            self.queues, connection=self.connection,
            logging_level=logging_level if logging_level is not None else self.log.level,
            date_format=date_format, log_format=log_format, serializer=self.serializer)
        self.scheduler.acquire_locks()
        if not self.scheduler.acquired_locks:
            return
        if not burst:
            self.scheduler.start()
            return
        try:
            self.scheduler.register_birth()
            self.scheduler.enqueue_scheduled_jobs()
        finally:
            self.scheduler.release_locks()
            self.scheduler.register_death()


class ParentBoundScheduler(RQScheduler):
    """RQ's scheduler of delayed jobs, forked by a worker. RQ's own child
    outlives a worker killed with SIGKILL and keeps refreshing its lock (36
    minutes seen, issue 10). This one stops when its worker is gone: at once on
    Linux (the kernel sends it SIGTERM), otherwise at its next heartbeat (every
    second); either way it releases its lock on the way out."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.parent_pid = os.getpid()

    def work(self) -> None:
        """Runs in the forked child."""
        _signal_on_parent_death(signal.SIGTERM)
        if os.getppid() != self.parent_pid:
            return  # the worker died before the signal was asked for
        super().work()

    def heartbeat(self) -> None:
        if os.getppid() != self.parent_pid:
            self.request_stop()
        super().heartbeat()


def _signal_on_parent_death(signum: int) -> None:
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signum, 0, 0, 0)


def _perform(job: JobName, *args: int | str) -> object:
    try:
        svc = _services.get()
    except LookupError:
        raise NoWorkerServices(
            f"job {job} runs outside `disburse worker`: no services to run it with") from None
    return perform(svc, job, *args)


def dispatch_chunk(outbox_id: int) -> object:
    return _perform(JobName.DISPATCH_CHUNK, outbox_id)


def notify_chunk(outbox_id: int) -> object:
    return _perform(JobName.NOTIFY_CHUNK, outbox_id)


def run_expiry(as_of: str | None = None) -> object:
    return _perform(JobName.RUN_EXPIRY, *([as_of] if as_of else []))


def run_plan(job_id: int) -> object:
    return _perform(JobName.RUN_PLAN, job_id)


def run_import(job_id: int) -> object:
    return _perform(JobName.RUN_IMPORT, job_id)


def collect_partner_files(partner_code: str) -> object:
    return _perform(JobName.COLLECT_PARTNER_FILES, partner_code)


def collect_all_partner_files() -> object:
    return _perform(JobName.COLLECT_ALL_PARTNER_FILES)


def query_in_doubt() -> object:
    return _perform(JobName.QUERY_IN_DOUBT)


def sweep_outbox() -> object:
    return _perform(JobName.SWEEP_OUTBOX)


ENTRY_POINTS: dict[JobName, Callable[..., object]] = {
    JobName.DISPATCH_CHUNK: dispatch_chunk,
    JobName.NOTIFY_CHUNK: notify_chunk,
    JobName.RUN_EXPIRY: run_expiry,
    JobName.RUN_PLAN: run_plan,
    JobName.RUN_IMPORT: run_import,
    JobName.COLLECT_PARTNER_FILES: collect_partner_files,
    JobName.COLLECT_ALL_PARTNER_FILES: collect_all_partner_files,
    JobName.QUERY_IN_DOUBT: query_in_doubt,
    JobName.SWEEP_OUTBOX: sweep_outbox,
}
