"""Job functions of dispatch, notification and expiry: each takes the Services
it runs with, then ids only, and is idempotent (a chunk already sent, a text
already sent, a transfer already expired is skipped)."""
from __future__ import annotations

from datetime import date

from disbursement import metrics
from disbursement.services.dispatch import chunks as dispatch
from disbursement.services.dispatch import notify, recovery
from disbursement.services.officers import users
from disbursement.services.ports import Services
from reconciliation import expiry


def dispatch_chunk(svc: Services, outbox_id: int) -> dict:
    with metrics.job("dispatch_chunk"):
        result = dispatch.dispatch_chunk(svc, outbox_id)
    return {"outbox_id": outbox_id, "sent": result.sent, "rejected": result.rejected,
            "resolved_unknown": result.resolved_unknown, "skipped": result.skipped}


def notify_chunk(svc: Services, outbox_id: int) -> dict:
    result = notify.notify_chunk(svc, outbox_id)
    return {"outbox_id": outbox_id, "sent": result.sent, "no_phone": result.no_phone,
            "skipped": result.skipped}


def run_expiry(svc: Services, as_of: str | None = None) -> dict:
    """The daily expiry job (issue 4): `as_of` is an ISO date, default today."""
    day = date.fromisoformat(as_of) if as_of else None
    return expiry.run(svc, users.SYSTEM, day).as_dict()


def sweep_outbox(svc: Services) -> dict:
    """Re-enqueues the due pending outbox items (the scheduler's job): the
    dispatch work Redis lost comes back without anyone typing a command."""
    return {"enqueued": len(dispatch.sweep(svc))}


def query_in_doubt(svc: Services) -> dict:
    """Asks the partners about transfers in `sending` or `unknown` (the scheduler's job)."""
    return recovery.query_in_doubt(svc).as_dict()
