"""What an RQ worker runs. RQ imports a job's function by its module path and
calls it with the ids only (JSON-serialised), so each job has a module-level
entry function here. The Services the jobs run with are the ones the worker
was built with (`disburse worker` builds them once through the composition
root): `ServicesWorker` sets them in a context variable around each job; a job
performed by any other worker fails loudly instead of guessing its wiring."""
from __future__ import annotations

from collections.abc import Callable
from contextvars import ContextVar
from typing import Any

from rq import Queue, SimpleWorker
from rq.executions import Execution
from rq.job import Job

from disbursement.jobs.catalog import perform
from disbursement.services.ports import JobName, Services

_services: ContextVar[Services] = ContextVar("disburse_worker_services")


class NoWorkerServices(RuntimeError):
    """Raised when a job runs outside a `ServicesWorker` (e.g. a bare `rq worker`)."""


class ServicesWorker(SimpleWorker):
    """An RQ SimpleWorker whose jobs run with the Services it was given. It
    performs jobs in its own process: one set of metrics files per worker."""

    def __init__(self, *args: Any, services: Services, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.services = services

    def perform_job(self, job: Job, queue: Queue, execution: Execution) -> bool:
        token = _services.set(self.services)
        try:
            return super().perform_job(job, queue, execution)
        finally:
            _services.reset(token)


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


ENTRY_POINTS: dict[JobName, Callable[..., object]] = {
    JobName.DISPATCH_CHUNK: dispatch_chunk,
    JobName.NOTIFY_CHUNK: notify_chunk,
    JobName.RUN_EXPIRY: run_expiry,
    JobName.RUN_PLAN: run_plan,
    JobName.RUN_IMPORT: run_import,
    JobName.COLLECT_PARTNER_FILES: collect_partner_files,
    JobName.COLLECT_ALL_PARTNER_FILES: collect_all_partner_files,
    JobName.QUERY_IN_DOUBT: query_in_doubt,
}
