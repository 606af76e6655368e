"""One table from job name to the function that does the job. The adapters
(the in-process queue, the RQ worker) look a job up here and call it with the
Services they were given, so no job reads a module global."""
from __future__ import annotations

from collections.abc import Callable

from disbursement.jobs import console_tasks, file_tasks, tasks
from disbursement.services.ports import JobName, Services

JOBS: dict[JobName, Callable[..., object]] = {
    JobName.DISPATCH_CHUNK: tasks.dispatch_chunk,
    JobName.NOTIFY_CHUNK: tasks.notify_chunk,
    JobName.RUN_EXPIRY: tasks.run_expiry,
    JobName.QUERY_IN_DOUBT: tasks.query_in_doubt,
    JobName.SWEEP_OUTBOX: tasks.sweep_outbox,
    JobName.RUN_PLAN: console_tasks.run_plan,
    JobName.RUN_IMPORT: console_tasks.run_import,
    JobName.COLLECT_PARTNER_FILES: file_tasks.collect_partner_files,
    JobName.COLLECT_ALL_PARTNER_FILES: file_tasks.collect_all_partner_files,
}


def perform(svc: Services, job: JobName, *args: int | str) -> object:
    """Runs `job` with `svc`; what the job raises goes to the caller (the queue retries)."""
    return JOBS[job](svc, *args)
