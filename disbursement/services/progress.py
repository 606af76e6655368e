"""Long work started from the console (registry import, cycle planning) runs
as a job with a progress row, so the page that started it, or any other,
shows how far it got.

The use case itself runs in one transaction; progress is written beside it
on a connection of its own, so it is visible before the use case commits.
SQLite has one writer at a time, so there the progress of a running job is
kept in this process's memory (the embedded mode runs jobs in-process)."""
from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import func, select, update

from disbursement.db.models import Household, utcnow
from disbursement.db.models.console import ConsoleJob
from disbursement.domain.states import Role
from disbursement.services.cycles.planning import UnknownProgram, parse_period
from disbursement.services.officers.users import Actor
from disbursement.services.ports import JobName, Services

PROGRESS_EVERY_ROWS = 1_000
_memory: dict[int, int] = {}
_memory_lock = threading.Lock()


class JobNotFound(LookupError):
    """Raised when no console job has the given id."""


@dataclass(frozen=True)
class JobView:
    id: int
    kind: str
    status: str
    done: int
    total: int | None
    result: dict | None
    error: str | None
    created_by: str


def _create(svc: Services, actor: Actor, kind: str, params: dict, total: int | None) -> int:
    with svc.uow() as session:
        job = ConsoleJob(kind=kind, status="queued", params=params, done=0, total=total,
                         created_by=actor.username)
        session.add(job)
        session.commit()
        return job.id


def start_plan(svc: Services, actor: Actor, program: str, period: str) -> int:
    """Queues the planning of a cycle; returns the job id."""
    actor.require(Role.MAKER)
    parse_period(period)
    rules = svc.programs.get(program)
    if rules is None:
        raise UnknownProgram(f"unknown program {program!r}")
    with svc.uow() as session:
        eligible = session.execute(select(func.count()).select_from(Household).where(
            Household.score_micro <= rules.score_max_micro,
            Household.suspended.is_(False))).scalar_one()
    job_id = _create(svc, actor, "plan", {"program": program, "period": period}, eligible)
    svc.queue.enqueue(JobName.RUN_PLAN, job_id)
    return job_id


def start_import(svc: Services, actor: Actor, path: Path, filename: str,
                 valid_rows_only: bool) -> int:
    """Queues the import of an uploaded registry extract saved at `path`."""
    actor.require(Role.MAKER)
    with path.open("rb") as fh:
        lines = sum(chunk.count(b"\n") for chunk in iter(lambda: fh.read(1 << 20), b""))
    rows = max(lines - 1, 0) if filename.lower().endswith(".csv") else lines
    job_id = _create(svc, actor, "import", {"path": str(path), "filename": filename,
                                            "valid_rows_only": valid_rows_only}, rows)
    svc.queue.enqueue(JobName.RUN_IMPORT, job_id)
    return job_id


class Progress:
    """A callable counting rows done, written every PROGRESS_EVERY_ROWS."""

    def __init__(self, svc: Services, job_id: int) -> None:
        self.svc, self.job_id, self.done, self._written = svc, job_id, 0, 0
        self._in_memory = svc.engine.dialect.name == "sqlite"

    def __call__(self, rows: int = 1) -> None:
        self.done += rows
        if self.done - self._written >= PROGRESS_EVERY_ROWS:
            self.flush()

    def flush(self) -> None:
        self._written = self.done
        if self._in_memory:
            with _memory_lock:
                _memory[self.job_id] = self.done
            return
        with self.svc.engine.begin() as conn:
            conn.execute(update(ConsoleJob).where(ConsoleJob.id == self.job_id)
                         .values(done=self.done, updated_at=utcnow()))


def mark(svc: Services, job_id: int, status: str, *, result: dict | None = None,
         error: str | None = None, done: int | None = None) -> None:
    values = {"status": status, "updated_at": utcnow()}
    if result is not None:
        values["result"] = result
    if error is not None:
        values["error"] = error[:2000]
    if done is not None:
        values["done"] = done
    with svc.uow() as session:
        session.execute(update(ConsoleJob).where(ConsoleJob.id == job_id).values(**values))
        session.commit()
    if status in ("done", "failed"):
        with _memory_lock:
            _memory.pop(job_id, None)


def load(svc: Services, job_id: int) -> ConsoleJob:
    with svc.uow() as session:
        job = session.get(ConsoleJob, job_id)
    if job is None:
        raise JobNotFound(f"job {job_id} not found")
    return job


def view(svc: Services, job_id: int) -> JobView:
    job = load(svc, job_id)
    with _memory_lock:
        done = _memory.get(job_id, job.done)
    return JobView(job.id, job.kind, job.status, done, job.total, job.result, job.error,
                   job.created_by)
