"""Our side of a conformance scenario: the transfers a harness sends, written
into our database as if planned, approved and released for its partner, so
partner messages can be applied through `confirmations.apply` and chunks
dispatched through `dispatch.dispatch_chunk`."""
from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, select

from connectors.base import OutboundTransfer
from disbursement.bootstrap import Services
from disbursement.db.models import (
    Batch,
    Cycle,
    Household,
    LedgerLine,
    LedgerPosting,
    OutboxItem,
    PaymentInstruction,
    RegistryImport,
    Transfer,
    TransferEvent,
)
from disbursement.services.batches.approval import DISPATCH_KIND
from disbursement.services.ledger import postings as ledger

PROGRAM, PERIOD = "asd", "2026-12"


def seed_transfers(svc: Services, partner_code: str, transfers: Sequence[OutboundTransfer],
                   status: str = "sent", wallet_tier: int | None = 3) -> int:
    """Writes `transfers` for `partner_code` in one released batch (chunk 0) with
    its release posted and, for `queued` ones, the outbox item. Returns the batch id."""
    with svc.uow() as session:
        imported = RegistryImport(filename="conformance.csv", checksum=transfers[0].reference,
                                  file_format="csv", status="imported", imported_by="test")
        cycle = session.execute(select(Cycle).where(Cycle.program == PROGRAM,
                                                    Cycle.period == PERIOD)).scalar_one_or_none()
        cycle = cycle or Cycle(program=PROGRAM, period=PERIOD, planned_by="test")
        session.add_all([imported, cycle])
        session.flush()
        seq = len(session.execute(select(Batch.id).where(Batch.cycle_id == cycle.id)).all()) + 1
        batch = Batch(cycle_id=cycle.id, partner_code=partner_code, seq=seq, status="released",
                      transfer_count=len(transfers),
                      total_centimes=sum(t.amount_centimes for t in transfers), currency="MAD",
                      approvals_required=1, created_by="test")
        session.add(batch)
        session.flush()
        for t in transfers:
            household = Household(
                household_id=f"H-{t.reference}", cin_hash=t.reference,
                pii=svc.vault.seal({"cin": t.national_id, "phone": t.phone,
                                    "account": t.account,
                                    "wallet_phone": t.phone if t.channel == "wallet" else None}),
                head_name=t.beneficiary_name, region_code=t.region_code, province_code="011",
                commune_code="011001", score_micro=1, children_0_5=0,
                children_schooled_6_20=0, children_unschooled_6_20=0, disabled_children=0,
                orphan=False, flat_rate=True, channel=t.channel, partner_code=partner_code,
                wallet_tier=wallet_tier if t.channel == "wallet" else None,
                import_id=imported.id)
            session.add(household)
            session.flush()
            instruction = PaymentInstruction(
                cycle_id=cycle.id, program=PROGRAM, period=PERIOD, household_pk=household.id,
                amount_centimes=t.amount_centimes, currency=t.currency, lines=[],
                partner_code=partner_code, route_reason="conformance")
            session.add(instruction)
            session.flush()
            transfer = Transfer(instruction_id=instruction.id, batch_id=batch.id,
                                reference=t.reference, partner_code=partner_code,
                                channel=t.channel, amount_centimes=t.amount_centimes,
                                currency=t.currency, status=status, chunk_no=0)
            session.add(transfer)
            session.flush()
            session.add(TransferEvent(transfer_id=transfer.id, from_status=None,
                                      to_status=status, source="system", actor="test"))
        ledger.post_release(session, PROGRAM, PERIOD, partner_code, batch.total_centimes,
                            batch.id)
        if status == "queued":
            session.add(OutboxItem(kind=DISPATCH_KIND, batch_id=batch.id, chunk_no=0))
        session.commit()
        return batch.id


def statuses(svc: Services, references: Sequence[str]) -> dict[str, str]:
    with svc.uow() as session:
        return dict(session.execute(select(Transfer.reference, Transfer.status)
                                    .where(Transfer.reference.in_(list(references)))).all())


def footprint(svc: Services) -> tuple:
    """Everything applying a partner message may change."""
    with svc.uow() as session:
        return (session.execute(select(Transfer.reference, Transfer.status,
                                       Transfer.status_reason, Transfer.service_point)
                                .order_by(Transfer.reference)).all(),
                *(session.execute(select(func.count()).select_from(model)).scalar_one()
                  for model in (TransferEvent, LedgerPosting, LedgerLine)))


def outbox_item(svc: Services, batch_id: int) -> OutboxItem:
    with svc.uow() as session:
        return session.execute(select(OutboxItem).where(
            OutboxItem.batch_id == batch_id)).scalar_one()
