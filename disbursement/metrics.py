"""Every Prometheus metric of the service, in one place.

Names follow Prometheus conventions: `disburse_<noun>_<unit>`, counters end in
`_total`, durations are `_seconds` histograms, amounts are integer centimes.
Labels stay few and bounded: partner, state, outcome, job, endpoint.

Two kinds live here:
- values counted where work enters and leaves (HTTP requests, jobs, dispatch,
  confirmations). Under gunicorn and RQ workers each process writes its own
  files in PROMETHEUS_MULTIPROC_DIR and `/metrics` sums them (multiprocess
  mode); a gauge therefore needs a `multiprocess_mode` saying how to combine
  processes.
- figures read from the database and Redis when Prometheus scrapes
  (`ServiceStateCollector`): computed once per scrape by the process serving
  `/metrics`, never stored per worker, so they are not duplicated.
"""
from __future__ import annotations

import logging
import time
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import Iterable, Iterator

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

log = logging.getLogger(__name__)

# Confirmation latency spans sub-second callbacks to collection over days.
LATENCY_BUCKETS_SECONDS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600,
                           6 * 3600, 24 * 3600, 72 * 3600)

# --- HTTP (observability)
HTTP_REQUESTS = Counter(
    "disburse_http_requests_total", "HTTP requests served, by route endpoint and status",
    ["method", "endpoint", "status"])
HTTP_REQUEST_SECONDS = Histogram(
    "disburse_http_request_duration_seconds", "Time to serve an HTTP request",
    ["method", "endpoint"])

# --- jobs (observability)
JOBS = Counter("disburse_jobs_total", "Jobs run, by job and outcome (succeeded, failed)",
               ["job", "outcome"])
JOB_SECONDS = Histogram("disburse_job_duration_seconds", "Time to run one job", ["job"],
                        buckets=(0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600))

# --- dispatch
TRANSFERS_DISPATCHED = Counter(
    "disburse_transfers_dispatched_total", "Transfers accepted by a partner", ["partner"])
DISPATCH_ERRORS = Counter(
    "disburse_dispatch_errors_total", "Failed dispatch attempts by error kind", ["partner", "kind"])
DISPATCH_RETRIES = Counter(
    "disburse_dispatch_retries_total", "Failed dispatch attempts that will be retried",
    ["partner"])

# --- confirmations
CONFIRMATIONS = Counter(
    "disburse_confirmations_total", "Partner confirmations by outcome",
    ["partner", "outcome"])
CONFIRMATION_BATCH_SECONDS = Histogram(
    "disburse_confirmation_request_duration_seconds", "Time to apply one confirmation request",
    ["partner"])
CONFIRMATION_LATENCY = Histogram(
    "disburse_confirmation_latency_seconds",
    "From a transfer's sent event to the partner's first available or paid confirmation",
    ["partner"], buckets=LATENCY_BUCKETS_SECONDS)

# --- ledger
LEDGER_OUTSTANDING_CENTIMES = Gauge(
    "disburse_ledger_outstanding_centimes", "Released but neither paid nor returned",
    ["partner"], multiprocess_mode="mostrecent")

# --- partners (issue 3): circuit breakers and dead letters (retries: DISPATCH_RETRIES).
# Set by the process that changes them; "mostrecent" keeps the last write across
# workers, and every transition writes.
BREAKER_STATE = Gauge(
    "disburse_partner_breaker_state", "Circuit breaker: 0 closed, 1 half-open, 2 open",
    ["partner"], multiprocess_mode="mostrecent")
DEAD_LETTERS = Gauge(
    "disburse_dead_letters", "Outbox items whose retries are spent, waiting for an officer",
    multiprocess_mode="mostrecent")
# Routing (issue 3): per-point figures come from the API, not from labels.
SERVICE_POINT_COLLECTIONS = Counter(
    "disburse_service_point_collections_total",
    "Cash transfers collected at a service point, as the partner confirmed", ["partner"])
SMS_SENT = Counter(
    "disburse_sms_sent_total", "Beneficiary notifications accepted by the SMS gateway", ["partner"])


def observe_confirmation_latency(partner: str, seconds: Iterable[float]) -> None:
    histogram = CONFIRMATION_LATENCY.labels(partner=partner)
    for value in seconds:
        histogram.observe(value)


@contextmanager
def job(name: str) -> Iterator[None]:
    """Counts a job run and its duration; a failure is counted and re-raised."""
    started = time.perf_counter()
    try:
        yield
    except BaseException:
        JOBS.labels(job=name, outcome="failed").inc()
        raise
    else:
        JOBS.labels(job=name, outcome="succeeded").inc()
    finally:
        JOB_SECONDS.labels(job=name).observe(time.perf_counter() - started)


# --- read at scrape time (observability)
IN_FLIGHT_STATES = ("queued", "sent", "unknown")


class ServiceStateCollector:
    """Transfers by partner and state, the age of the oldest in-flight transfer
    per state, unknown outcomes, outbox and RQ queue depths, breakers,
    reconciliation exceptions, and transfers and amounts paid (counters: `paid`
    is terminal, so the sums only grow and `rate()` applies; an audited
    reversal reads as a counter reset): a handful of GROUP BY queries per scrape. When
    the database or Redis does not answer, `disburse_state_scrape_up` says 0
    and the other metrics of /metrics are still served."""

    def __init__(self, svc) -> None:
        self.svc = svc

    def describe(self):
        return list(self._families().values())

    def collect(self):
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
    def _families() -> dict[str, GaugeMetricFamily]:
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
            "up": GaugeMetricFamily("disburse_state_scrape_up",
                                    "1 when the database (and Redis) answered this scrape"),
        }

    def _fill(self, f: dict[str, GaugeMetricFamily]) -> None:
        from disbursement.domain.states import TransferStatus
        from disbursement.services.dispatch import partner_health
        from disbursement.services.monitoring import dashboard

        svc = self.svc
        with svc.uow() as session:
            by_state = dict(dashboard.transfers_by_state(session))
            oldest = dashboard.oldest_in_flight(session, IN_FLIGHT_STATES)
            outbox = dashboard.outbox_depths(session)
            breakers = partner_health.breaker_states(session)
            exceptions = dashboard.exceptions_by_type(session)
            paid = dashboard.paid_by_partner(session)
        partners = sorted(set(svc.partners) | set(by_state))
        now = datetime.now(timezone.utc)
        for partner in partners:
            counts = by_state.get(partner, {})
            for state in TransferStatus:
                f["transfers"].add_metric([partner, state.value], counts.get(state.value, 0))
            f["unknown"].add_metric([partner], counts.get(TransferStatus.UNKNOWN.value, 0))
            f["breaker"].add_metric([partner], 1 if breakers.get(partner) == "open" else 0)
        for state in IN_FLIGHT_STATES:
            at = oldest.get(state)
            f["oldest"].add_metric([state], (now - at).total_seconds() if at else 0)
        for status in ("pending", "dead"):
            f["outbox"].add_metric([status], outbox.get(status, 0))
        for row in paid:
            f["paid"].add_metric([row["partner"]], row["count"])
            f["paid_amount"].add_metric([row["partner"], row["currency"]], row["amount_centimes"])
        for outcome, count in exceptions.items():
            f["exceptions"].add_metric([outcome], count)
        if svc.settings.redis_url:
            rq = svc.queue.figures()
            f["rq"].add_metric([svc.queue.name], rq["rq_queued"])
            f["workers"].add_metric([svc.queue.name], rq["rq_workers"])


class _DefaultRegistry:
    """This process's own metrics (embedded mode: one process serves all)."""

    def collect(self):
        return REGISTRY.collect()


def scrape_registry(svc, multiprocess_dir: str | None) -> CollectorRegistry:
    """What /metrics serves: the scrape-time collector, plus every process's
    files summed in multiprocess mode, or this process's registry otherwise."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(ServiceStateCollector(svc))
    if multiprocess_dir:
        from prometheus_client import multiprocess

        multiprocess.MultiProcessCollector(registry, path=multiprocess_dir)
    else:
        registry.register(_DefaultRegistry())
    return registry


# --- ledger (issue 4) -----------------------------------------------------------
# Set each time the ledger check runs (`disburse ledger check`, the demo, the
# API); "mostrecent" so the value survives gunicorn's multiprocess mode. Labels
# stay few: per partner, summed over the cycles the check covered.
LEDGER_FIGURE_CENTIMES = Gauge(
    "disburse_ledger_figure_centimes",
    "Ledger figures per partner at the last check, kind = released, paid, returned, "
    "outstanding, corrections or fees",
    ["partner", "kind"], multiprocess_mode="mostrecent")
LEDGER_DIFFERENCE_CENTIMES = Gauge(
    "disburse_ledger_difference_centimes",
    "Sum over cycles of |released - (paid + returned + outstanding + corrections)| and of "
    "the ledger's disagreements with the transfers, per partner, at the last check",
    ["partner"], multiprocess_mode="mostrecent")
LEDGER_BALANCED = Gauge(
    "disburse_ledger_balanced", "1 when the last ledger check balanced, else 0",
    multiprocess_mode="mostrecent")
LEDGER_UNBALANCED_POSTINGS = Gauge(
    "disburse_ledger_unbalanced_postings", "Postings whose legs do not sum to zero",
    multiprocess_mode="mostrecent")
LEDGER_FIGURES = ("released", "paid", "returned", "outstanding", "corrections", "fees")


def record_ledger_check(report) -> None:
    """Publishes a `ledger.LedgerReport`."""
    figures: dict[tuple[str, str], int] = {}
    gaps: dict[str, int] = {}
    for c in report.cycles:
        for kind in LEDGER_FIGURES:
            figures[(c.partner, kind)] = figures.get((c.partner, kind), 0) + getattr(c, kind)
        gaps[c.partner] = gaps.get(c.partner, 0) + sum(c.gaps())
    for (partner, kind), centimes in figures.items():
        LEDGER_FIGURE_CENTIMES.labels(partner=partner, kind=kind).set(centimes)
    for partner, centimes in gaps.items():
        LEDGER_DIFFERENCE_CENTIMES.labels(partner=partner).set(centimes)
        LEDGER_OUTSTANDING_CENTIMES.labels(partner=partner).set(figures[(partner, "outstanding")])
    LEDGER_BALANCED.set(1 if report.balanced else 0)
    LEDGER_UNBALANCED_POSTINGS.set(len(report.unbalanced_postings))
