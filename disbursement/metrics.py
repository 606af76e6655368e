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
# Routing (issue 3): per-point figures come from the API, not from labels.
SERVICE_POINT_COLLECTIONS = Counter(
    "disburse_service_point_collections_total",
    "Cash transfers collected at a service point, as the partner confirmed", ["partner"])
SMS_SENT = Counter(
    "disburse_sms_sent_total", "Beneficiary notifications accepted by the SMS gateway", ["partner"])
