"""Test support for dispatch against one REST partner (BARID) over the `live`
fixture: an approved batch to release, the simulator's control endpoints, and
what our side recorded. Shared by the partner-fault tests so that none of them
imports another test module."""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import select

from disbursement.bootstrap import Services
from disbursement.db.models import OutboxItem, Transfer
from disbursement.services.batches import approval as batches
from tests.support.cycle import import_and_plan, partner_batch

PARTNER = "BARID"
HOUSEHOLDS = 40
SIMULATOR_TIMEOUT_SECONDS = 30


def approved_batch(svc: Services, officers, households_csv: Callable[[int], Path]) -> int:
    """One approved batch for PARTNER; the other partners' batches stay drafts."""
    plan = import_and_plan(svc, officers, households_csv(HOUSEHOLDS))
    batch_id = partner_batch(svc, plan, PARTNER)
    batches.submit(svc, batch_id, officers.maker)
    assert batches.approve(svc, batch_id, officers.approver).status == "approved"
    return batch_id


def call_simulator(live, method: str, path: str, payload: dict[str, Any] | None = None) -> Any:
    """A request to PARTNER's simulator (its `/_sim/...` controls and state)."""
    with httpx.Client(timeout=SIMULATOR_TIMEOUT_SECONDS) as client:
        response = client.request(method, f"{live.sims[PARTNER]}{path}", json=payload)
        response.raise_for_status()
        return response.json()


def transfer_statuses(svc: Services, batch_id: int) -> dict[str, str]:
    with svc.uow() as session:
        return dict(session.execute(select(Transfer.reference, Transfer.status)
                                    .where(Transfer.batch_id == batch_id)).all())


def outbox_item(svc: Services, batch_id: int) -> OutboxItem:
    """The batch's one outbox item (a batch of HOUSEHOLDS is one chunk)."""
    with svc.uow() as session:
        return session.execute(
            select(OutboxItem).where(OutboxItem.batch_id == batch_id)).scalar_one()
