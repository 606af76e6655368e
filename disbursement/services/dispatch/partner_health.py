"""Partner health: one circuit breaker per partner, kept in the database so
that every RQ worker (and the embedded mode) sees and changes the same one.

Each decision reads the breaker row under a row lock (`SELECT ... FOR UPDATE`
on PostgreSQL; SQLite serialises writers anyway), applies the pure rules of
`disbursement.domain.breaker`, and writes the result back in the caller's
transaction. Routing reads `open_partners` to send new batches elsewhere.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from disbursement import metrics
from disbursement.db.models import as_utc, utcnow
from disbursement.db.models.partners import PartnerBreaker
from disbursement.db.upsert import insert_ignore_one
from disbursement.domain import breaker as rules
from disbursement.domain.breaker import Admission, Breaker, BreakerPolicy, BreakerState
from disbursement.settings import Settings


def policy_from(settings: Settings) -> BreakerPolicy:
    return BreakerPolicy(settings.breaker_failure_threshold,
                         timedelta(seconds=settings.breaker_cooldown_seconds))


@dataclass(frozen=True)
class Decision:
    admission: Admission
    retry_at: datetime | None


def _locked(session: Session, partner_code: str) -> PartnerBreaker:
    insert_ignore_one(session, PartnerBreaker.__table__, {
        "partner_code": partner_code, "state": BreakerState.CLOSED.value,
        "consecutive_failures": 0, "updated_at": utcnow()}, key=["partner_code"])
    return session.execute(select(PartnerBreaker).where(
        PartnerBreaker.partner_code == partner_code).with_for_update()).scalar_one()


def _as_domain(row: PartnerBreaker) -> Breaker:
    return Breaker(BreakerState(row.state), row.consecutive_failures,
                   as_utc(row.opened_at) if row.opened_at else None,
                   as_utc(row.probe_started_at) if row.probe_started_at else None)


def _store(row: PartnerBreaker, breaker: Breaker, now: datetime) -> None:
    changed = row.state != breaker.state.value
    row.state = breaker.state.value
    row.consecutive_failures = breaker.failures
    row.opened_at = breaker.opened_at
    row.probe_started_at = breaker.probe_started_at
    row.updated_at = now
    if changed:
        metrics.BREAKER_STATE.labels(partner=row.partner_code).set(
            rules.GAUGE_VALUE[breaker.state])


def admit(session: Session, partner_code: str, policy: BreakerPolicy,
          now: datetime | None = None) -> Decision:
    """May we call this partner now? The caller commits."""
    now = now or utcnow()
    row = _locked(session, partner_code)
    admission, after = rules.admit(_as_domain(row), policy, now)
    _store(row, after, now)
    return Decision(admission, after.retry_at(policy))


def record(session: Session, partner_code: str, succeeded: bool, policy: BreakerPolicy,
           now: datetime | None = None) -> BreakerState:
    """Report how a call went; returns the breaker's new state. The caller commits."""
    now = now or utcnow()
    row = _locked(session, partner_code)
    current = _as_domain(row)
    after = rules.on_success(current) if succeeded else rules.on_failure(current, policy, now)
    _store(row, after, now)
    return after.state


@dataclass(frozen=True)
class BreakerView:
    partner_code: str
    state: str
    consecutive_failures: int
    opened_at: datetime | None

    def as_dict(self) -> dict:
        return {"partner": self.partner_code, "state": self.state,
                "consecutive_failures": self.consecutive_failures,
                "opened_at": self.opened_at.isoformat() if self.opened_at else None}


def breaker_state(session: Session) -> dict[str, BreakerView]:
    """Every partner's breaker that has been used; a partner missing is closed."""
    return {row.partner_code: BreakerView(row.partner_code, row.state, row.consecutive_failures,
                                          as_utc(row.opened_at) if row.opened_at else None)
            for row in session.execute(select(PartnerBreaker)
                                       .order_by(PartnerBreaker.partner_code)).scalars()}


def open_partners(session: Session) -> set[str]:
    """Codes of partners whose breaker is open or half-open (probing): routing
    sends new batches elsewhere until the breaker closes again."""
    return set(session.execute(select(PartnerBreaker.partner_code).where(
        PartnerBreaker.state != BreakerState.CLOSED.value)).scalars())


def breaker_states(session: Session) -> dict[str, str]:
    """Partner code -> breaker state ("closed", "open", "half_open") for the
    dashboard and metrics; a partner without a row is closed (callers default
    absent partners to "closed")."""
    return {code: view.state for code, view in breaker_state(session).items()}
