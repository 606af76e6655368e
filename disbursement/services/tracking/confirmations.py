"""Partner confirmations: `sent -> available -> paid` (or `rejected`), and
`expired` (not collected in time) and `cancelled` (the partner confirms a
cancellation we asked for; the release is then reversed in the ledger).

A request is all or nothing on its references: one unknown reference, or one
belonging to another partner, refuses the whole request and changes nothing.
Duplicates (same event id, or a transfer already in that state) and stale
messages (a transfer already past that state) change nothing and are reported
calmly, item by item.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from marshmallow import EXCLUDE, Schema, ValidationError, fields, validate
from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session

from disbursement import metrics
from disbursement.db.bulk import write_rows
from disbursement.db.models import InboundMessage, Transfer, utcnow
from disbursement.domain.errors import BadInput, NotFound
from disbursement.domain.states import TransferStatus as S
from disbursement.services.ledger import postings as ledger
from disbursement.services.ports import Services
from disbursement.services.tracking import latency, transitions

LOOKUP_CHUNK = 5_000
# Paid before expired: when both arrive together the money reached the
# beneficiary, and `expired` is then stale.
TARGETS_IN_ORDER = (S.AVAILABLE, S.PAID, S.EXPIRED, S.REJECTED, S.CANCELLED)


class ConfirmationSchema(Schema):
    class Meta:
        unknown = EXCLUDE

    event_id = fields.String(load_default=None, validate=validate.Length(max=64))
    reference = fields.String(required=True, validate=validate.Length(min=1, max=16))
    status = fields.String(required=True, validate=validate.OneOf([t.value for t in TARGETS_IN_ORDER]))
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


class UnknownReferences(NotFound, LookupError):
    """Raised when references are unknown or belong to another partner; nothing
    in the request is applied."""

    def __init__(self, references: list[str]) -> None:
        shown = ", ".join(references[:20]) + (" ..." if len(references) > 20 else "")
        super().__init__(f"unknown reference(s) for this partner: {shown}")
        self.references = references


@dataclass
class ConfirmationReport:
    applied: int = 0
    duplicates: int = 0
    stale: int = 0
    results: list[dict] = field(default_factory=list)

    def count(self, outcome: str) -> None:
        attribute = {"applied": "applied", "duplicate": "duplicates", "stale": "stale"}[outcome]
        setattr(self, attribute, getattr(self, attribute) + 1)

    def as_dict(self) -> dict:
        return {"applied": self.applied, "duplicates": self.duplicates, "stale": self.stale,
                "results": self.results}


def parse(payload: Any) -> list[dict]:
    items = payload if isinstance(payload, list) else [payload]
    if not items or not all(isinstance(i, dict) for i in items):
        raise BadConfirmation("body must be a confirmation object or a non-empty list of them")
    try:
        return _schema.load(items)
    except ValidationError as exc:
        raise BadConfirmation("invalid confirmation", exc.messages) from None


def apply(svc: Services, partner_code: str, items: list[dict]) -> ConfirmationReport:
    started = time.perf_counter()
    report = ConfirmationReport()
    with svc.uow() as session:
        transfers = _lookup(session, partner_code, {i["reference"] for i in items})
        missing = sorted({i["reference"] for i in items} - transfers.keys())
        if missing:
            raise UnknownReferences(missing)
        seen = _seen_events(session, partner_code, [i["event_id"] for i in items if i["event_id"]])
        replayed, fresh = set(), []
        for index, item in enumerate(items):
            if item["event_id"] and item["event_id"] in seen:
                replayed.add(index)
            else:
                fresh.append(item)
                if item["event_id"]:
                    seen.add(item["event_id"])
        # transfer id -> states it entered during this request
        entered: dict[int, set[str]] = {}
        for target in TARGETS_IN_ORDER:
            group = [it for it in fresh if it["status"] == target.value]
            for tid in _apply_group(session, partner_code, target, group, transfers):
                entered.setdefault(tid, set()).add(target.value)
        latencies = latency.sent_to_confirmed_seconds(session, transfers.values(), entered)
        current = transitions.statuses(session, [t[0] for t in transfers.values()])
        for index, item in enumerate(items):
            tid = transfers[item["reference"]][0]
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
        now = utcnow()
        write_rows(session, InboundMessage.__table__, ["partner_code", "event_id", "at"],
                   [(partner_code, i["event_id"], now) for i in fresh if i["event_id"]])
        session.commit()
    for name, count in (("applied", report.applied), ("duplicate", report.duplicates),
                        ("stale", report.stale)):
        if count:
            metrics.CONFIRMATIONS.labels(partner=partner_code, outcome=name).inc(count)
    metrics.observe_confirmation_latency(partner_code, latencies)
    metrics.CONFIRMATION_BATCH_SECONDS.labels(partner=partner_code).observe(
        time.perf_counter() - started)
    return report


def _lookup(session: Session, partner_code: str, references: set[str]) -> dict[str, tuple[int, str]]:
    refs = sorted(references)
    found: dict[str, tuple[int, str]] = {}
    for i in range(0, len(refs), LOOKUP_CHUNK):
        rows = session.execute(select(Transfer.reference, Transfer.id, Transfer.status)
                               .where(Transfer.reference.in_(refs[i:i + LOOKUP_CHUNK]),
                                      Transfer.partner_code == partner_code))
        found.update({ref: (tid, status) for ref, tid, status in rows})
    return found


def _seen_events(session: Session, partner_code: str, event_ids: list[str]) -> set[str]:
    seen: set[str] = set()
    for i in range(0, len(event_ids), LOOKUP_CHUNK):
        seen.update(session.execute(select(InboundMessage.event_id).where(
            InboundMessage.partner_code == partner_code,
            InboundMessage.event_id.in_(event_ids[i:i + LOOKUP_CHUNK]))).scalars())
    return seen


def _apply_group(session: Session, partner_code: str, target: S, group, transfers) -> list[int]:
    if not group:
        return []
    ids = list(dict.fromkeys(transfers[item["reference"]][0] for item in group))
    moved = transitions.move(session, ids, target, source="partner", actor=partner_code,
                             detail=f"partner confirmed {target.value}")
    if not moved:
        return []
    moved_set = set(moved)
    extras = [{"tid": transfers[it["reference"]][0], "sp": it["service_point"],
               "reason": it["reason"]}
              for it in group if transfers[it["reference"]][0] in moved_set
              and (it["service_point"] or it["reason"])]
    if extras:
        session.execute(update(Transfer.__table__).where(Transfer.__table__.c.id == bindparam("tid")).values(
            service_point=bindparam("sp"), status_reason=bindparam("reason")),
            extras)
    if target == S.PAID:
        ledger.post_payments(session, moved, f"{len(moved)} payment(s) confirmed by {partner_code}")
        metrics.SERVICE_POINT_COLLECTIONS.labels(partner=partner_code).inc(
            sum(1 for extra in extras if extra["sp"]))
    if target == S.CANCELLED:
        from disbursement.services.dispatch.cancellation import post_cancellations

        post_cancellations(session, moved, f"{len(moved)} cancellation(s) confirmed by "
                                           f"{partner_code}")
    return moved
