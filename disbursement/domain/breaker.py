"""The circuit breaker's rules, one partner at a time, as plain data.

    closed --K consecutive failures--> open --cooldown--> half-open (one probe)
    half-open --probe succeeds--> closed;  half-open --probe fails--> open

While open (and in half-open, for everyone but the probe) calls are deferred,
not failed. A probe that never reports back (its worker died) is replaced by a
new one after another cooldown, so a breaker cannot stay half-open forever.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass, replace
from datetime import datetime, timedelta


class BreakerState(enum.StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


# For the Prometheus gauge: 0 closed, 1 half-open, 2 open.
GAUGE_VALUE = {BreakerState.CLOSED: 0, BreakerState.HALF_OPEN: 1, BreakerState.OPEN: 2}


class Admission(enum.StrEnum):
    ALLOW = "allow"      # closed: go ahead
    PROBE = "probe"      # half-open: this one call tests the partner
    DEFER = "defer"      # open: do not call; try again at `retry_at`


@dataclass(frozen=True)
class BreakerPolicy:
    failure_threshold: int
    cooldown: timedelta

    def __post_init__(self) -> None:
        if self.failure_threshold < 1:
            raise ValueError("failure_threshold must be at least 1")


@dataclass(frozen=True)
class Breaker:
    state: BreakerState = BreakerState.CLOSED
    failures: int = 0
    opened_at: datetime | None = None
    probe_started_at: datetime | None = None

    def retry_at(self, policy: BreakerPolicy) -> datetime | None:
        """When a deferred call may be tried again (None when closed)."""
        if self.state is BreakerState.OPEN and self.opened_at:
            return self.opened_at + policy.cooldown
        if self.state is BreakerState.HALF_OPEN and self.probe_started_at:
            return self.probe_started_at + policy.cooldown
        return None


def admit(breaker: Breaker, policy: BreakerPolicy, now: datetime) -> tuple[Admission, Breaker]:
    if breaker.state is BreakerState.CLOSED:
        return Admission.ALLOW, breaker
    due = breaker.retry_at(policy)
    if due is not None and now < due:
        return Admission.DEFER, breaker
    return Admission.PROBE, replace(breaker, state=BreakerState.HALF_OPEN, probe_started_at=now)


def on_success(breaker: Breaker) -> Breaker:
    return Breaker()


def on_failure(breaker: Breaker, policy: BreakerPolicy, now: datetime) -> Breaker:
    failures = breaker.failures + 1
    if breaker.state is BreakerState.HALF_OPEN:
        return Breaker(BreakerState.OPEN, failures, opened_at=now)
    if breaker.state is BreakerState.OPEN:
        # A call admitted before the breaker opened: the breaker stays open
        # from its first opening (the cooldown is not stretched).
        return replace(breaker, failures=failures)
    if failures >= policy.failure_threshold:
        return Breaker(BreakerState.OPEN, failures, opened_at=now)
    return replace(breaker, failures=failures)
