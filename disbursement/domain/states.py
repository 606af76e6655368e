"""Transfer and batch states, and the only transitions allowed between them;
the states of outbox items and reconciliation exceptions. All stored by value."""
from __future__ import annotations

import enum


class TransferStatus(enum.StrEnum):
    PENDING_APPROVAL = "pending_approval"
    APPROVED = "approved"
    QUEUED = "queued"
    # Committed just before the partner call: a crash leaves the transfer here,
    # and only the partner's answer to a status query settles it.
    SENDING = "sending"
    SENT = "sent"
    UNKNOWN = "unknown"
    AVAILABLE = "available"
    PAID = "paid"
    REJECTED = "rejected"
    FAILED = "failed"
    EXPIRED = "expired"
    RETURNED = "returned"
    CANCELLED = "cancelled"
    ON_HOLD = "on_hold"


S = TransferStatus

TERMINAL: frozenset[TransferStatus] = frozenset({S.PAID, S.RETURNED, S.CANCELLED})
# Attempts that are over and leave the instruction free for a new attempt.
CLOSED_ATTEMPT: frozenset[TransferStatus] = frozenset({S.REJECTED, S.FAILED, S.CANCELLED,
                                                       S.RETURNED})
LIVE: frozenset[TransferStatus] = frozenset(TransferStatus) - CLOSED_ATTEMPT
# Money left the programme's budget once the batch was released.
RELEASED: frozenset[TransferStatus] = frozenset(
    {S.QUEUED, S.SENDING, S.SENT, S.UNKNOWN, S.AVAILABLE, S.PAID, S.EXPIRED, S.RETURNED,
     S.REJECTED, S.FAILED})

TRANSITIONS: dict[TransferStatus, frozenset[TransferStatus]] = {
    S.PENDING_APPROVAL: frozenset({S.APPROVED, S.CANCELLED, S.ON_HOLD}),
    S.APPROVED: frozenset({S.QUEUED, S.CANCELLED, S.ON_HOLD}),
    S.ON_HOLD: frozenset({S.APPROVED, S.CANCELLED}),
    # The partner's word can be ahead of ours (a crash before we recorded its
    # acceptance): a queued or sending transfer it holds is `sent`.
    S.QUEUED: frozenset({S.SENDING, S.SENT, S.UNKNOWN, S.FAILED, S.REJECTED}),
    # The call's outcome; back to queued when the partner never took it.
    S.SENDING: frozenset({S.SENT, S.REJECTED, S.UNKNOWN, S.QUEUED}),
    # A partner may report `paid` before we heard `available`: accepted.
    # A transfer sent and never collected (nor said available) expires too.
    S.SENT: frozenset({S.AVAILABLE, S.PAID, S.REJECTED, S.UNKNOWN, S.CANCELLED, S.EXPIRED}),
    S.UNKNOWN: frozenset({S.SENT, S.AVAILABLE, S.PAID, S.REJECTED, S.QUEUED, S.FAILED}),
    S.AVAILABLE: frozenset({S.PAID, S.EXPIRED, S.CANCELLED}),
    S.EXPIRED: frozenset({S.RETURNED, S.PAID}),
    S.PAID: frozenset(),
    S.RETURNED: frozenset(),
    S.CANCELLED: frozenset(),
    S.REJECTED: frozenset(),
    S.FAILED: frozenset(),
}


# The partner's word can be ahead of ours: a confirmation takes a lagging
# transfer forward, one event per step, through these states only.
DISPATCHED: frozenset[TransferStatus] = frozenset(
    {S.QUEUED, S.SENDING, S.SENT, S.UNKNOWN, S.AVAILABLE, S.EXPIRED})
_THROUGH: tuple[TransferStatus, ...] = (S.SENT, S.AVAILABLE)
# Where the partner may say a transfer is.
PARTNER_TRUTH_TARGETS: frozenset[TransferStatus] = frozenset(
    {S.SENT, S.AVAILABLE, S.PAID, S.EXPIRED, S.REJECTED, S.CANCELLED})


def partner_path(source: TransferStatus, target: TransferStatus) -> tuple[TransferStatus, ...]:
    """The states a transfer in `source` passes through to reach `target` when
    the partner says it is there: each consecutive pair (from `source`) is an
    allowed transition, `target` last, fewest steps first; () when there is no
    such path (the transfer is already past it, or not the partner's to move).

    The furthest valid state wins: `available` after `paid` has no path.
    """
    if source not in DISPATCHED or target not in PARTNER_TRUTH_TARGETS or source == target:
        return ()
    paths: list[tuple[TransferStatus, ...]] = [()]
    while paths:
        longer: list[tuple[TransferStatus, ...]] = []
        for path in paths:
            at = path[-1] if path else source
            if target in TRANSITIONS[at]:
                return (*path, target)
            longer.extend((*path, step) for step in _THROUGH
                          if step in TRANSITIONS[at] and step not in path)
        paths = longer
    return ()


def allowed_sources(target: TransferStatus) -> frozenset[TransferStatus]:
    """The states from which `target` may be reached (for conditional updates)."""
    return frozenset(src for src, targets in TRANSITIONS.items() if target in targets)


class IllegalTransition(ValueError):
    """Raised when a transition outside TRANSITIONS is asked for."""


def check_transition(source: TransferStatus, target: TransferStatus) -> None:
    if target not in TRANSITIONS[source]:
        raise IllegalTransition(f"{source} -> {target}")


class BatchStatus(enum.StrEnum):
    DRAFT = "draft"            # planned, the maker has not submitted it yet
    SUBMITTED = "submitted"    # waiting for approver(s)
    APPROVED = "approved"
    REJECTED = "rejected"
    RELEASED = "released"      # outbox written, dispatch under way


class OutboxStatus(enum.StrEnum):
    """A unit of dispatch work (a chunk to send, a notification to text)."""
    PENDING = "pending"        # waiting for its (next) attempt
    DONE = "done"
    DEAD = "dead"              # retries spent: a dead letter an officer may retry


class ExceptionStatus(enum.StrEnum):
    """A reconciliation exception in the officers' queue."""
    EXPECTED = "expected"      # a payment missing from a statement, within the partner's SLA
    OPEN = "open"              # waiting for an officer's resolution
    RESOLVED = "resolved"      # by an officer, or by a later statement (`matched_later`)
    # Written by versions whose re-issue resolution only recorded the request;
    # never entered now (a re-issue resolves, or is refused), but old rows keep it.
    REISSUE_REQUESTED = "reissue_requested"


# Exceptions still waiting for something: a later statement or an officer.
UNSETTLED_EXCEPTIONS: frozenset[ExceptionStatus] = frozenset(
    {ExceptionStatus.EXPECTED, ExceptionStatus.OPEN})


class Role(enum.StrEnum):
    MAKER = "maker"
    APPROVER = "approver"
    AUDITOR = "auditor"
    MONITOR = "monitor"
    ADMIN = "admin"
