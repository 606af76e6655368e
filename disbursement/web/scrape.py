"""What `/metrics` serves, for the web and for `disburse monitor metrics`.

The scrape-time collector is an adapter because it queries: it asks
`services.monitoring` for the figures and only turns them into metric
families, so `disbursement.metrics` (the one module defining metrics) never
imports a service. Nothing here needs Flask, so the CLI uses it without the
web application."""
from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, datetime

from prometheus_client import REGISTRY, CollectorRegistry, multiprocess
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from disbursement.bootstrap import Services
from disbursement.domain.books import Disagreement
from disbursement.domain.states import TransferStatus
from disbursement.services.monitoring.service_state import (
    IN_FLIGHT_STATES,
    ServiceState,
    read_service_state,
)

log = logging.getLogger(__name__)

Families = dict[str, GaugeMetricFamily | CounterMetricFamily]


class ServiceStateCollector(Collector):
    """Transfers by partner and state, the age of the oldest in-flight transfer
    per state, unknown outcomes, outbox and RQ queue depths, breakers,
    reconciliation exceptions, disagreements with the partners' books, and
    transfers and amounts paid (counters: `paid` is terminal, so the sums only
    grow and `rate()` applies; an audited reversal reads as a counter reset): a
    handful of GROUP BY queries per scrape. When the database or Redis does not
    answer, `disburse_state_scrape_up` says 0 and the other metrics of /metrics
    are still served."""

    def __init__(self, svc: Services | None) -> None:
        self.svc = svc

    def describe(self) -> list[Metric]:
        return list(self._families().values())

    def collect(self) -> Iterator[Metric]:
        families = self._families()
        try:
            self._fill(families)
            up = 1
        except Exception as exc:  # reported as a metric: Prometheus alerts on it
            log.warning("state scrape failed", extra={"error": type(exc).__name__})
            families = self._families()
            up = 0
        families["up"].add_metric([], up)
        yield from families.values()

    @staticmethod
    def _families() -> Families:
        return {
            "transfers": GaugeMetricFamily(
                "disburse_transfers", "Transfers now, by partner and state",
                labels=["partner", "state"]),
            "oldest": GaugeMetricFamily(
                "disburse_transfer_oldest_age_seconds",
                "Age of the oldest transfer still queued, sent or unknown", labels=["state"]),
            "unknown": GaugeMetricFamily(
                "disburse_unknown_outcome_transfers",
                "Transfers sent without an answer: ask the partner before any resend",
                labels=["partner"]),
            "outbox": GaugeMetricFamily(
                "disburse_outbox_items", "Dispatch work in the outbox by status (pending, dead)",
                labels=["status"]),
            "rq": GaugeMetricFamily("disburse_rq_queued_jobs", "Jobs waiting on the RQ queue",
                                    labels=["queue"]),
            "workers": GaugeMetricFamily("disburse_rq_workers", "RQ workers registered",
                                         labels=["queue"]),
            "scheduler": GaugeMetricFamily(
                "disburse_scheduler_active",
                "1 while a `disburse scheduler` holds its lease (0: nothing sweeps the outbox, "
                "queries transfers in doubt or runs the expiry)"),
            "breaker": GaugeMetricFamily("disburse_partner_breaker_open",
                                         "1 when the partner's circuit breaker is open",
                                         labels=["partner"]),
            "exceptions": GaugeMetricFamily("disburse_recon_exceptions",
                                            "Reconciliation items not matched, by outcome",
                                            labels=["outcome"]),
            "paid": CounterMetricFamily(
                "disburse_paid_transfers", "Transfers paid (a terminal state), by partner",
                labels=["partner"]),
            "paid_amount": CounterMetricFamily(
                "disburse_paid_amount_centimes", "Amount paid to beneficiaries, by partner",
                labels=["partner", "currency"]),
            "books": GaugeMetricFamily(
                "disburse_books_disagreements",
                "Transfers on which a partner's books (its confirmations, its statements) or our "
                "ledger disagree with our states, by partner and kind",
                labels=["partner", "kind"]),
            "up": GaugeMetricFamily("disburse_state_scrape_up",
                                    "1 when the database (and Redis) answered this scrape"),
        }

    def _fill(self, f: Families) -> None:
        svc = self.svc
        if svc is None:
            raise RuntimeError("a collector built without services only describes")
        with svc.uow() as session:
            state = read_service_state(session)
        _fill_transfers(f, state, sorted(set(svc.partners) | set(state.by_partner_state)
                                         | set(state.disagreements)))
        _fill_queues(f, state)
        if svc.settings.redis_url:
            rq = svc.queue.figures()
            f["rq"].add_metric([svc.queue.name], rq["rq_queued"])
            f["workers"].add_metric([svc.queue.name], rq["rq_workers"])
            f["scheduler"].add_metric([], 1 if rq["scheduler_lease_ttl_seconds"] > 0 else 0)


def _fill_transfers(f: Families, state: ServiceState, partners: list[str]) -> None:
    for partner in partners:
        counts = state.by_partner_state.get(partner, {})
        for status in TransferStatus:
            f["transfers"].add_metric([partner, status.value], counts.get(status.value, 0))
        f["unknown"].add_metric([partner], counts.get(TransferStatus.UNKNOWN.value, 0))
        f["breaker"].add_metric([partner], 1 if state.breakers.get(partner) == "open" else 0)
        disagreeing = state.disagreements.get(partner, {})
        for kind in Disagreement:
            f["books"].add_metric([partner, kind.value], disagreeing.get(kind.value, 0))
    now = datetime.now(UTC)
    for in_flight in IN_FLIGHT_STATES:
        at = state.oldest_in_flight.get(in_flight)
        f["oldest"].add_metric([in_flight], (now - at).total_seconds() if at else 0)
    for row in state.paid:
        f["paid"].add_metric([row["partner"]], row["count"])
        f["paid_amount"].add_metric([row["partner"], row["currency"]], row["amount_centimes"])


def _fill_queues(f: Families, state: ServiceState) -> None:
    for status in ("pending", "dead"):
        f["outbox"].add_metric([status], state.outbox.get(status, 0))
    for outcome, count in state.exceptions.items():
        f["exceptions"].add_metric([outcome], count)


class _DefaultRegistry(Collector):
    """This process's own metrics (embedded mode: one process serves all)."""

    def collect(self) -> Iterator[Metric]:
        return iter(REGISTRY.collect())


def scrape_registry(svc: Services, multiprocess_dir: str | None) -> CollectorRegistry:
    """What /metrics serves: the scrape-time collector, plus every process's
    files summed in multiprocess mode, or this process's registry otherwise."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(ServiceStateCollector(svc))
    if multiprocess_dir:
        multiprocess.MultiProcessCollector(registry, path=multiprocess_dir)
    else:
        registry.register(_DefaultRegistry())
    return registry
