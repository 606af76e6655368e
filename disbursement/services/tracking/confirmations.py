"""Partner confirmations: `sent -> available -> paid` (or `rejected`), and
`expired` (not collected in time) and `cancelled` (the partner confirms a
cancellation we asked for; the release is then reversed in the ledger).

They arrive by the inbound path (`inbound`), shared with returns: one unknown
reference, or one belonging to another partner, refuses the whole message and
changes nothing; a replayed event id (same payload) is a duplicate, and the
same event id with another payload refuses the message (409). Each item is
then the partner's word (`partner_truth`): a transfer behind is taken along,
duplicates (a transfer already in that state) and stale items (already past
it) change nothing and are reported calmly; a `paid` that contradicts a
closed state is `disputed` (an exception is open). An item whose
`amount_centimes` or `currency` is not the transfer's is `refused`: nothing
is booked and an `amount_mismatch` exception is open.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from marshmallow import EXCLUDE, Schema, fields, validate
from sqlalchemy.orm import Session

from connectors.base import PartnerStatus
from disbursement import metrics
from disbursement.domain.errors import BadInput
from disbursement.services.ports import Services
from disbursement.services.tracking import (
    inbound,
    latency,
    officer_queue,
    partner_truth,
    transitions,
)
from reconciliation.matcher import Outcome

STATUSES = ("available", "paid", "expired", "rejected", "cancelled")
OUTCOMES = ("applied", "duplicate", "stale", "disputed", "refused")


class ConfirmationSchema(Schema):
    class Meta:
        unknown = EXCLUDE

    event_id = fields.String(load_default=None, validate=validate.Length(max=64))
    reference = fields.String(required=True, validate=validate.Length(min=1, max=16))
    status = fields.String(required=True,
                           validate=validate.OneOf(STATUSES))
    occurred_at = fields.DateTime(load_default=None)
    reason = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=200))
    service_point = fields.String(load_default=None, allow_none=True,
                                  validate=validate.Length(max=32))
    # Optional: when given, they must be the transfer's (or the item is refused).
    amount_centimes = fields.Integer(load_default=None, allow_none=True, strict=True,
                                     validate=validate.Range(min=1, max=10**15))
    currency = fields.String(load_default=None, allow_none=True,
                             validate=validate.Regexp(r"^[A-Z]{3}$"))


_schema = ConfirmationSchema(many=True)


class BadConfirmation(BadInput, ValueError):
    """Raised when a confirmation body is not a confirmation or a list of them."""

    def __init__(self, message: str, details: Any = None) -> None:
        super().__init__(message)
        self.details = details


@dataclass
class ConfirmationReport:
    applied: int = 0
    duplicates: int = 0
    stale: int = 0
    disputed: int = 0
    refused: int = 0
    results: list[dict] = field(default_factory=list)
    # seconds from sent to confirmed of the transfers this message moved (metrics only)
    latencies: list[float] = field(default_factory=list, repr=False)
    # items whose event id is not spent (stale: the partner may send it again)
    unspent: set[int] = field(default_factory=set, repr=False)

    def count(self, outcome: str) -> None:
        attribute = {"applied": "applied", "duplicate": "duplicates", "stale": "stale",
                     "disputed": "disputed", "refused": "refused"}[outcome]
        setattr(self, attribute, getattr(self, attribute) + 1)

    def as_dict(self) -> dict:
        return {"applied": self.applied, "duplicates": self.duplicates, "stale": self.stale,
                "disputed": self.disputed, "refused": self.refused, "results": self.results}


def parse(payload: Any) -> list[dict]:
    return inbound.load_items(payload, _schema, BadConfirmation, "confirmation")


def apply(svc: Services, partner_code: str, items: list[dict]) -> ConfirmationReport:
    """Applies parsed confirmations through the inbound path, then counts them."""
    started = time.perf_counter()
    report = inbound.receive(svc, partner_code, items, _outcomes)
    for name, count in (("applied", report.applied), ("duplicate", report.duplicates),
                        ("stale", report.stale), ("disputed", report.disputed),
                        ("refused", report.refused)):
        if count:
            metrics.CONFIRMATIONS.labels(partner=partner_code, outcome=name).inc(count)
    metrics.observe_confirmation_latency(partner_code, report.latencies)
    metrics.CONFIRMATION_BATCH_SECONDS.labels(partner=partner_code).observe(
        time.perf_counter() - started)
    return report


def _outcomes(session: Session, partner_code: str, items: list[dict], replayed: set[int],
              transfers: dict[str, inbound.TransferRow]) -> ConfirmationReport:
    """The confirmations' outcome handler: each item applied, duplicate, stale,
    disputed (an exception is open) or refused (amount or currency not the
    transfer's: an exception is open, nothing is booked)."""
    report = ConfirmationReport()
    outcome: dict[int, str] = dict.fromkeys(replayed, "duplicate")
    mismatched: list[tuple[int, Outcome, int, str, str]] = []
    words: list[partner_truth.Word] = []
    word_items: list[int] = []
    for n, item in enumerate(items):
        if n in replayed:
            continue
        row = transfers[item["reference"]]
        problem = _amount_problem(item, row)
        if problem is not None:
            outcome[n] = "refused"
            mismatched.append((row.id, Outcome.AMOUNT_MISMATCH,
                               (item.get("amount_centimes") or row.amount_centimes)
                               - row.amount_centimes,
                               item.get("currency") or row.currency, problem))
            continue
        words.append(partner_truth.Word(row.id, PartnerStatus(item["status"]), item["reason"],
                                        item["service_point"]))
        word_items.append(n)
    applied = partner_truth.apply(session, partner_code, words, source="partner",
                                  detail="partner confirmed")
    for n, verdict in zip(word_items, applied.verdicts, strict=True):
        outcome[n] = verdict
    opened = officer_queue.open_for_transfers(session, partner_code, mismatched)
    if opened:
        metrics.PARTNER_DISPUTES.labels(partner=partner_code).inc(opened)
    report.latencies = latency.sent_to_confirmed_seconds(
        session, applied.before.items(), applied.entered)
    current = dict(applied.after)
    current.update(transitions.statuses(
        session, [row.id for row in transfers.values() if row.id not in current]))
    for n, item in enumerate(items):
        row = transfers[item["reference"]]
        result = {"reference": item["reference"], "outcome": outcome[n],
                  "status": current[row.id]}
        if outcome[n] == "refused":
            result["error"] = _amount_problem(item, row)
        report.count(outcome[n])
        if outcome[n] == "stale":
            report.unspent.add(n)
        report.results.append(result)
    return report


def _amount_problem(item: dict, row: inbound.TransferRow) -> str | None:
    """What is wrong with a confirmation's amount or currency, if it gives them."""
    amount, currency = item.get("amount_centimes"), item.get("currency")
    if currency is not None and currency != row.currency:
        return f"currency {currency} is not the transfer's {row.currency}"
    if amount is not None and amount != row.amount_centimes:
        return (f"amount {amount} centimes is not the transfer's {row.amount_centimes} "
                f"{row.currency}")
    return None
