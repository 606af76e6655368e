"""The figures Prometheus reads at scrape time, as one query function.

The scrape-time collector is an adapter (`disbursement.web.scrape`):
it turns these figures into metric families. Keeping the reading here lets the
collector stay free of tables and sessions, and lets `disbursement.metrics`
define metrics without importing any service."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from disbursement.services.dispatch import partner_health
from disbursement.services.ledger import books
from disbursement.services.monitoring import dashboard

# Transfers whose outcome is still awaited: their oldest age is an alert signal.
IN_FLIGHT_STATES = ("queued", "sent", "unknown")


@dataclass(frozen=True)
class ServiceState:
    """What the database says about the service now (one scrape)."""
    by_partner_state: dict[str, dict[str, int]]
    oldest_in_flight: dict[str, datetime]
    outbox: dict[str, int]
    breakers: dict[str, str]
    exceptions: dict[str, int]
    paid: list[dict]
    # partner -> kind -> transfers on which the partner's books and ours disagree
    disagreements: dict[str, dict[str, int]]


def read_service_state(session: Session) -> ServiceState:
    """A handful of GROUP BY queries, whatever the number of transfers."""
    return ServiceState(
        by_partner_state=dict(dashboard.transfers_by_state(session)),
        oldest_in_flight=dashboard.oldest_in_flight(session, IN_FLIGHT_STATES),
        outbox=dashboard.outbox_depths(session),
        breakers=partner_health.breaker_states(session),
        exceptions=dashboard.exceptions_by_type(session),
        paid=dashboard.paid_by_partner(session),
        disagreements=books.counts(session),
    )
