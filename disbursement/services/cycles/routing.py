"""Routing as planning applies it: the router of one planning run, built from
configuration and a few grouped queries (service points, the load already
planned on each day, open breakers), the store of decision explanations, and
`explain`, which says why a household's transfer went where it went."""
from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from datetime import date, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from disbursement.db.models import Batch, Household, PaymentInstruction, Transfer
from disbursement.db.models.routing import RouteExplanation
from disbursement.db.models.routing import ServicePoint as ServicePointRow
from disbursement.db.upsert import insert_ignore
from disbursement.domain.entitlement import ProgramRules
from disbursement.domain.routing import PartnerDays, Router
from disbursement.domain.service_points import PointBook, ServicePoint
from disbursement.domain.states import CLOSED_ATTEMPT
from disbursement.services.dispatch.partner_health import open_partners
from disbursement.services.ports import Services

_CLOSED = [s.value for s in CLOSED_ATTEMPT]


class HouseholdNotFound(LookupError):
    """Raised when `explain` is asked about a household id the registry does not hold."""


def pickup_window(period: str, days: int, not_before: date | None = None) -> list[date]:
    """The dates cash may first be collected on: from the first of the period's
    month, or from `not_before` when that is later (a re-issue planned mid-month
    is never given a pickup date in the past)."""
    first = date(int(period[:4]), int(period[5:7]), 1)
    if not_before is not None and not_before > first:
        first = not_before
    return [first + timedelta(days=i) for i in range(max(1, days))]


def build_router(svc: Services, session: Session, rules: ProgramRules, cycle_id: int,
                 window: Sequence[date]) -> Router:
    """One router for one planning run, knowing what earlier runs of the same
    cycle already gave each partner, and what every cycle already sends to each
    service point on each window day."""
    day_of = {d: i for i, d in enumerate(window)}
    partner_used: dict[tuple[str, int], int] = {}
    for partner, pickup, count in session.execute(
            select(Transfer.partner_code, Transfer.pickup_from, func.count())
            .join(Batch, Batch.id == Transfer.batch_id)
            .where(Batch.cycle_id == cycle_id, Transfer.status.not_in(_CLOSED))
            .group_by(Transfer.partner_code, Transfer.pickup_from)):
        day = 0 if pickup is None else day_of.get(pickup)
        if day is not None:
            partner_used[(partner, day)] = partner_used.get((partner, day), 0) + count
    point_used: dict[tuple[str, str, int], tuple[int, int]] = {}
    for partner, point, pickup, count, total in session.execute(
            select(Transfer.partner_code, Transfer.service_point, Transfer.pickup_from,
                   func.count(), func.sum(Transfer.amount_centimes))
            .where(Transfer.service_point.is_not(None), Transfer.pickup_from.in_(list(window)),
                   Transfer.status.not_in(_CLOSED))
            .group_by(Transfer.partner_code, Transfer.service_point, Transfer.pickup_from)):
        if point is not None and pickup is not None:   # always so: the WHERE says it
            point_used[(partner, point, day_of[pickup])] = (count, int(total))
    points = PointBook(load_points(session), svc.configuration.communes, window,
                       point_used)
    return Router(svc.partners, rules.default_partner_by_region,
                  open_breakers=open_partners(session), window_days=len(window),
                  load=PartnerDays(svc.partners, len(window), partner_used), points=points)


def load_points(session: Session, partner_code: str | None = None) -> list[ServicePoint]:
    stmt = select(ServicePointRow).where(ServicePointRow.active.is_(True))
    if partner_code:
        stmt = stmt.where(ServicePointRow.partner_code == partner_code)
    return [ServicePoint(r.code, r.partner_code, r.name, r.address, r.region_code,
                         r.province_code, r.commune_code, r.latitude_micro, r.longitude_micro,
                         r.opening_days, r.daily_capacity_transfers, r.daily_capacity_centimes)
            for r in session.execute(stmt).scalars()]


class ExplanationStore:
    """Each distinct list of routing steps stored once; ids remembered for the run."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.known: dict[tuple[str, ...], int] = {}

    def ids(self, all_steps: Sequence[tuple[str, ...]]) -> list[int]:
        fresh = {steps: _digest(steps) for steps in set(all_steps) if steps not in self.known}
        if fresh:
            table = RouteExplanation.__table__
            insert_ignore(self.session, table,
                          [{"digest": d, "steps": list(s)} for s, d in fresh.items()],
                          key=["digest"])
            by_digest = dict(self.session.execute(
                select(RouteExplanation.digest, RouteExplanation.id)
                .where(RouteExplanation.digest.in_(list(fresh.values())))).all())
            for steps, digest in fresh.items():
                self.known[steps] = by_digest[digest]
        return [self.known[steps] for steps in all_steps]


def _digest(steps: tuple[str, ...]) -> str:
    return hashlib.sha256(json.dumps(list(steps), ensure_ascii=False).encode()).hexdigest()


def explain(session: Session, household_id: str, period: str | None = None,
            program: str | None = None) -> dict:
    """Why each of a household's instructions (latest period first, or the
    period asked) went to its partner and service point."""
    household = session.execute(select(Household.id).where(
        Household.household_id == household_id)).scalar_one_or_none()
    if household is None:
        raise HouseholdNotFound(f"no household {household_id} in the registry")
    stmt = (select(PaymentInstruction, RouteExplanation.steps)
            .outerjoin(RouteExplanation,
                       RouteExplanation.id == PaymentInstruction.route_explanation_id)
            .where(PaymentInstruction.household_pk == household)
            .order_by(PaymentInstruction.period.desc(), PaymentInstruction.program))
    if period:
        stmt = stmt.where(PaymentInstruction.period == period)
    if program:
        stmt = stmt.where(PaymentInstruction.program == program)
    out: list[dict[str, Any]] = []
    for instruction, steps in session.execute(stmt).all():
        if out and not period and instruction.period != out[0]["period"]:
            break  # the latest period only, unless one was asked
        transfers = session.execute(select(Transfer).where(
            Transfer.instruction_id == instruction.id).order_by(Transfer.attempt)).scalars()
        out.append({
            "program": instruction.program, "period": instruction.period,
            "amount_centimes": instruction.amount_centimes, "currency": instruction.currency,
            "partner": instruction.partner_code, "reason": instruction.route_reason,
            "steps": list(steps or []),
            "transfers": [{"reference": t.reference, "attempt": t.attempt,
                           "partner": t.partner_code, "channel": t.channel, "status": t.status,
                           "fee_centimes": t.fee_centimes, "service_point": t.service_point,
                           "pickup_from": t.pickup_from.isoformat() if t.pickup_from else None}
                          for t in transfers]})
    return {"household_id": household_id, "instructions": out}
