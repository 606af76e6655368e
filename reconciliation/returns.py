"""The partner's return of funds, and the households owed arrears.

Funds come back for an expired transfer (which becomes `returned`) or for a
rejected / failed attempt (whose money sat in the partner's clearing account;
the attempt keeps its state). A cancelled transfer's release was already
reversed when the partner confirmed the cancellation. Either way, in one
transaction: the state change, a `FundReturn` row (one per transfer: a second
return is a duplicate), the return posting, and for an expired transfer an
`Arrears` row for the household.
A return of a paid transfer, or of one still live, is not allowed by the state
table: it changes nothing and is flagged in the exceptions queue.

Returns arrive by the signed partner API (`apply_partner_returns`, through the
inbound path shared with confirmations), or as
RETURN entries of a statement file (`reconcile` calls `book_returns`).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from marshmallow import EXCLUDE, Schema, fields, validate
from sqlalchemy import insert, literal, select
from sqlalchemy.orm import Session

from disbursement.db.bulk import write_rows
from disbursement.db.models import PaymentInstruction, Transfer, utcnow
from disbursement.db.models.ledger import Arrears, FundReturn
from disbursement.domain.errors import BadInput
from disbursement.domain.states import TransferStatus as S
from disbursement.services.ledger import postings as ledger
from disbursement.services.ports import Services
from disbursement.services.tracking import inbound, officer_queue, transitions
from reconciliation.matcher import FUNDS_RETURNABLE, Outcome


class BadReturn(BadInput, ValueError):
    """Raised when a returns body is not a return or a non-empty list of them."""

    def __init__(self, message: str, details: Any = None) -> None:
        super().__init__(message)
        self.details = details


class ReturnSchema(Schema):
    class Meta:
        unknown = EXCLUDE

    event_id = fields.String(load_default=None, validate=validate.Length(max=64))
    reference = fields.String(required=True, validate=validate.Length(min=1, max=16))
    reason_code = fields.String(load_default=None, allow_none=True,
                                validate=validate.Length(max=16))


_schema = ReturnSchema(many=True)


def parse(payload: Any) -> list[dict]:
    return inbound.load_items(payload, _schema, BadReturn, "return")


def book_returns(session: Session, partner_code: str, transfers: dict[int, str], *,
                 source: str, reason_code: str | None = None) -> set[int]:
    """Books the funds given back for `transfers` (id -> current status) whose
    status allows it and whose funds were not returned yet; returns their ids."""
    candidates = [tid for tid, status in transfers.items() if status in FUNDS_RETURNABLE]
    if not candidates:
        return set()
    already = set(session.execute(select(FundReturn.transfer_id)
                                  .where(FundReturn.transfer_id.in_(candidates))).scalars())
    expired = [tid for tid in candidates
               if transfers[tid] == S.EXPIRED.value and tid not in already]
    moved = set(transitions.move(session, expired, S.RETURNED, source="partner", actor=partner_code,
                                 detail=f"funds returned ({source})", sources=[S.EXPIRED]))
    booked = moved | {tid for tid in candidates
                      if transfers[tid] != S.EXPIRED.value and tid not in already}
    if not booked:
        return booked
    ids = sorted(booked)
    now = utcnow()
    rows = session.execute(select(Transfer.id, Transfer.amount_centimes, Transfer.currency)
                           .where(Transfer.id.in_(ids))).all()
    write_rows(session, FundReturn.__table__,
               ["transfer_id", "partner_code", "amount_centimes", "currency", "source",
                "reason_code", "at"],
               [(r.id, partner_code, r.amount_centimes, r.currency, source, reason_code, now)
                for r in rows])
    ledger.post_returns(session, ids, f"{len(ids)} return(s) from {partner_code} ({source})")
    if moved:
        session.execute(insert(Arrears).from_select(
            ["household_pk", "transfer_id", "program", "period", "amount_centimes", "currency",
             "created_at"],
            select(PaymentInstruction.household_pk, Transfer.id, PaymentInstruction.program,
                   PaymentInstruction.period, Transfer.amount_centimes, Transfer.currency,
                   _now_literal(now))
            .join(PaymentInstruction, PaymentInstruction.id == Transfer.instruction_id)
            .where(Transfer.id.in_(sorted(moved)))))
    return booked


def _now_literal(now: datetime) -> Any:
    return literal(now, Arrears.__table__.c.created_at.type)


@dataclass
class ReturnsReport:
    returned: int = 0
    duplicates: int = 0
    not_allowed: int = 0
    results: list[dict] = field(default_factory=list)
    unspent: set[int] = field(default_factory=set, repr=False)   # every item is final

    def count(self, outcome: str) -> None:
        name = {"returned": "returned", "duplicate": "duplicates",
                "not_allowed": "not_allowed"}[outcome]
        setattr(self, name, getattr(self, name) + 1)

    def as_dict(self) -> dict:
        return {"returned": self.returned, "duplicates": self.duplicates,
                "not_allowed": self.not_allowed, "results": self.results}


def apply_partner_returns(svc: Services, partner_code: str, items: list[dict]) -> ReturnsReport:
    """A partner's signed list of returns, through the inbound path: all or
    nothing on the references (one unknown or foreign reference refuses the
    request); a replayed event id or an already returned transfer is a
    duplicate; a return our state table does not allow changes nothing and
    opens an exception."""
    return inbound.receive(svc, partner_code, items, _outcomes)


def _outcomes(session: Session, partner_code: str, items: list[dict], replayed: set[int],
              rows: dict[str, inbound.TransferRow]) -> ReturnsReport:
    """The returns' outcome handler: each item returned, duplicate or not allowed."""
    report = ReturnsReport()
    fresh = [i for n, i in enumerate(items) if n not in replayed]
    booked: set[int] = set()
    for reason in sorted({i["reason_code"] or "" for i in fresh}):
        group = {rows[i["reference"]].id: rows[i["reference"]].status
                 for i in fresh if (i["reason_code"] or "") == reason}
        booked |= book_returns(session, partner_code, group, source="api",
                               reason_code=reason or None)
    flagged: set[str] = set()
    for n, item in enumerate(items):
        row = rows[item["reference"]]
        if row.id in booked:
            outcome = "returned"
            booked.discard(row.id)  # a second copy in the same request is a duplicate
        elif n in replayed or row.status in FUNDS_RETURNABLE | {S.RETURNED.value}:
            outcome = "duplicate"
        else:
            outcome = "not_allowed"
            if row.reference not in flagged:
                flagged.add(row.reference)
                kind = (Outcome.RETURN_OF_PAID if row.status == S.PAID.value
                        else Outcome.RETURN_NOT_ALLOWED)
                officer_queue.open_for_transfers(session, partner_code, [(
                    row.id, kind, -row.amount_centimes, row.currency,
                    f"partner returned funds of a {row.status} transfer")])
        report.count(outcome)
        report.results.append({"reference": row.reference, "outcome": outcome})
    return report


def arrears_due(session: Session, program: str) -> list[dict]:
    """Households whose transfer came back and who have not been paid their
    arrears yet, for the planner of the next cycle (when `pay_arrears`)."""
    rows = session.execute(select(Arrears).where(Arrears.program == program,
                                                 Arrears.settled_at.is_(None))
                           .order_by(Arrears.id)).scalars()
    return [{"household_pk": a.household_pk, "transfer_id": a.transfer_id, "period": a.period,
             "amount_centimes": a.amount_centimes, "currency": a.currency} for a in rows]
