"""Job functions: importable at module level, taking ids only, idempotent.

A worker process builds its services once from the environment; the embedded
mode (and tests) hand theirs in with `use()`.
"""
from __future__ import annotations

from disbursement.services.context import Services

_services: Services | None = None


def use(services: Services) -> None:
    global _services
    _services = services


def services() -> Services:
    global _services
    if _services is None:
        from disbursement import settings
        from disbursement.services.context import build

        _services = build(settings.load())
    return _services


def dispatch_chunk(outbox_id: int) -> dict:
    from disbursement import metrics
    from disbursement.services import dispatch

    with metrics.job("dispatch_chunk"):
        result = dispatch.dispatch_chunk(services(), outbox_id)
    return {"outbox_id": outbox_id, "sent": result.sent, "rejected": result.rejected,
            "resolved_unknown": result.resolved_unknown, "skipped": result.skipped}


def notify_chunk(outbox_id: int) -> dict:
    from disbursement.services import notify

    result = notify.notify_chunk(services(), outbox_id)
    return {"outbox_id": outbox_id, "sent": result.sent, "no_phone": result.no_phone,
            "skipped": result.skipped}
