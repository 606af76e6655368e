"""Test support for a cycle's officer steps, the way the console drives them:
import a registry extract and plan the cycle, then submit, approve (a second
approver where the amount asks for two) and release each batch. Shared so that
the tests that need a released cycle build it one way."""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from sqlalchemy import select

from disbursement.bootstrap import Services
from disbursement.db.models import Batch, Transfer
from disbursement.domain.states import TransferStatus as S
from disbursement.services.batches import approval as batches
from disbursement.services.cycles import planning
from disbursement.services.cycles.planning import PlanResult
from disbursement.services.registry import importing as registry
from disbursement.services.registry.generator import generate_households
from disbursement.services.tracking import transitions
from tests.support.console import write_extract

PROGRAM = "asd"
PERIOD = "2026-12"


def write_households(path: Path, overrides: Sequence[dict[str, str]], seed: int = 5,
                     score: str = "5.1") -> Path:
    """A registry extract of one generated (eligible) household per dict of
    `overrides`, each with those columns replaced; ids are RSU-00000001... by position."""
    rows = [{**row, "score": score, **changes} for row, changes in zip(
        generate_households(len(overrides), seed=seed), overrides, strict=True)]
    return write_extract(path, rows)


def import_and_plan(svc: Services, officers, path: Path) -> PlanResult:
    """The extract at `path` imported and the cycle planned by the maker."""
    with path.open("rb") as stream:
        registry.import_households(svc, stream, path.name, officers.maker)
    return planning.plan_cycle(svc, PROGRAM, PERIOD, officers.maker)


def partner_batch(svc: Services, plan: PlanResult, partner: str) -> int:
    """The id of the one batch the plan created for `partner`."""
    with svc.uow() as session:
        return session.execute(select(Batch.id).where(
            Batch.id.in_(plan.batches_created), Batch.partner_code == partner)).scalar_one()


def approve(svc: Services, officers, batch_id: int) -> None:
    """Submitted by the maker, approved by one approver or, when the batch
    needs two, by both."""
    batches.submit(svc, batch_id, officers.maker)
    if batches.approve(svc, batch_id, officers.approver).status != "approved":
        batches.approve(svc, batch_id, officers.approver2)


def approve_all(svc: Services, officers, plan: PlanResult) -> None:
    assert plan.batches_created, "the plan created no batch"
    for batch_id in plan.batches_created:
        approve(svc, officers, batch_id)


def release_all(svc: Services, officers, plan: PlanResult) -> None:
    """Each batch of the plan approved then released, and the dispatch jobs run."""
    assert plan.batches_created, "the plan created no batch"
    for batch_id in plan.batches_created:
        approve(svc, officers, batch_id)
        batches.release(svc, batch_id, officers.maker)
    svc.queue.drain()


def sent_references(svc: Services, officers, path: Path) -> dict[str, list[str]]:
    """The extract at `path` planned and approved, its transfers moved queued ->
    sent the way dispatch moves them (no partner called); the references by
    partner, sorted."""
    approve_all(svc, officers, import_and_plan(svc, officers, path))
    with svc.uow() as session:
        ids = session.execute(select(Transfer.id)).scalars().all()
        transitions.move(session, ids, S.QUEUED, source="officer", actor="maker",
                         detail="released")
        ids_by_partner: dict[str, list[int]] = {}
        for partner, transfer_id in session.execute(select(Transfer.partner_code, Transfer.id)):
            ids_by_partner.setdefault(partner, []).append(transfer_id)
        for partner, partner_ids in ids_by_partner.items():
            transitions.move(session, partner_ids, S.SENT, source="dispatch", actor=partner)
        session.commit()
        by_partner: dict[str, list[str]] = {}
        for partner, reference in session.execute(select(Transfer.partner_code, Transfer.reference)
                                                   .order_by(Transfer.reference)):
            by_partner.setdefault(partner, []).append(reference)
    return by_partner
