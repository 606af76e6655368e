"""Expiry: a transfer not collected within its program's window becomes
`expired`.

The window (`expiry_days` in the program's TOML, default 30) counts from the
moment the transfer entered its current state, `available` (or `sent` when
the partner never said it was available), read from the transfer's events so
no clock of ours is trusted twice. No money moves on expiry: the funds stay
at the partner (clearing) until it returns them (`returns`). The same run also
escalates expected reconciliation items whose statement SLA has passed.
Running it twice changes nothing the second time.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from disbursement.db.models import PaymentInstruction, Transfer, TransferEvent, utcnow
from disbursement.domain.states import TransferStatus as S
from disbursement.services.officers import audit
from disbursement.services.officers.users import Actor
from disbursement.services.ports import Services
from disbursement.services.tracking import transitions
from reconciliation import exceptions
from reconciliation import policy as recon_policy

EXPIRABLE = (S.AVAILABLE, S.SENT)
IDS_PER_STEP = 5_000


@dataclass
class ExpiryReport:
    as_of: str
    expired: dict[str, int] = field(default_factory=dict)   # program -> transfers
    escalated: int = 0

    def as_dict(self) -> dict:
        return {"as_of": self.as_of, "expired": self.expired, "escalated": self.escalated}


def _cutoff(as_of: date, days: int) -> datetime:
    return datetime.combine(as_of - timedelta(days=days), time(), tzinfo=UTC)


def due_for_expiry(session: Session, program: str, state: S, cutoff: datetime) -> list[int]:
    """Transfers of `program` in `state` since before `cutoff`."""
    entered = func.max(TransferEvent.at)
    return list(session.execute(
        select(Transfer.id)
        .join(PaymentInstruction, PaymentInstruction.id == Transfer.instruction_id)
        .join(TransferEvent, (TransferEvent.transfer_id == Transfer.id)
              & (TransferEvent.to_status == state.value))
        .where(PaymentInstruction.program == program, Transfer.status == state.value)
        .group_by(Transfer.id).having(entered < cutoff)).scalars())


def run(svc: Services, actor: Actor, as_of: date | None = None) -> ExpiryReport:
    """Expires what is due on `as_of` (default today, UTC) in every program."""
    as_of = as_of or utcnow().date()
    report = ExpiryReport(as_of.isoformat())
    with svc.uow() as session:
        for code in sorted(svc.programs):
            policy = recon_policy.program(svc.programs, code)
            cutoff = _cutoff(as_of, policy.expiry_days)
            moved = 0
            for state in EXPIRABLE:
                ids = due_for_expiry(session, code, state, cutoff)
                for start in range(0, len(ids), IDS_PER_STEP):
                    moved += len(transitions.move(
                        session, ids[start:start + IDS_PER_STEP], S.EXPIRED, source="system",
                        actor=actor.username, sources=[state],
                        detail=f"not collected within {policy.expiry_days} days ({state.value})"))
            report.expired[code] = moved
        report.escalated = exceptions.escalate(
            session, datetime.combine(as_of, time(), tzinfo=UTC))
        if any(report.expired.values()) or report.escalated:
            audit.record(session, actor.username, "expiry.run", "expiry", as_of.isoformat(),
                         report.as_dict())
        session.commit()
    return report
