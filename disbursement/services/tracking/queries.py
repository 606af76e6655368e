"""Read models shared by the API, the console and the CLI."""
from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from disbursement.db.models import Household, PaymentInstruction, Transfer, TransferEvent, as_utc


def transfer_view(session: Session, reference: str) -> dict | None:
    row = session.execute(
        select(Transfer, PaymentInstruction, Household.household_id)
        .join(PaymentInstruction, PaymentInstruction.id == Transfer.instruction_id)
        .join(Household, Household.id == PaymentInstruction.household_pk)
        .where(Transfer.reference == reference)).first()
    if row is None:
        return None
    transfer, instruction, household_id = row
    events = session.execute(select(TransferEvent).where(TransferEvent.transfer_id == transfer.id)
                             .order_by(TransferEvent.id)).scalars().all()
    return {
        "reference": transfer.reference, "status": transfer.status,
        "amount_centimes": transfer.amount_centimes, "currency": transfer.currency,
        "partner": transfer.partner_code, "channel": transfer.channel,
        "attempt": transfer.attempt, "batch_id": transfer.batch_id,
        "service_point": transfer.service_point, "status_reason": transfer.status_reason,
        "reconciliation": transfer.recon_outcome,
        "instruction": {"program": instruction.program, "period": instruction.period,
                        "household_id": household_id, "lines": instruction.lines,
                        "route_reason": instruction.route_reason},
        "timeline": [{"at": as_utc(e.at).isoformat(), "from": e.from_status, "to": e.to_status,
                      "source": e.source, "actor": e.actor, "detail": e.detail}
                     for e in events]}
