"""Job functions for work started from the console: they take the Services they
run with and a job id only. A job already done or failed is not run again."""
from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

from disbursement.db.models.console import ConsoleJob
from disbursement.services import progress as console_jobs
from disbursement.services.cycles import planning
from disbursement.services.officers import users
from disbursement.services.ports import Services
from disbursement.services.registry import importing as registry

# What a console job does, given its services, its row, the officer who
# started it and a progress counter; returns the result shown to the officer.
Work = Callable[[Services, ConsoleJob, users.Actor, console_jobs.Progress], dict[str, Any]]


def _actor(svc: Services, username: str) -> users.Actor:
    with svc.uow() as session:
        return users.actor_by_name(session, username)


def _run(svc: Services, job_id: int, work: Work) -> dict[str, Any]:
    job = console_jobs.load(svc, job_id)
    if job.status in ("done", "failed"):
        return {"job_id": job_id, "status": job.status}
    console_jobs.mark(svc, job_id, "running")
    progress = console_jobs.Progress(svc, job_id)
    try:
        result = work(svc, job, _actor(svc, job.created_by), progress)
    except Exception as exc:
        # Recorded for the officer, then raised so the queue sees the failure.
        console_jobs.mark(svc, job_id, "failed", error=f"{type(exc).__name__}: {exc}",
                          done=progress.done)
        raise
    console_jobs.mark(svc, job_id, "done", result=result, done=progress.done)
    return {"job_id": job_id, "status": "done"}


def _plan(svc: Services, job: ConsoleJob, actor: users.Actor,
          progress: console_jobs.Progress) -> dict[str, Any]:
    result = planning.plan_cycle(svc, job.params["program"], job.params["period"], actor,
                                 progress=progress)
    return dataclasses.asdict(result)


def _import_file(svc: Services, job: ConsoleJob, actor: users.Actor,
                 progress: console_jobs.Progress) -> dict[str, Any]:
    path = Path(job.params["path"])
    try:
        with path.open("rb") as stream:
            result = registry.import_households(svc, stream, job.params["filename"], actor,
                                                job.params["valid_rows_only"],
                                                progress=progress)
    finally:
        path.unlink(missing_ok=True)
    return dataclasses.asdict(result)


def run_plan(svc: Services, job_id: int) -> dict[str, Any]:
    return _run(svc, job_id, _plan)


def run_import(svc: Services, job_id: int) -> dict[str, Any]:
    return _run(svc, job_id, _import_file)
