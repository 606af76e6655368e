"""Re-issue of definitively rejected (or failed) transfers as new attempts.

A new attempt pays the same instruction with a new reference, attempt + 1, to
another partner covering the household (never one that already refused this
instruction, never one whose breaker is open), in a new draft batch of that
partner for the cycle: maker-checker applies to it and the ordinary release
posts its ledger. Only programs with `reissue_on_rejection = true` allow it.

Never two live attempts: the partial unique index on transfers says so, and a
concurrent re-issue of the same transfer loses on it (each transfer is tried in
its own savepoint, so one loser does not undo the others).

`reissue_references` is the use case of its own (CLI) and owns its transaction;
`reissue_in` works in a caller's transaction (an exception's resolution) and
never commits.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from disbursement.db.models import (
    Batch,
    Household,
    PaymentInstruction,
    Transfer,
    TransferEvent,
    utcnow,
)
from disbursement.domain.references import new_reference
from disbursement.domain.routing import FeeTableGap, route
from disbursement.domain.states import LIVE, BatchStatus, Role
from disbursement.domain.states import TransferStatus as S
from disbursement.services.dispatch.partner_health import open_partners
from disbursement.services.officers import audit
from disbursement.services.officers.users import Actor
from disbursement.services.ports import Services

REISSUABLE = (S.REJECTED.value, S.FAILED.value)


@dataclass
class ReissueReport:
    reissued: list[dict] = field(default_factory=list)
    refused: list[dict] = field(default_factory=list)
    batches_created: list[int] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {"reissued": self.reissued, "refused": self.refused,
                "batches_created": self.batches_created}


def program_allows_reissue(svc: Services, program: str) -> bool:
    rules = svc.programs.get(program)
    return rules is not None and rules.reissue_on_rejection


def reissue_references(svc: Services, references: list[str], actor: Actor) -> ReissueReport:
    """The use case behind the CLI: re-issues the transfers named by reference,
    in one transaction of its own."""
    actor.require(Role.MAKER, Role.APPROVER)
    with svc.uow() as session:
        found = dict(session.execute(select(Transfer.reference, Transfer.id).where(
            Transfer.reference.in_(references))).all())
        report = reissue_in(svc, session, [found[r] for r in references if r in found], actor)
        report.refused.extend({"reference": r, "reason": "no transfer with this reference"}
                              for r in references if r not in found)
        session.commit()
    return report


def reissue_in(svc: Services, session: Session, transfer_ids: list[int],
               actor: Actor) -> ReissueReport:
    """Re-issues `transfer_ids` in the caller's transaction and never commits it:
    the caller's use case (a re-issue of its own, or an exception's resolution)
    commits the new attempts together with its own changes, or neither."""
    # An approver resolving a reconciliation exception may ask for it too: the
    # new attempts land in a draft batch that still needs maker-checker.
    actor.require(Role.MAKER, Role.APPROVER)
    report = ReissueReport()
    unhealthy = open_partners(session)
    batches: dict[tuple[int, str], Batch] = {}
    for transfer_id in transfer_ids:
        old = session.get(Transfer, transfer_id)
        problem, partner = _plan(svc, session, old, unhealthy)
        if old is None or partner is None:
            report.refused.append({"reference": old.reference if old else str(transfer_id),
                                   "reason": problem})
            continue
        # Each transfer in its own savepoint: one loser of a concurrent re-issue
        # does not undo the others.
        savepoint = session.begin_nested()
        try:
            new = _new_attempt(svc, session, old, partner, actor, batches)
            savepoint.commit()
        except IntegrityError:
            savepoint.rollback()
            # The batch made in this savepoint is gone with it.
            batches = {k: b for k, b in batches.items() if b in session}
            report.refused.append({"reference": old.reference,
                                   "reason": "the instruction already has a live attempt"})
            continue
        report.reissued.append({"reference": old.reference, "new_reference": new.reference,
                                "partner": partner, "attempt": new.attempt,
                                "batch_id": new.batch_id})
    _close_batches(svc, session, batches.values())
    report.batches_created = sorted(b.id for b in batches.values())
    audit.record(session, actor.username, "transfer.reissue", "transfers",
                 ",".join(r["reference"] for r in report.reissued)[:64] or "-",
                 report.as_dict())
    return report


def _plan(svc: Services, session: Session, old: Transfer | None,
          unhealthy: set[str]) -> tuple[str | None, str | None]:
    """(why not, None) or (None, the partner of the new attempt)."""
    if old is None:
        return "no such transfer", None
    if old.status not in REISSUABLE:
        return f"transfer is {old.status}: only rejected or failed attempts are re-issued", None
    instruction = session.get_one(PaymentInstruction, old.instruction_id)
    if not program_allows_reissue(svc, instruction.program):
        return f"program {instruction.program} does not allow re-issue", None
    live = session.execute(select(Transfer.reference).where(
        Transfer.instruction_id == old.instruction_id,
        Transfer.status.in_([s.value for s in LIVE]))).scalars().first()
    if live is not None:
        return f"the instruction already has a live attempt ({live})", None
    tried = set(session.execute(select(Transfer.partner_code).where(
        Transfer.instruction_id == old.instruction_id)).scalars())
    household = session.get_one(Household, instruction.household_pk)
    candidates = {code: p for code, p in svc.partners.items()
                  if code not in tried and code not in unhealthy}
    rules = svc.programs[instruction.program]
    chosen = route(candidates, rules.default_partner_by_region, household.region_code,
                   old.channel, household.partner_code)
    if chosen.partner_code is None:
        return (f"no other partner covers region {household.region_code} for {old.channel} "
                f"(already tried: {', '.join(sorted(tried))})"), None
    try:
        svc.partners[chosen.partner_code].fee_for(old.channel, old.amount_centimes)
    except FeeTableGap as exc:
        return f"partner {chosen.partner_code}: {exc}", None
    return None, chosen.partner_code


def _new_attempt(svc: Services, session: Session, old: Transfer, partner: str, actor: Actor,
                 batches: dict[tuple[int, str], Batch]) -> Transfer:
    cycle_id = session.execute(select(Batch.cycle_id).where(Batch.id == old.batch_id)).scalar_one()
    batch = batches.get((cycle_id, partner))
    if batch is None:
        seq = session.execute(select(func.coalesce(func.max(Batch.seq), 0)).where(
            Batch.cycle_id == cycle_id, Batch.partner_code == partner)).scalar_one() + 1
        batch = Batch(cycle_id=cycle_id, partner_code=partner, seq=seq,
                      status=BatchStatus.DRAFT.value, transfer_count=0, total_centimes=0,
                      currency=old.currency, approvals_required=1, created_by=actor.username)
        session.add(batch)
        session.flush()
        batches[(cycle_id, partner)] = batch
    attempt = session.execute(select(func.max(Transfer.attempt)).where(
        Transfer.instruction_id == old.instruction_id)).scalar_one() + 1
    fee, _ = svc.partners[partner].fee_for(old.channel, old.amount_centimes)
    new = Transfer(instruction_id=old.instruction_id, batch_id=batch.id,
                   reference=new_reference(), attempt=attempt, partner_code=partner,
                   channel=old.channel, amount_centimes=old.amount_centimes,
                   currency=old.currency, fee_centimes=fee, status=S.PENDING_APPROVAL.value,
                   chunk_no=batch.transfer_count // svc.settings.chunk_size)
    session.add(new)
    session.flush()          # the partial unique index speaks here
    session.add(TransferEvent(
        transfer_id=new.id, from_status=None, to_status=S.PENDING_APPROVAL.value,
        source="officer", actor=actor.username,
        detail=(f"re-issue of {old.reference} "
                f"({old.partner_code}: {old.status_reason or old.status})")[:300]))
    batch.transfer_count += 1
    batch.total_centimes += old.amount_centimes
    session.flush()
    return new


def _close_batches(svc: Services, session: Session, batches) -> None:
    threshold = svc.settings.second_approval_above_centimes
    for batch in batches:
        session.execute(update(Batch).where(Batch.id == batch.id).values(
            approvals_required=2 if batch.total_centimes > threshold else 1,
            updated_at=utcnow()))
