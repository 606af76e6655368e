"""What the simulated payment institution knows: its transfers, their fates,
the confirmations it still owes us, and the faults it is told to show.

Plain Python apart from the Flask app so a partner's rules (validation,
idempotency by reference, the order of status changes) read on one screen.
One lock guards everything: the app runs on a threaded server and the
auto-advance thread changes the same book. With a journal, every change is
written and fsynced before the lock is let go, so before the partner answers.
"""
from __future__ import annotations

import dataclasses
import enum
import itertools
import random
import re
import threading
from collections import Counter, deque
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from connectors.base import PartnerStatus
from connectors.simulators.journal import Journal, JournalState

REFERENCE_PATTERN = re.compile(r"[A-Z0-9]{1,16}")
CURRENCY_PATTERN = re.compile(r"[A-Z]{3}")
REJECT_REASONS = ("AC01 invalid account", "RR01 identity mismatch")
# Reason texts for codes a test asks the partner to reject with (reject_next).
REASON_TEXTS = {"AC01": "invalid account", "AC04": "closed account", "AC06": "blocked account",
                "RR01": "identity mismatch", "AM04": "insufficient funds",
                "BE01": "beneficiary inconsistent with account"}
REASON_CODE_PATTERN = re.compile(r"[A-Z0-9]{4}")
SERVICE_POINT_COUNT = 40
CANCELLABLE = frozenset({PartnerStatus.RECEIVED, PartnerStatus.AVAILABLE})
# Where a directed advance (`force`) may take a transfer.
FORCE_TARGETS = frozenset({PartnerStatus.AVAILABLE, PartnerStatus.PAID, PartnerStatus.EXPIRED})
# Collection is reported a moment after availability so that `occurred_at`
# orders the two events even when they are decided in the same advance.
COLLECTION_DELAY = timedelta(milliseconds=1)


class FaultError(ValueError):
    """Raised when a fault setting has an unknown name, a value of the wrong
    type or one out of range; nothing is changed then."""


@dataclass
class Faults:
    latency_ms: int = 0
    error_rate: float = 0.0
    timeout_rate: float = 0.0
    # The request is read but lost before processing, and the (error) answer
    # comes too late: an ambiguous outcome where the partner holds nothing.
    lost_request_rate: float = 0.0
    timeout_sleep_seconds: float = 30.0
    reject_rate: float = 0.0
    uncollected_rate: float = 0.0
    duplicate_callbacks: bool = False
    out_of_order_callbacks: bool = False
    statement_missing_lines: int = 0
    statement_extra_lines: int = 0
    statement_altered_lines: int = 0
    statement_duplicate_lines: int = 0

    def updated(self, changes: Mapping[str, Any]) -> Faults:
        """A copy with `changes` applied, all validated before any is kept."""
        # Annotations are strings here (`from __future__ import annotations`).
        known = {f.name: str(f.type) for f in dataclasses.fields(self)}
        for name, value in changes.items():
            kind = known.get(name)
            if kind is None:
                raise FaultError(f"unknown fault {name!r}")
            _check_fault(name, kind, value)
        result = dataclasses.replace(self, **changes)
        if result.reject_rate + result.uncollected_rate > 1:
            raise FaultError("reject_rate + uncollected_rate must not exceed 1")
        return result


def _check_fault(name: str, kind: str, value: Any) -> None:
    # `bool` is a subclass of `int` in Python: reject it explicitly for numbers.
    if kind == "bool":
        if not isinstance(value, bool):
            raise FaultError(f"{name} must be true or false")
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise FaultError(f"{name} must be a number")
    if kind == "int" and not isinstance(value, int):
        raise FaultError(f"{name} must be an integer")
    if value < 0:
        raise FaultError(f"{name} must not be negative")
    if name.endswith("_rate") and value > 1:
        raise FaultError(f"{name} is a probability between 0 and 1")


class Fate(enum.Enum):
    """What will become of a received transfer, drawn once at its first advance."""

    REJECTED = "rejected"
    UNCOLLECTED = "uncollected"   # made available, never collected: expires next advance
    PAID = "paid"


@dataclass(slots=True)
class HeldTransfer:
    reference: str
    amount_centimes: int
    currency: str
    status: PartnerStatus = PartnerStatus.RECEIVED
    fate: Fate | None = None
    reason: str | None = None
    service_point: str | None = None
    value_date: str | None = None
    # cash: the point we were told to pay at, and the code to check at the counter
    instructed_point: str | None = None
    withdrawal_code: str | None = None


@dataclass(frozen=True, slots=True)
class PaidLine:
    reference: str
    amount_centimes: int
    currency: str
    value_date: str
    service_point: str


class PartnerBook:
    """The partner's in-memory ledger. Every public method takes the lock."""

    def __init__(self, partner_code: str, seed: int, faults: Faults,
                 two_step: bool = True, journal: Journal | None = None) -> None:
        self.partner_code = partner_code
        # Cash partners make funds available, then the beneficiary collects;
        # a wallet credit is final at once (no `available` step).
        self.two_step = two_step
        self._lock = threading.Lock()
        self._faults = faults
        master = random.Random(seed)
        # Separate streams drawn from the one seeded generator, so switching a
        # request fault on or off does not change which transfers get paid.
        self._fate_rng = random.Random(master.getrandbits(64))
        self._fault_rng = random.Random(master.getrandbits(64))
        self.statement_seed = master.getrandbits(64)
        self._transfers: dict[str, HeldTransfer] = {}
        self._to_advance: set[str] = set()     # received, or available and to be paid
        self._pending: deque[dict[str, Any]] = deque()
        self._reject_next: deque[str] = deque()
        self._duplicate_sends = 0
        self._conflicting_duplicates = 0
        self._callbacks_delivered = 0
        self._callback_requests = 0
        self._last_callback_error: str | None = None
        self._journal = journal

    @contextmanager
    def _changing(self) -> Iterator[None]:
        """The lock, and the journal's records of the change made under it
        written and fsynced before it is let go."""
        with self._lock:
            try:
                yield
            finally:
                if self._journal is not None:
                    self._journal.commit()

    def _record(self, record: dict[str, Any]) -> None:
        if self._journal is not None:
            self._journal.add(record)

    def _record_transfer(self, held: HeldTransfer) -> None:
        if self._journal is not None:
            self._journal.add({"t": "transfer", "reference": held.reference,
                               "amount_centimes": held.amount_centimes,
                               "currency": held.currency, "status": held.status.value,
                               "fate": held.fate.value if held.fate else None,
                               "reason": held.reason, "service_point": held.service_point,
                               "value_date": held.value_date,
                               "instructed_point": held.instructed_point,
                               "withdrawal_code": held.withdrawal_code})

    def _queue(self, event: dict[str, Any]) -> None:
        self._pending.append(event)
        self._record({"t": "callback", "event": event})

    def close(self) -> None:
        """Closes the journal (everything in it is already durable)."""
        with self._lock:
            if self._journal is not None:
                self._journal.close()

    def restore(self, state: JournalState) -> None:
        """Takes back the book a journal replays to (a restart after a kill):
        the transfers and their fates, and the confirmations still owed."""
        with self._lock:
            for entry in state.transfers.values():
                held = HeldTransfer(entry["reference"], entry["amount_centimes"],
                                    entry["currency"], PartnerStatus(entry["status"]),
                                    Fate(entry["fate"]) if entry["fate"] else None,
                                    entry["reason"], entry["service_point"],
                                    entry["value_date"], entry["instructed_point"],
                                    entry["withdrawal_code"])
                self._transfers[held.reference] = held
                if _still_open(held):
                    self._to_advance.add(held.reference)
            self._pending.extend(dict(event, status=PartnerStatus(event["status"]))
                                 for event in state.pending)
            self._duplicate_sends = state.duplicate_sends
            self._conflicting_duplicates = state.conflicting_duplicates

    # -- faults ---------------------------------------------------------------

    def faults(self) -> Faults:
        with self._lock:
            return dataclasses.replace(self._faults)

    def update_faults(self, changes: Mapping[str, Any]) -> Faults:
        with self._lock:
            self._faults = self._faults.updated(changes)
            return dataclasses.replace(self._faults)

    def draw(self, rate_name: str) -> bool:
        """True with the probability held in fault `rate_name`."""
        with self._lock:
            rate = getattr(self._faults, rate_name)
            return rate > 0 and self._fault_rng.random() < rate

    # -- the partner API ----------------------------------------------------

    def receive(self, items: Sequence[Any]) -> list[dict[str, Any]]:
        with self._changing():
            return [self._receive_one(item) for item in items]

    def _receive_one(self, item: Any) -> dict[str, Any]:
        reference = item.get("reference") if isinstance(item, dict) else None
        problem = _problem(item)
        if problem is not None:
            return {"reference": reference, "status": PartnerStatus.REJECTED, "reason": problem}
        reference = item["reference"]  # a valid reference: `_problem` found none
        held = self._transfers.get(reference)
        if held is not None:
            # Idempotent by reference: a resend reports, never creates.
            self._duplicate_sends += 1
            conflicting = (held.amount_centimes, held.currency) != (item["amount_centimes"],
                                                                    item["currency"])
            self._conflicting_duplicates += conflicting
            self._record({"t": "duplicate", "reference": reference,
                          "conflicting": conflicting})
            return {"reference": reference, "status": held.status, "reason": held.reason}
        held = HeldTransfer(reference, item["amount_centimes"], item["currency"],
                            instructed_point=item.get("service_point"),
                            withdrawal_code=item.get("withdrawal_code"))
        self._transfers[reference] = held
        if self._reject_next:
            # Kept (a resend must get the same answer), but never paid.
            code = self._reject_next.popleft()
            held.status, held.fate = PartnerStatus.REJECTED, Fate.REJECTED
            held.reason = f"{code} {REASON_TEXTS.get(code, 'rejected by the partner')}"
            self._record_transfer(held)
            return {"reference": reference, "status": held.status, "reason": held.reason}
        self._to_advance.add(reference)
        self._record_transfer(held)
        return {"reference": reference, "status": PartnerStatus.RECEIVED, "reason": None}

    def reject_next(self, reason_code: str, count: int = 1) -> None:
        """The next `count` new transfers are rejected at receipt with `reason_code`."""
        if not REASON_CODE_PATTERN.fullmatch(reason_code):
            raise FaultError("reason_code must be 4 upper-case letters or digits, e.g. AC01")
        with self._lock:
            self._reject_next.extend([reason_code] * count)

    def transfer(self, reference: str) -> dict[str, Any] | None:
        """What the partner holds under `reference` (one entry at most, by design)."""
        with self._lock:
            held = self._transfers.get(reference)
            if held is None:
                return None
            return {"reference": held.reference, "status": held.status.value,
                    "amount_centimes": held.amount_centimes, "currency": held.currency,
                    "reason": held.reason, "service_point": held.service_point,
                    "instructed_point": held.instructed_point,
                    "withdrawal_code": held.withdrawal_code}

    def statuses(self, references: Sequence[str]) -> dict[str, PartnerStatus]:
        with self._lock:
            return {ref: (self._transfers[ref].status if ref in self._transfers
                          else PartnerStatus.NOT_FOUND) for ref in references}

    def cancel(self, reference: str) -> PartnerStatus | None:
        """The status after the attempt, or None for a reference never received."""
        with self._changing():
            held = self._transfers.get(reference)
            if held is None:
                return None
            if held.status in CANCELLABLE:
                held.status = PartnerStatus.CANCELLED
                self._to_advance.discard(reference)
                self._record_transfer(held)
            return held.status

    # -- time passing -------------------------------------------------------

    def advance(self, now: datetime) -> Counter[str]:
        """Move every open transfer one step and queue the confirmations.

        Returns the number of confirmations queued, by status.
        """
        with self._changing():
            queued: Counter[str] = Counter()
            # Sorted so the seeded draws land on the same transfers every run.
            for reference in sorted(self._to_advance):
                for event in self._advance_one(self._transfers[reference], now):
                    self._queue(event)
                    queued[event["status"]] += 1
            self._to_advance = {ref for ref in self._to_advance
                                if _still_open(self._transfers[ref])}
            return queued

    def _advance_one(self, held: HeldTransfer, now: datetime) -> list[dict[str, Any]]:
        if held.status == PartnerStatus.AVAILABLE:
            if held.fate is Fate.UNCOLLECTED:               # the collection window closed
                held.status = PartnerStatus.EXPIRED
                return [self._event(held, now)]
            return [self._pay(held, now)]
        held.fate = self._draw_fate()
        if held.fate is Fate.REJECTED:
            held.status = PartnerStatus.REJECTED
            held.reason = self._fate_rng.choice(REJECT_REASONS)
            return [self._event(held, now)]
        if held.fate is Fate.PAID and not self.two_step:
            return [self._pay(held, now)]
        held.status = PartnerStatus.AVAILABLE
        events = [self._event(held, now)]
        if held.fate is Fate.PAID:
            events.append(self._pay(held, now + COLLECTION_DELAY))
            if self._faults.out_of_order_callbacks:
                events.reverse()
        return events

    def force(self, target: PartnerStatus, references: Sequence[str] | None,
              now: datetime) -> Counter[str]:
        """Directed time: move the given (default: every open) transfers to
        `target` through the partner's usual steps, queueing the confirmations.
        Transfers that cannot get there (paid, rejected...) are left alone."""
        if target not in FORCE_TARGETS:
            raise FaultError(f"cannot advance to {target}: one of "
                             f"{', '.join(sorted(t.value for t in FORCE_TARGETS))}")
        with self._changing():
            chosen = sorted(self._to_advance if references is None else references)
            queued: Counter[str] = Counter()
            for reference in chosen:
                held = self._transfers.get(reference)
                if held is None:
                    continue
                for event in self._force_one(held, target, now):
                    self._queue(event)
                    queued[event["status"]] += 1
            self._to_advance = {ref for ref in self._to_advance
                                if _still_open(self._transfers[ref])}
            return queued

    def _force_one(self, held: HeldTransfer, target: PartnerStatus,
                   now: datetime) -> list[dict[str, Any]]:
        events: list[dict[str, Any]] = []
        if held.status == PartnerStatus.RECEIVED and (self.two_step
                                                      or target != PartnerStatus.PAID):
            held.status, held.fate = PartnerStatus.AVAILABLE, Fate.PAID
            events.append(self._event(held, now))
        if held.status == PartnerStatus.RECEIVED and target == PartnerStatus.PAID:
            events.append(self._pay(held, now))
        elif held.status == PartnerStatus.AVAILABLE and target == PartnerStatus.PAID:
            events.append(self._pay(held, now + COLLECTION_DELAY))
        elif held.status == PartnerStatus.AVAILABLE and target == PartnerStatus.EXPIRED:
            held.status, held.fate = PartnerStatus.EXPIRED, Fate.UNCOLLECTED
            events.append(self._event(held, now + COLLECTION_DELAY))
        if self._faults.out_of_order_callbacks:
            events.reverse()
        return events

    def _draw_fate(self) -> Fate:
        roll = self._fate_rng.random()
        if roll < self._faults.reject_rate:
            return Fate.REJECTED
        if roll < self._faults.reject_rate + self._faults.uncollected_rate:
            return Fate.UNCOLLECTED
        return Fate.PAID

    def _pay(self, held: HeldTransfer, at: datetime) -> dict[str, Any]:
        held.status = PartnerStatus.PAID
        random_point = f"SP-{self._fate_rng.randint(1, SERVICE_POINT_COUNT):04d}"
        held.service_point = held.instructed_point or random_point
        held.value_date = at.date().isoformat()
        return self._event(held, at)

    def _event(self, held: HeldTransfer, at: datetime) -> dict[str, Any]:
        # A transfer reaches each status at most once, so reference + status
        # names the transition uniquely and stays stable across resends.
        status = held.status
        self._record_transfer(held)
        return {"event_id": f"{self.partner_code}-{held.reference}-{status}",
                "reference": held.reference,
                "status": status,
                "occurred_at": at.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
                "reason": held.reason if status == PartnerStatus.REJECTED else None,
                "service_point": held.service_point if status == PartnerStatus.PAID else None}

    # -- confirmations owed -------------------------------------------------

    def pending_batch(self, size: int) -> list[dict[str, Any]]:
        with self._lock:
            return list(itertools.islice(self._pending, size))

    def pending_count(self) -> int:
        with self._lock:
            return len(self._pending)

    def record_delivery(self, delivered: int, requests: int, error: str | None) -> None:
        """Drop the first `delivered` pending confirmations, the receiver has them."""
        with self._changing():
            taken = [self._pending.popleft()["event_id"] for _ in range(delivered)]
            if taken:
                self._record({"t": "acknowledged", "event_ids": taken})
            self._callbacks_delivered += delivered
            self._callback_requests += requests
            if error is not None:
                self._last_callback_error = error

    # -- reading ------------------------------------------------------------

    def paid_lines(self, since: str | None = None) -> list[PaidLine]:
        with self._lock:
            return [PaidLine(t.reference, t.amount_centimes, t.currency,
                             t.value_date, t.service_point)
                    for ref, t in sorted(self._transfers.items())
                    if t.status == PartnerStatus.PAID and t.value_date and t.service_point
                    and (since is None or t.value_date >= since)]

    def holds(self, reference: str) -> bool:
        with self._lock:
            return reference in self._transfers

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {"partner": self.partner_code,
                    "transfers": len(self._transfers),
                    "by_status": dict(Counter(t.status.value
                                              for t in self._transfers.values())),
                    "duplicate_sends": self._duplicate_sends,
                    "conflicting_duplicates": self._conflicting_duplicates,
                    "callbacks_delivered": self._callbacks_delivered,
                    "callback_requests": self._callback_requests,
                    "callbacks_pending": len(self._pending),
                    "last_callback_error": self._last_callback_error}


def _still_open(held: HeldTransfer) -> bool:
    return held.status in (PartnerStatus.RECEIVED, PartnerStatus.AVAILABLE)


def _problem(item: Any) -> str | None:
    """Why the partner rejects an item, or None when it takes it."""
    if not isinstance(item, dict):
        return "FF01 item is not an object"
    reference = item.get("reference")
    if not isinstance(reference, str) or not REFERENCE_PATTERN.fullmatch(reference):
        return "FF01 reference must be 1 to 16 upper-case letters or digits"
    amount = item.get("amount_centimes")
    # type() rather than isinstance(): JSON true must not pass for 1 centime.
    if type(amount) is not int or amount <= 0:
        return "AM01 amount_centimes must be a positive integer"
    currency = item.get("currency")
    if not isinstance(currency, str) or not CURRENCY_PATTERN.fullmatch(currency):
        return "AM03 currency must be an ISO 4217 code"
    return None
