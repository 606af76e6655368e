"""Every Prometheus metric of the service, in one place. Labels stay few:
partner and state."""
from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

TRANSFERS_DISPATCHED = Counter(
    "disburse_transfers_dispatched_total", "Transfers accepted by a partner", ["partner"])
DISPATCH_ERRORS = Counter(
    "disburse_dispatch_errors_total", "Failed dispatch attempts by error kind", ["partner", "kind"])
CONFIRMATIONS = Counter(
    "disburse_confirmations_total", "Partner confirmations by outcome",
    ["partner", "outcome"])
CONFIRMATION_BATCH_SECONDS = Histogram(
    "disburse_confirmation_request_seconds", "Time to apply one confirmation request",
    ["partner"])
LEDGER_OUTSTANDING_CENTIMES = Gauge(
    "disburse_ledger_outstanding_centimes", "Released but neither paid nor returned",
    ["partner"])

# --- ledger (issue 4) -----------------------------------------------------------
# Set each time `disburse ledger check` (or the demo, or the API) runs the check;
# "mostrecent" so the value survives gunicorn's multiprocess mode.
LEDGER_FIGURE_CENTIMES = Gauge(
    "disburse_ledger_figure_centimes",
    "Ledger figures per cycle and partner at the last check "
    "(released, paid, returned, outstanding, corrections, fees)",
    ["period", "partner", "figure"], multiprocess_mode="mostrecent")
LEDGER_DIFFERENCE_CENTIMES = Gauge(
    "disburse_ledger_difference_centimes",
    "released - (paid + returned + outstanding + corrections) at the last check",
    ["period", "partner"], multiprocess_mode="mostrecent")
LEDGER_BALANCED = Gauge(
    "disburse_ledger_balanced", "1 when the last ledger check balanced, else 0",
    multiprocess_mode="mostrecent")
LEDGER_UNBALANCED_POSTINGS = Gauge(
    "disburse_ledger_unbalanced_postings", "Postings whose legs do not sum to zero",
    multiprocess_mode="mostrecent")


def record_ledger_check(report) -> None:
    """Publishes a `ledger.LedgerReport`."""
    outstanding: dict[str, int] = {}
    for c in report.cycles:
        outstanding[c.partner] = outstanding.get(c.partner, 0) + c.outstanding
        for figure in ("released", "paid", "returned", "outstanding", "corrections", "fees"):
            LEDGER_FIGURE_CENTIMES.labels(period=c.period, partner=c.partner,
                                          figure=figure).set(getattr(c, figure))
        LEDGER_DIFFERENCE_CENTIMES.labels(period=c.period, partner=c.partner).set(
            c.released - c.paid - c.returned - c.outstanding - c.corrections)
    for partner, centimes in outstanding.items():
        LEDGER_OUTSTANDING_CENTIMES.labels(partner=partner).set(centimes)
    LEDGER_BALANCED.set(1 if report.balanced else 0)
    LEDGER_UNBALANCED_POSTINGS.set(len(report.unbalanced_postings))
