"""The job-queue adapters: RQ on Redis in production, a thread in this process
in the embedded mode. Both implement `services.ports.JobQueue` and run the same
job functions (`jobs.catalog`); jobs carry ids only."""
from __future__ import annotations

import logging
import queue
import re
import threading
import time

from redis import Redis
from rq import Queue, Retry, Worker
from rq.exceptions import NoSuchJobError
from rq.job import Job, JobStatus
from rq.serializers import JSONSerializer

from disbursement.domain.backoff import schedule, whole_seconds
from disbursement.jobs.catalog import perform
from disbursement.jobs.lease import lease_ttl_seconds
from disbursement.jobs.worker import ENTRY_POINTS
from disbursement.services.ports import JobName, JobQueue, Services

log = logging.getLogger(__name__)

QUEUE_NAME = "disburse"
# Exponential backoff with jitter, drawn afresh for every job (issue 3), so
# jobs that failed together do not retry together.
RQ_RETRIES, RQ_RETRY_BASE_SECONDS, RQ_RETRY_CAP_SECONDS = 5, 2.0, 300.0
IN_PROCESS_RETRIES, IN_PROCESS_RETRY_BASE_SECONDS, IN_PROCESS_RETRY_CAP_SECONDS = 5, 0.2, 4.0
# The dashboard and the readiness check must answer even when Redis does not.
FIGURES_TIMEOUT_SECONDS = 2
# A job waiting, running or waiting for its retry: enqueueing it again adds nothing.
LIVE_JOB_STATES = frozenset({JobStatus.QUEUED, JobStatus.STARTED, JobStatus.SCHEDULED,
                             JobStatus.DEFERRED})


def job_id(job: JobName, args: tuple[int | str, ...]) -> str:
    """One RQ job id per job and arguments (`dispatch_chunk-42`): the sweeper
    may enqueue an outbox item every 30 s without piling up copies of it."""
    return "-".join([job.value, *(re.sub(r"[^A-Za-z0-9_]", "_", str(a)) for a in args)])


class RQJobQueue:
    """Enqueues a job's module-level entry function (`jobs.worker`) with its ids;
    a `disburse worker` performs it with the Services it built."""

    def __init__(self, redis_url: str) -> None:
        self.name = QUEUE_NAME
        self.redis_url = redis_url
        self.connection = Redis.from_url(redis_url)
        self.queue = Queue(QUEUE_NAME, connection=self.connection, serializer=JSONSerializer)

    def enqueue(self, job: JobName, *args: int | str) -> None:
        """Queues `job` unless the same job with the same ids is already waiting
        or running (jobs are idempotent: a second copy would only cost time). A
        finished or failed copy is replaced."""
        identity = job_id(job, args)
        try:
            previous = Job.fetch(identity, connection=self.connection,
                                 serializer=JSONSerializer)
        except NoSuchJobError:
            previous = None
        if previous is not None:
            if previous.get_status(refresh=False) in LIVE_JOB_STATES:
                return
            previous.delete()
        intervals = whole_seconds(schedule(RQ_RETRIES, RQ_RETRY_BASE_SECONDS,
                                           RQ_RETRY_CAP_SECONDS))
        self.queue.enqueue(ENTRY_POINTS[job], *args, job_id=identity,
                           retry=Retry(max=RQ_RETRIES, interval=intervals))

    def drain(self, timeout_seconds: float = 600) -> None:
        """Waits until workers have emptied the queue (used by the CLI and tests)."""
        deadline = time.monotonic() + timeout_seconds
        while self.queue.count or self.queue.started_job_registry.count:
            if time.monotonic() > deadline:
                raise TimeoutError(f"queue {QUEUE_NAME} not drained in {timeout_seconds}s")
            time.sleep(0.1)

    def figures(self) -> dict[str, int]:
        """Jobs waiting, live workers (registered and heard within their TTL: a
        worker killed with SIGKILL stays in RQ's set until a cleaning, but its
        key expires) and the scheduler's lease. Raises
        redis.exceptions.ConnectionError when Redis does not answer."""
        with Redis.from_url(self.redis_url, socket_timeout=FIGURES_TIMEOUT_SECONDS) as connection:
            waiting = Queue(QUEUE_NAME, connection=connection)
            return {"rq_queued": waiting.count,
                    "rq_workers": len(Worker.all(queue=waiting)),
                    "scheduler_lease_ttl_seconds": lease_ttl_seconds(connection)}


class InProcessJobQueue:
    """One background thread runs jobs in order with the Services this queue was
    built for, retrying a failed job a few times; what still fails stays pending
    in the outbox for the sweeper."""

    def __init__(self, services: Services) -> None:
        self.name = "in-process"
        self._services = services
        self._jobs: queue.Queue[tuple[JobName, tuple[int | str, ...]]] = queue.Queue()
        # Jobs waiting to start: the same job with the same ids is not queued twice.
        self._waiting: set[tuple[JobName, tuple[int | str, ...]]] = set()
        self._waiting_lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="in-process-jobs", daemon=True)
        self._thread.start()
        self.failures: list[str] = []

    def enqueue(self, job: JobName, *args: int | str) -> None:
        with self._waiting_lock:
            if (job, args) in self._waiting:
                return
            self._waiting.add((job, args))
        self._jobs.put((job, args))

    def drain(self, timeout_seconds: float = 600) -> None:
        deadline = time.monotonic() + timeout_seconds
        while self._jobs.unfinished_tasks:
            if time.monotonic() > deadline:
                raise TimeoutError(f"in-process jobs not drained in {timeout_seconds}s")
            time.sleep(0.02)

    def figures(self) -> dict[str, int]:
        return {}

    def _run(self) -> None:
        while True:
            job, args = self._jobs.get()
            with self._waiting_lock:
                self._waiting.discard((job, args))
            try:
                self._perform_with_retries(job, args)
            finally:
                self._jobs.task_done()

    def _perform_with_retries(self, job: JobName, args: tuple[int | str, ...]) -> None:
        delays = schedule(IN_PROCESS_RETRIES, IN_PROCESS_RETRY_BASE_SECONDS,
                          IN_PROCESS_RETRY_CAP_SECONDS)
        for delay in [*delays, None]:
            try:
                perform(self._services, job, *args)
                return
            except Exception as exc:  # recorded and retried, then left to the sweeper
                log.warning("job failed", extra={"job": job.value, "error": str(exc)})
                if delay is None:
                    self.failures.append(f"{job.value}{args}: {exc}")
                else:
                    time.sleep(delay)


def queue_for(services: Services) -> JobQueue:
    """The queue the composition root hands to `services`: RQ when Redis is
    configured, otherwise a thread running jobs with these very services."""
    redis_url = services.settings.redis_url
    return RQJobQueue(redis_url) if redis_url else InProcessJobQueue(services)
