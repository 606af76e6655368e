"""Cancellation of a transfer not yet collected, confirmed by the partner.

A transfer that never reached a partner (pending approval, approved, on hold)
is cancelled here at once. One the partner holds (`sent`, `available`) is
cancelled only when the partner says it is: we ask, and its answer decides. A
transfer being dispatched (`queued`, `unknown`) or already over is refused.
Every request is audited, whatever the answer.
"""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from connectors.base import AmbiguousOutcome, PartnerStatus, RetryableError, TerminalError
from disbursement.db.models import Transfer
from disbursement.domain.errors import BadInput, Conflict, NotFound, Unavailable
from disbursement.domain.states import Role
from disbursement.domain.states import TransferStatus as S
from disbursement.services.ledger import postings as ledger
from disbursement.services.officers import audit
from disbursement.services.officers.users import Actor
from disbursement.services.ports import Services
from disbursement.services.tracking import transitions

NEVER_SENT = (S.PENDING_APPROVAL, S.APPROVED, S.ON_HOLD)
HELD_BY_PARTNER = (S.SENT, S.AVAILABLE)
REASON_MAX_CHARS = 200


class TransferNotFound(NotFound, LookupError):
    """Raised when no transfer has the given reference."""


class CancelRefused(Conflict):
    """Raised when a transfer cannot be cancelled: it is being dispatched, is
    already over, or the partner refuses (for instance: already collected)."""


class PartnerUnavailable(Unavailable):
    """Raised when the partner could not be asked (unreachable, no answer):
    nothing changed, ask again later."""


class CancelReasonMissing(BadInput, ValueError):
    """Raised when a cancellation comes without a reason."""


@dataclass
class CancelResult:
    reference: str
    status: str
    partner_status: str | None
    detail: str


def cancel_transfer(svc: Services, reference: str, reason: str, actor: Actor) -> CancelResult:
    actor.require(Role.MAKER, Role.APPROVER)
    reason = (reason or "").strip()[:REASON_MAX_CHARS]
    if not reason:
        raise CancelReasonMissing("a cancellation needs a reason")
    with svc.uow() as session:
        transfer = _load(session, reference)
        status = S(transfer.status)
        if status in NEVER_SENT:
            moved = transitions.move(session, [transfer.id], S.CANCELLED, source="officer",
                                     actor=actor.username, detail=f"cancelled: {reason}",
                                     sources=NEVER_SENT)
            _audit(session, actor, reference, reason, None, bool(moved))
            session.commit()
            return CancelResult(reference, S.CANCELLED.value, None, "never sent: cancelled here")
        if status not in HELD_BY_PARTNER:
            raise CancelRefused(f"transfer {reference} is {status.value}: only a transfer not "
                                "yet sent, or sent and not collected, can be cancelled")
        partner_code, transfer_id = transfer.partner_code, transfer.id
    answer = _ask_partner(svc, partner_code, reference)
    with svc.uow() as session:
        moved = []
        if answer == PartnerStatus.CANCELLED:
            moved = transitions.move(session, [transfer_id], S.CANCELLED, source="partner",
                                     actor=partner_code,
                                     detail=f"cancellation confirmed by the partner: {reason}",
                                     sources=HELD_BY_PARTNER)
            ledger.post_cancellations(session, moved, f"transfer {reference} cancelled")
        _audit(session, actor, reference, reason, answer.value, bool(moved))
        session.commit()
        final_status = session.execute(select(Transfer.status).where(
            Transfer.id == transfer_id)).scalar_one()
    if answer != PartnerStatus.CANCELLED:
        raise CancelRefused(f"partner {partner_code} did not cancel {reference}: "
                            f"it reports the transfer {answer.value}")
    return CancelResult(reference, final_status, answer.value, "cancelled by the partner")


def _load(session: Session, reference: str) -> Transfer:
    transfer = session.execute(select(Transfer).where(
        Transfer.reference == reference)).scalar_one_or_none()
    if transfer is None:
        raise TransferNotFound(f"no transfer with reference {reference}")
    return transfer


def _ask_partner(svc: Services, partner_code: str, reference: str) -> PartnerStatus:
    connector = svc.connector(partner_code)
    try:
        return connector.cancel(reference)
    except (RetryableError, AmbiguousOutcome) as exc:
        raise PartnerUnavailable(f"partner {partner_code} could not be asked to cancel "
                                 f"{reference}; nothing changed, try again: {exc}") from exc
    except TerminalError as exc:
        raise CancelRefused(f"partner {partner_code} refused to cancel {reference}: {exc}") from exc
    finally:
        getattr(connector, "close", lambda: None)()


def _audit(session: Session, actor: Actor, reference: str, reason: str,
           partner_status: str | None, cancelled: bool) -> None:
    audit.record(session, actor.username, "transfer.cancel", "transfer", reference,
                 {"reason": reason, "partner_status": partner_status, "cancelled": cancelled})
