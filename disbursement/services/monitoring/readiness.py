"""Readiness checks: can this process do useful work right now?

Each check answers {"ok": bool, "detail": str}; none raises. A check that does
not apply (no Redis in the embedded mode) is ok and says why. With Redis, the
service is ready when the database is at head, Redis answers, at least one RQ
worker is alive (heard within its TTL) and a scheduler holds its lease (it
renews it every few seconds, so a held lease means it ran just now)."""
from __future__ import annotations

from functools import lru_cache

from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import text

from disbursement.db.migrate import alembic_config


def _result(ok: bool, detail: str) -> dict:
    return {"ok": ok, "detail": detail}


def _failure(exc: Exception) -> dict:
    # The exception's type and first line only: URLs with passwords stay out.
    first_line = str(exc).splitlines()[0][:200] if str(exc) else ""
    return _result(False, f"{type(exc).__name__}: {first_line}")


def check(svc) -> dict[str, dict]:
    checks: dict[str, dict] = {}
    try:
        with svc.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
            current = set(MigrationContext.configure(conn).get_current_heads())
        checks["database"] = _result(True, svc.engine.dialect.name)
        checks["migrations"] = _migrations(current, svc)
    except Exception as exc:  # readiness reports failures, it never raises them
        checks["database"] = _failure(exc)
        checks["migrations"] = _result(False, "database unreachable")
    if not svc.settings.redis_url:
        checks["redis"] = _result(True, "not configured: jobs run in-process")
        checks["workers"] = _result(True, "in-process")
        checks["scheduler"] = _result(True, "in-process")
        return checks
    try:
        figures = svc.queue.figures()
        checks["redis"] = _result(True, "answers")
        workers = figures["rq_workers"]
        checks["workers"] = _result(workers > 0, f"{workers} RQ worker(s) registered"
                                    if workers else "no RQ worker registered on the queue")
        checks["scheduler"] = _scheduler(figures["scheduler_lease_ttl_seconds"],
                                         svc.settings.scheduler_lease_seconds)
    except Exception as exc:
        checks["redis"] = _failure(exc)
        checks["workers"] = _result(False, "Redis unreachable")
        checks["scheduler"] = _result(False, "Redis unreachable")
    return checks


def _scheduler(lease_ttl_seconds: int, lease_seconds: int) -> dict:
    if lease_ttl_seconds <= 0:
        return _result(False, "no scheduler holds the lease: run `disburse scheduler`")
    renewed = max(lease_seconds - lease_ttl_seconds, 0)
    return _result(True, f"active, lease renewed {renewed}s ago")


@lru_cache(maxsize=1)
def code_heads() -> frozenset[str]:
    """The migration heads this code ships (read once: they cannot change while it runs)."""
    return frozenset(ScriptDirectory.from_config(alembic_config("sqlite://")).get_heads())


def _migrations(current: set[str], svc) -> dict:
    heads = code_heads()
    if current == heads:
        return _result(True, f"at head {', '.join(sorted(heads))}")
    shown = ", ".join(sorted(current)) or "none"
    return _result(False, f"database at {shown}, code expects {', '.join(sorted(heads))}")
