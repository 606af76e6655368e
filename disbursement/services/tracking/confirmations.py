"""Partner confirmations: `sent -> available -> paid` (or `rejected`), and
`expired` (not collected in time) and `cancelled` (the partner confirms a
cancellation we asked for; the release is then reversed in the ledger).

They arrive by the inbound path (`inbound`), shared with returns: one unknown
reference, or one belonging to another partner, refuses the whole message and
changes nothing; a replayed event id is a duplicate. Duplicates (same event
id, or a transfer already in that state) and stale messages (a transfer
already past that state) change nothing and are reported calmly, item by item.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from marshmallow import EXCLUDE, Schema, fields, validate
from sqlalchemy import bindparam, update
from sqlalchemy.orm import Session

from disbursement import metrics
from disbursement.db.models import Transfer
from disbursement.domain.errors import BadInput
from disbursement.domain.states import TransferStatus as S
from disbursement.services.ledger import postings as ledger
from disbursement.services.ports import Services
from disbursement.services.tracking import inbound, latency, transitions

# Paid before expired: when both arrive together the money reached the
# beneficiary, and `expired` is then stale.
TARGETS_IN_ORDER = (S.AVAILABLE, S.PAID, S.EXPIRED, S.REJECTED, S.CANCELLED)


class ConfirmationSchema(Schema):
    class Meta:
        unknown = EXCLUDE

    event_id = fields.String(load_default=None, validate=validate.Length(max=64))
    reference = fields.String(required=True, validate=validate.Length(min=1, max=16))
    status = fields.String(required=True,
                           validate=validate.OneOf([t.value for t in TARGETS_IN_ORDER]))
    occurred_at = fields.DateTime(load_default=None)
    reason = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=200))
    service_point = fields.String(load_default=None, allow_none=True,
                                  validate=validate.Length(max=32))


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
    results: list[dict] = field(default_factory=list)
    # seconds from sent to confirmed of the transfers this message moved (metrics only)
    latencies: list[float] = field(default_factory=list, repr=False)

    def count(self, outcome: str) -> None:
        attribute = {"applied": "applied", "duplicate": "duplicates", "stale": "stale"}[outcome]
        setattr(self, attribute, getattr(self, attribute) + 1)

    def as_dict(self) -> dict:
        return {"applied": self.applied, "duplicates": self.duplicates, "stale": self.stale,
                "results": self.results}


def parse(payload: Any) -> list[dict]:
    return inbound.load_items(payload, _schema, BadConfirmation, "confirmation")


def apply(svc: Services, partner_code: str, items: list[dict]) -> ConfirmationReport:
    """Applies parsed confirmations through the inbound path, then counts them."""
    started = time.perf_counter()
    report = inbound.receive(svc, partner_code, items, _outcomes)
    for name, count in (("applied", report.applied), ("duplicate", report.duplicates),
                        ("stale", report.stale)):
        if count:
            metrics.CONFIRMATIONS.labels(partner=partner_code, outcome=name).inc(count)
    metrics.observe_confirmation_latency(partner_code, report.latencies)
    metrics.CONFIRMATION_BATCH_SECONDS.labels(partner=partner_code).observe(
        time.perf_counter() - started)
    return report


def _outcomes(session: Session, partner_code: str, items: list[dict], replayed: set[int],
              transfers: dict[str, inbound.TransferRow]) -> ConfirmationReport:
    """The confirmations' outcome handler: each item applied, duplicate or stale."""
    report = ConfirmationReport()
    fresh = [item for index, item in enumerate(items) if index not in replayed]
    # transfer id -> states it entered during this message
    entered: dict[int, set[str]] = {}
    for target in TARGETS_IN_ORDER:
        group = [it for it in fresh if it["status"] == target.value]
        for tid in _apply_group(session, partner_code, target, group, transfers):
            entered.setdefault(tid, set()).add(target.value)
    report.latencies = latency.sent_to_confirmed_seconds(
        session, [(row.id, row.status) for row in transfers.values()], entered)
    current = transitions.statuses(session, [row.id for row in transfers.values()])
    for index, item in enumerate(items):
        tid = transfers[item["reference"]].id
        if index not in replayed and item["status"] in entered.get(tid, ()):
            entered[tid].discard(item["status"])  # a second copy is a duplicate
            outcome = "applied"
        elif index in replayed or current[tid] == item["status"]:
            outcome = "duplicate"
        else:
            outcome = "stale"
        report.count(outcome)
        report.results.append({"reference": item["reference"], "outcome": outcome,
                               "status": current[tid]})
    return report


def _apply_group(session: Session, partner_code: str, target: S, group: list[dict],
                 transfers: dict[str, inbound.TransferRow]) -> list[int]:
    if not group:
        return []
    ids = list(dict.fromkeys(transfers[item["reference"]].id for item in group))
    moved = transitions.move(session, ids, target, source="partner", actor=partner_code,
                             detail=f"partner confirmed {target.value}")
    if not moved:
        return []
    moved_set = set(moved)
    extras = [{"tid": transfers[it["reference"]].id, "sp": it["service_point"],
               "reason": it["reason"]}
              for it in group if transfers[it["reference"]].id in moved_set
              and (it["service_point"] or it["reason"])]
    if extras:
        transfers_table = Transfer.__table__
        session.execute(update(transfers_table)
                        .where(transfers_table.c.id == bindparam("tid"))
                        .values(service_point=bindparam("sp"), status_reason=bindparam("reason")),
                        extras)
    if target == S.PAID:
        ledger.post_payments(session, moved, f"{len(moved)} payment(s) confirmed by {partner_code}")
        metrics.SERVICE_POINT_COLLECTIONS.labels(partner=partner_code).inc(
            sum(1 for extra in extras if extra["sp"]))
    if target == S.CANCELLED:
        ledger.post_cancellations(session, moved, f"{len(moved)} cancellation(s) confirmed by "
                                           f"{partner_code}")
    return moved
