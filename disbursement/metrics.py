"""Every Prometheus metric of the service, in one place.

Names follow Prometheus conventions: `disburse_<noun>_<unit>`, counters end in
`_total`, durations are `_seconds` histograms, amounts are integer centimes.
Labels stay few and bounded: partner, state, outcome, job, endpoint.

Values are counted where work enters and leaves (HTTP requests, jobs, dispatch,
confirmations). Under gunicorn and RQ workers each process writes its own
files in PROMETHEUS_MULTIPROC_DIR and `/metrics` sums them (multiprocess
mode); a gauge therefore needs a `multiprocess_mode` saying how to combine
processes.

Figures read from the database and Redis when Prometheus scrapes are not
defined here: that collector queries, so it is an adapter
(`disbursement.web.scrape.ServiceStateCollector`), computed once per
scrape by the process serving `/metrics`. This module imports no service:
services import it to count their work.
"""
from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

from prometheus_client import Counter, Gauge, Histogram

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
PARTNER_DISPUTES = Counter(
    "disburse_partner_disputes_total",
    "Partner messages contradicting our records (paid for a cancelled, rejected, returned or "
    "expired transfer; an amount not the transfer's): each opens an exception",
    ["partner"])
RECOVERED_IN_DOUBT = Counter(
    "disburse_recovered_in_doubt_total",
    "Transfers in `sending` or `unknown` settled by asking the partner, by our resulting state",
    ["partner", "status"])
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
