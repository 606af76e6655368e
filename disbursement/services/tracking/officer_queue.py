"""Opening items in the officers' exceptions queue, for statements
(reconciliation) and for partner messages that disagree with our records
(a `paid` for a cancelled transfer, an amount not the transfer's). Reading and
resolving them is `reconciliation.exceptions`."""
from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from disbursement.db.models import PaymentInstruction, Transfer, utcnow
from disbursement.db.models.ledger import ReconException
from disbursement.domain.states import UNSETTLED_EXCEPTIONS, ExceptionStatus
from reconciliation.matcher import Outcome

UNSETTLED = tuple(s.value for s in UNSETTLED_EXCEPTIONS)
IDS_PER_STATEMENT = 5_000


def open_for_transfers(session: Session, partner_code: str,
                       items: Sequence[tuple[int, Outcome, int, str, str]], *,
                       statement_id: int | None = None) -> int:
    """Opens one exception per (transfer id, type, amount, currency, detail),
    unless an unsettled one of that type exists for the transfer."""
    if not items:
        return 0
    ids = sorted({i[0] for i in items})
    existing: set[tuple[int | None, str]] = set()
    info = {}
    for start in range(0, len(ids), IDS_PER_STATEMENT):
        chunk = ids[start:start + IDS_PER_STATEMENT]
        existing.update((tid, kind) for tid, kind in session.execute(
            select(ReconException.transfer_id, ReconException.type)
            .where(ReconException.transfer_id.in_(chunk),
                   ReconException.status.in_(UNSETTLED))))
        info.update({r.id: r for r in session.execute(
            select(Transfer.id, Transfer.reference, PaymentInstruction.program,
                   PaymentInstruction.period)
            .join(PaymentInstruction, PaymentInstruction.id == Transfer.instruction_id)
            .where(Transfer.id.in_(chunk)))})
    now = utcnow()
    rows = []
    for tid, kind, amount, currency, detail in items:
        if (tid, kind.value) in existing:
            continue
        existing.add((tid, kind.value))
        rows.append({"type": kind.value, "status": ExceptionStatus.OPEN.value,
                     "partner_code": partner_code, "program": info[tid].program,
                     "period": info[tid].period, "statement_id": statement_id,
                     "transfer_id": tid, "reference": info[tid].reference,
                     "amount_centimes": amount, "currency": currency, "detail": detail[:200],
                     "since": now, "created_at": now})
    if rows:
        session.execute(ReconException.__table__.insert(), rows)
    return len(rows)
