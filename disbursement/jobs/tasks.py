"""Job functions: importable at module level, taking ids only, idempotent.

A worker process builds its services once from the environment; the embedded
mode (and tests) hand theirs in with `use()`.
"""
from __future__ import annotations

from disbursement.bootstrap import Services

_services: Services | None = None


def use(services: Services) -> None:
    global _services
    _services = services


def services() -> Services:
    global _services
    if _services is None:
        from disbursement import settings
        from disbursement.bootstrap import build

        _services = build(settings.load())
    return _services


def dispatch_chunk(outbox_id: int) -> dict:
    from disbursement import metrics
    from disbursement.services.dispatch import chunks as dispatch

    with metrics.job("dispatch_chunk"):
        result = dispatch.dispatch_chunk(services(), outbox_id)
    return {"outbox_id": outbox_id, "sent": result.sent, "rejected": result.rejected,
            "resolved_unknown": result.resolved_unknown, "skipped": result.skipped}


def notify_chunk(outbox_id: int) -> dict:
    from disbursement.services.dispatch import notify

    result = notify.notify_chunk(services(), outbox_id)
    return {"outbox_id": outbox_id, "sent": result.sent, "no_phone": result.no_phone,
            "skipped": result.skipped}


def run_expiry(as_of: str | None = None) -> dict:
    """The daily expiry job (issue 4): `as_of` is an ISO date, default today."""
    from datetime import date

    from disbursement.services.officers import users
    from reconciliation import expiry

    day = date.fromisoformat(as_of) if as_of else None
    return expiry.run(services(), users.SYSTEM, day).as_dict()
