"""Where jobs go: RQ on Redis in production, a thread in this process in the
embedded mode. The same job functions run either way; they take ids only."""
from __future__ import annotations

import logging
import queue
import threading
import time
from typing import Callable, Protocol

log = logging.getLogger(__name__)

QUEUE_NAME = "disburse"
# Exponential backoff with jitter, drawn afresh for every job (issue 3), so
# jobs that failed together do not retry together.
RQ_RETRIES, RQ_RETRY_BASE_SECONDS, RQ_RETRY_CAP_SECONDS = 5, 2.0, 300.0
IN_PROCESS_RETRIES, IN_PROCESS_RETRY_BASE_SECONDS, IN_PROCESS_RETRY_CAP_SECONDS = 5, 0.2, 4.0


class JobQueue(Protocol):
    def enqueue(self, func: Callable[..., object], *args: object) -> None: ...

    def drain(self, timeout_seconds: float = 600) -> None: ...


class RQJobQueue:
    def __init__(self, redis_url: str) -> None:
        from redis import Redis
        from rq import Queue
        from rq.serializers import JSONSerializer

        self.connection = Redis.from_url(redis_url)
        self.queue = Queue(QUEUE_NAME, connection=self.connection, serializer=JSONSerializer)

    def enqueue(self, func: Callable[..., object], *args: object) -> None:
        from rq import Retry

        from disbursement.domain.backoff import schedule, whole_seconds

        intervals = whole_seconds(schedule(RQ_RETRIES, RQ_RETRY_BASE_SECONDS,
                                           RQ_RETRY_CAP_SECONDS))
        self.queue.enqueue(func, *args, retry=Retry(max=RQ_RETRIES, interval=intervals))

    def drain(self, timeout_seconds: float = 600) -> None:
        """Waits until workers have emptied the queue (used by the CLI and tests)."""
        deadline = time.monotonic() + timeout_seconds
        while self.queue.count or self.queue.started_job_registry.count:
            if time.monotonic() > deadline:
                raise TimeoutError(f"queue {QUEUE_NAME} not drained in {timeout_seconds}s")
            time.sleep(0.1)


class InProcessJobQueue:
    """One background thread runs jobs in order, retrying a failed job a few
    times; what still fails stays pending in the outbox for the sweeper."""

    def __init__(self) -> None:
        self._jobs: queue.Queue[tuple[Callable[..., object], tuple[object, ...]]] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="in-process-jobs", daemon=True)
        self._thread.start()
        self.failures: list[str] = []

    def enqueue(self, func: Callable[..., object], *args: object) -> None:
        self._jobs.put((func, args))

    def drain(self, timeout_seconds: float = 600) -> None:
        deadline = time.monotonic() + timeout_seconds
        while self._jobs.unfinished_tasks:
            if time.monotonic() > deadline:
                raise TimeoutError(f"in-process jobs not drained in {timeout_seconds}s")
            time.sleep(0.02)

    def _run(self) -> None:
        while True:
            func, args = self._jobs.get()
            from disbursement.domain.backoff import schedule

            delays = schedule(IN_PROCESS_RETRIES, IN_PROCESS_RETRY_BASE_SECONDS,
                              IN_PROCESS_RETRY_CAP_SECONDS)
            try:
                for delay in [*delays, None]:
                    try:
                        func(*args)
                        break
                    except Exception as exc:  # recorded and retried, then left to the sweeper
                        log.warning("job failed", extra={"job": func.__name__, "error": str(exc)})
                        if delay is None:
                            self.failures.append(f"{func.__name__}{args}: {exc}")
                        else:
                            time.sleep(delay)
            finally:
                self._jobs.task_done()


def make_queue(redis_url: str | None) -> JobQueue:
    return RQJobQueue(redis_url) if redis_url else InProcessJobQueue()
