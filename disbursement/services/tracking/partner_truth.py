"""The partner's word applied to our transfers: one function for every way it
reaches us (a signed confirmation, a status query after a crash or a timeout,
a status file).

A transfer's state is the partner's truth, so:

- a transfer behind what the partner says (`queued`, `sending`, `unknown`,
  `sent`) is taken along the valid path (`states.partner_path`), each step
  recorded as an event;
- a transfer already past it (`available` heard after `paid`) is left alone:
  the message is stale;
- `paid` for an `expired` transfer is applied (the money reached the
  beneficiary) and opens `paid_but_expired` for an officer;
- `paid` for a transfer closed here (cancelled, rejected, failed, returned) is
  not applied (a closed state changes only by an audited reversal): it opens
  an exception for an officer (`paid_but_cancelled`, `paid_but_rejected`,
  `paid_but_returned`), and the ledger check reports the disagreement until
  it is resolved.

Whatever the partner said is kept on the transfer (`partner_status`, the
furthest word heard), so the ledger check can hold our books against theirs.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy import bindparam, update
from sqlalchemy.orm import Session

from connectors.base import PartnerStatus
from disbursement import metrics
from disbursement.db.models import Transfer, utcnow
from disbursement.domain.states import TransferStatus as S
from disbursement.domain.states import partner_path
from disbursement.services.ledger import postings as ledger
from disbursement.services.tracking import officer_queue, transitions
from reconciliation.matcher import Outcome

# Our state for each word of the partner's.
TARGET: dict[PartnerStatus, S] = {
    PartnerStatus.RECEIVED: S.SENT,
    PartnerStatus.AVAILABLE: S.AVAILABLE,
    PartnerStatus.PAID: S.PAID,
    PartnerStatus.EXPIRED: S.EXPIRED,
    PartnerStatus.REJECTED: S.REJECTED,
    PartnerStatus.CANCELLED: S.CANCELLED,
}
# Applied in this order when one message says several things of one transfer:
# paid before expired (the money reached the beneficiary; `expired` is stale).
ORDER: tuple[PartnerStatus, ...] = (
    PartnerStatus.RECEIVED, PartnerStatus.AVAILABLE, PartnerStatus.PAID, PartnerStatus.EXPIRED,
    PartnerStatus.REJECTED, PartnerStatus.CANCELLED)
# How far along each word is: `partner_status` keeps the furthest heard.
RANK: dict[str, int] = {
    PartnerStatus.NOT_FOUND.value: 0, PartnerStatus.RECEIVED.value: 1,
    PartnerStatus.AVAILABLE.value: 2, PartnerStatus.EXPIRED.value: 3,
    PartnerStatus.REJECTED.value: 4, PartnerStatus.CANCELLED.value: 4,
    PartnerStatus.PAID.value: 5}
# `paid` heard for a transfer closed here: the exception it opens.
PAID_BUT: dict[S, Outcome] = {
    S.CANCELLED: Outcome.PAID_BUT_CANCELLED, S.REJECTED: Outcome.PAID_BUT_REJECTED,
    S.FAILED: Outcome.PAID_BUT_REJECTED, S.RETURNED: Outcome.PAID_BUT_RETURNED}


class Verdict:
    APPLIED = "applied"        # our state moved (or the transfer was there from this very word)
    DUPLICATE = "duplicate"    # already in that state
    STALE = "stale"            # already past it
    DISPUTED = "disputed"      # contradicts a closed state here: an exception is open


@dataclass(frozen=True, slots=True)
class Word:
    """One thing the partner said of one transfer."""
    transfer_id: int
    status: PartnerStatus
    reason: str | None = None
    service_point: str | None = None


@dataclass
class Applied:
    verdicts: list[str] = field(default_factory=list)   # one per word, in order
    # transfer id -> the states it entered because of these words
    entered: dict[int, set[str]] = field(default_factory=dict)
    before: dict[int, str] = field(default_factory=dict)   # states before any word
    after: dict[int, str] = field(default_factory=dict)
    exceptions: int = 0


def apply(session: Session, partner_code: str, words: Sequence[Word], *, source: str,
          detail: str) -> Applied:
    """Applies the partner's words in the caller's transaction (which commits)."""
    result = Applied()
    if not words:
        return result
    locked = transitions.lock(session, [w.transfer_id for w in words])
    current = {tid: row.status for tid, row in locked.items()}
    result.before = {tid: s.value for tid, s in current.items()}
    verdict_of: dict[int, str] = {}
    disputes: list[tuple[int, Outcome, int, str, str]] = []
    amounts = _amounts(session, words)
    for status in ORDER:
        target = TARGET[status]
        group = [(n, w) for n, w in enumerate(words) if w.status == status]
        movable: dict[int, None] = {}     # transfer ids in order, each once
        for n, word in group:
            state = current[word.transfer_id]
            if word.transfer_id in movable:
                verdict_of[n] = Verdict.DUPLICATE    # a second copy in the same message
            elif state == target:
                verdict_of[n] = (Verdict.APPLIED
                                 if target.value in result.entered.get(word.transfer_id, ())
                                 else Verdict.DUPLICATE)
            elif partner_path(state, target):
                movable[word.transfer_id] = None
                verdict_of[n] = Verdict.APPLIED
            elif status == PartnerStatus.PAID and state in PAID_BUT:
                verdict_of[n] = Verdict.DISPUTED
                amount, currency = amounts[word.transfer_id]
                disputes.append((word.transfer_id, PAID_BUT[state], amount, currency,
                                 f"{partner_code} says paid; {state.value} here"))
            else:
                verdict_of[n] = Verdict.STALE
        moved = _move(session, partner_code, target, list(movable), group,
                      current, source=source, detail=detail)
        for tid in moved:
            result.entered.setdefault(tid, set()).add(target.value)
        if status == PartnerStatus.PAID:
            late = [tid for tid in moved if result.before[tid] == S.EXPIRED.value]
            disputes.extend((tid, Outcome.PAID_BUT_EXPIRED, amounts[tid][0], amounts[tid][1],
                             f"{partner_code} says paid after it expired here") for tid in late)
        for n, word in group:
            # A transfer that could move but did not (the conditional update found it
            # elsewhere: SQLite without row locks) is stale, never counted applied.
            if verdict_of[n] == Verdict.APPLIED and current[word.transfer_id] != target:
                verdict_of[n] = Verdict.STALE
    result.exceptions = officer_queue.open_for_transfers(session, partner_code, disputes)
    if result.exceptions:
        metrics.PARTNER_DISPUTES.labels(partner=partner_code).inc(result.exceptions)
    result.verdicts = [verdict_of[n] for n in range(len(words))]
    result.after = {tid: s.value for tid, s in current.items()}
    _remember_word(session, locked, words)
    return result


def _move(session: Session, partner_code: str, target: S, ids: list[int],
          group: list[tuple[int, Word]], current: dict[int, S], *, source: str,
          detail: str) -> list[int]:
    if not ids:
        return []
    # The partner's reason, when it gives one, is the event's detail.
    reasons = {w.transfer_id: w.reason for _, w in group if w.reason}
    by_reason: dict[str | None, list[int]] = {}
    for tid in ids:
        by_reason.setdefault(reasons.get(tid), []).append(tid)
    moved: list[int] = []
    for reason, some in by_reason.items():
        moved.extend(transitions.move(session, some, target, source=source, actor=partner_code,
                                      detail=reason or f"{detail} {target.value}",
                                      partner_truth=True))
    for tid in moved:
        current[tid] = target
    if not moved:
        return moved
    moved_set = set(moved)
    extras = {w.transfer_id: {"tid": w.transfer_id, "sp": w.service_point, "reason": w.reason}
              for _, w in group if w.transfer_id in moved_set and (w.service_point or w.reason)}
    if extras:
        table = Transfer.__table__
        session.execute(update(table).where(table.c.id == bindparam("tid"))
                        .values(service_point=bindparam("sp"),
                                status_reason=bindparam("reason")),
                        list(extras.values()))
    if target == S.PAID:
        ledger.post_payments(session, moved, f"{len(moved)} payment(s) confirmed by {partner_code}")
        metrics.SERVICE_POINT_COLLECTIONS.labels(partner=partner_code).inc(
            sum(1 for extra in extras.values() if extra["sp"]))
    elif target == S.CANCELLED:
        ledger.post_cancellations(session, moved, f"{len(moved)} cancellation(s) confirmed by "
                                                  f"{partner_code}")
    return moved


def _amounts(session: Session, words: Sequence[Word]) -> dict[int, tuple[int, str]]:
    """Amount and currency of the transfers a `paid` word may dispute."""
    ids = sorted({w.transfer_id for w in words if w.status == PartnerStatus.PAID})
    out: dict[int, tuple[int, str]] = {}
    for start in range(0, len(ids), transitions.IDS_PER_STATEMENT):
        chunk = ids[start:start + transitions.IDS_PER_STATEMENT]
        out.update({row.id: (row.amount_centimes, row.currency) for row in session.execute(
            Transfer.__table__.select().with_only_columns(
                Transfer.id, Transfer.amount_centimes, Transfer.currency)
            .where(Transfer.id.in_(chunk)))})
    return out


def _remember_word(session: Session, locked: dict[int, transitions.Locked],
                   words: Sequence[Word]) -> None:
    """Keeps the furthest word heard of each transfer in `partner_status`."""
    furthest: dict[int, str] = {}
    for word in words:
        known = furthest.get(word.transfer_id) or locked[word.transfer_id].partner_status
        if known is None or RANK[word.status.value] >= RANK.get(known, 0):
            furthest[word.transfer_id] = word.status.value
    changed = [{"tid": tid, "ps": status} for tid, status in furthest.items()
               if status != locked[tid].partner_status]
    if changed:
        table = Transfer.__table__
        session.execute(update(table).where(table.c.id == bindparam("tid"))
                        .values(partner_status=bindparam("ps"), partner_status_at=utcnow()),
                        changed)
