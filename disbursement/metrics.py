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

# partners (issue 3): retries, circuit breakers, dead letters.
DISPATCH_RETRIES = Counter(
    "disburse_dispatch_retries_total", "Failed dispatch attempts scheduled for a retry",
    ["partner"])
BREAKER_STATE = Gauge(
    "disburse_partner_breaker_state", "Circuit breaker: 0 closed, 1 half-open, 2 open",
    ["partner"])
DEAD_LETTERS = Gauge(
    "disburse_dead_letters", "Outbox items whose retries are spent, waiting for an officer")
