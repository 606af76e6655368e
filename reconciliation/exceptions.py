"""The exceptions queue: every reconciliation outcome that is not `matched`,
waiting for an officer's resolution.

Read (makers, approvers, auditors): `list_exceptions` (filters, keyset
pagination), `get_exception`, `counts_by_type`. Resolve (approvers):
`resolve` with a kind and a reason, audited:

- write_off: the signed difference (statement minus our records) is booked
  from the partner's clearing account to the program's corrections account;
- correction_posting: the same accounts, with the officer's signed amount;
- reissue: the transfer is re-issued as a new attempt in a draft batch, in
  the resolution's transaction (a refused re-issue resolves nothing);
  a re-issue refused by rule (deceased, duplicate, identity, wallet rules, a
  reason the program does not list) opens a `not_reissuable` exception;
- chase_partner: the decision is recorded; the partner owes us an answer.

Statuses: `expected` (a payment missing from a statement, within the partner's
SLA) -> `open` (past it; `escalate`) -> `resolved` (rows of older versions may
still be `reissue_requested`). A later statement that carries the missing
payment resolves the item itself (`matched_later`).
"""
from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from disbursement.db.models import as_utc, utcnow
from disbursement.db.models.ledger import ReconException
from disbursement.db.rowcount import rows_changed
from disbursement.domain.errors import BadInput, Conflict, NotFound
from disbursement.domain.reissue import NOT_REISSUABLE_EXCEPTION
from disbursement.domain.states import UNSETTLED_EXCEPTIONS, ExceptionStatus, Role
from disbursement.services.batches import reissue
from disbursement.services.ledger import postings as ledger
from disbursement.services.officers import audit
from disbursement.services.officers.users import Actor
from disbursement.services.ports import Services
from reconciliation.matcher import AGEING_BUCKETS, EXCEPTIONS, Outcome, ageing_bucket

PAGE_SIZE = 100
# The last ageing bucket: older than the oldest bounded one.
OLDEST_BUCKET = ">60"
AGES = (*(name for name, _ in AGEING_BUCKETS), OLDEST_BUCKET)
STATUSES = tuple(s.value for s in ExceptionStatus)
UNSETTLED = tuple(s.value for s in UNSETTLED_EXCEPTIONS)


class ResolutionKind(enum.StrEnum):
    WRITE_OFF = "write_off"
    CORRECTION_POSTING = "correction_posting"
    REISSUE = "reissue"
    CHASE_PARTNER = "chase_partner"


class ExceptionNotFound(NotFound, LookupError):
    """Raised when no exception has the given id."""


class AlreadyResolved(Conflict):
    """Raised when resolving an exception that is no longer expected or open."""


class UnknownAge(BadInput, ValueError):
    """Raised when an age filter names no ageing bucket."""


class BadResolution(BadInput, ValueError):
    """Raised when a resolution lacks a reason, names an unknown kind, or a
    correction lacks its amount (or the program and period it concerns)."""


@dataclass(frozen=True)
class ExceptionView:
    id: int
    type: str
    status: str
    partner: str
    program: str | None
    period: str | None
    reference: str | None
    amount_centimes: int
    currency: str
    detail: str | None
    statement_id: int | None
    line_no: int | None
    since: datetime
    due_at: datetime | None
    age_days: int
    ageing_bucket: str
    resolution: str | None
    resolution_reason: str | None
    resolved_by: str | None
    posting_id: int | None

    def as_dict(self) -> dict:
        out = dict(self.__dict__)
        out["since"] = self.since.isoformat()
        out["due_at"] = self.due_at.isoformat() if self.due_at else None
        return out


def _view(row: ReconException, today: date) -> ExceptionView:
    since = as_utc(row.since)
    return ExceptionView(row.id, row.type, row.status, row.partner_code, row.program, row.period,
                         row.reference, row.amount_centimes, row.currency, row.detail,
                         row.statement_id, row.line_no, since,
                         as_utc(row.due_at) if row.due_at else None,
                         (today - since.date()).days, ageing_bucket(since.date(), today),
                         row.resolution, row.resolution_reason, row.resolved_by, row.posting_id)


# --- writing (called by reconciliation and returns) ------------------------------

def escalate(session: Session, now: datetime | None = None) -> int:
    """Expected items whose SLA has passed become open exceptions."""
    return rows_changed(session, update(ReconException)
                        .where(ReconException.status == ExceptionStatus.EXPECTED.value,
                               ReconException.due_at < (now or utcnow()))
                        .values(status=ExceptionStatus.OPEN.value))


def _correction_amount(resolution: ResolutionKind, row: ReconException,
                       amount_centimes: int | None) -> int:
    """A write-off books the exception's own amount; a correction posting the
    officer's (checked non-zero before anything is locked)."""
    if resolution == ResolutionKind.WRITE_OFF:
        return row.amount_centimes
    if not amount_centimes:
        raise BadResolution("a correction posting needs a non-zero amount_centimes")
    return amount_centimes


def close_matched_later(session: Session, transfer_ids: Sequence[int], statement_id: int) -> None:
    if transfer_ids:
        session.execute(update(ReconException).where(
            ReconException.transfer_id.in_(list(transfer_ids)),
            ReconException.type == Outcome.MISSING_FROM_STATEMENT.value,
            ReconException.resolution.is_(None))
            .values(status=ExceptionStatus.RESOLVED.value, resolution="matched_later",
                    resolved_by="system",
                    resolved_at=utcnow(), resolution_reason=f"on statement {statement_id}"))


# --- reading --------------------------------------------------------------------

def _age_window(age: str, today: date):
    """The `since` condition of the ageing bucket `age` seen on `today`: the
    same day boundaries (UTC midnight) as `ageing_bucket` and the reports."""
    def midnight(days_ago: int) -> datetime:
        return datetime.combine(today - timedelta(days=days_ago), time(), tzinfo=UTC)

    lower_days = 0
    for name, upper_days in AGEING_BUCKETS:
        if name == age:
            newest = ReconException.since >= midnight(upper_days)
            if lower_days == 0:
                return newest
            return newest & (ReconException.since < midnight(lower_days - 1))
        lower_days = upper_days + 1
    if age == OLDEST_BUCKET:
        return ReconException.since < midnight(lower_days - 1)
    raise UnknownAge(f"unknown age {age!r}; one of {', '.join(AGES)}")


def list_exceptions(session: Session, *, type: str | None = None, partner: str | None = None,
                    status: str | None = None, age: str | None = None, after: int = 0,
                    limit: int = PAGE_SIZE,
                    today: date | None = None) -> tuple[list[ExceptionView], int | None]:
    """One page in id order after `after`; returns the page and the id to pass
    as `after` for the next page (None on the last page). `age` is an ageing
    bucket (`AGES`)."""
    today = today or utcnow().date()
    stmt = (select(ReconException).where(ReconException.id > after)
            .order_by(ReconException.id).limit(limit))
    if type:
        stmt = stmt.where(ReconException.type == type)
    if partner:
        stmt = stmt.where(ReconException.partner_code == partner)
    if status:
        stmt = stmt.where(ReconException.status == status)
    if age:
        stmt = stmt.where(_age_window(age, today))
    rows = session.execute(stmt).scalars().all()
    return [_view(r, today) for r in rows], (rows[-1].id if len(rows) == limit else None)


def get_exception(session: Session, exception_id: int, today: date | None = None) -> ExceptionView:
    row = session.get(ReconException, exception_id)
    if row is None:
        raise ExceptionNotFound(f"exception {exception_id} not found")
    return _view(row, today or utcnow().date())


def counts_by_type(session: Session, *, partner: str | None = None,
                   status: str | None = None, age: str | None = None,
                   today: date | None = None) -> dict[str, dict[str, int]]:
    """{type: {"count": n, "amount_centimes": signed sum}}."""
    stmt = (select(ReconException.type, func.count(), func.sum(ReconException.amount_centimes))
            .group_by(ReconException.type).order_by(ReconException.type))
    if partner:
        stmt = stmt.where(ReconException.partner_code == partner)
    if status:
        stmt = stmt.where(ReconException.status == status)
    if age:
        stmt = stmt.where(_age_window(age, today or utcnow().date()))
    return {t: {"count": n, "amount_centimes": int(a or 0)} for t, n, a in session.execute(stmt)}


# --- resolving ------------------------------------------------------------------

def resolve(svc: Services, exception_id: int, actor: Actor, kind: str, reason: str, *,
            amount_centimes: int | None = None, program: str | None = None,
            period: str | None = None) -> ExceptionView:
    """An approver's resolution of one exception, audited. `amount_centimes`
    (signed) is the correction's amount; `program` / `period` are needed only
    for an exception that has none (an unknown reference)."""
    actor.require(Role.APPROVER)
    try:
        resolution = ResolutionKind(kind)
    except ValueError:
        raise BadResolution(f"unknown resolution {kind!r}; one of "
                            f"{', '.join(k.value for k in ResolutionKind)}") from None
    if not reason or not reason.strip():
        raise BadResolution("a resolution needs a reason")
    if resolution == ResolutionKind.CORRECTION_POSTING and not amount_centimes:
        raise BadResolution("a correction posting needs a non-zero amount_centimes")
    with svc.uow() as session:
        row = session.execute(select(ReconException).where(ReconException.id == exception_id)
                              .with_for_update()).scalar_one_or_none()
        if row is None:
            raise ExceptionNotFound(f"exception {exception_id} not found")
        if row.status not in UNSETTLED:
            raise AlreadyResolved(f"exception {exception_id} is already {row.status}")
        posting_id = None
        if resolution in (ResolutionKind.WRITE_OFF, ResolutionKind.CORRECTION_POSTING):
            program, period = row.program or program, row.period or period
            if not program or not period:
                raise BadResolution(f"exception {exception_id} concerns no transfer: "
                                    "name the program and period the correction belongs to")
            amount = _correction_amount(resolution, row, amount_centimes)
            posting_id = ledger.post_correction(
                session, resolution.value, program, period, row.partner_code, amount,
                f"{resolution.value} of exception {exception_id} by {actor.username}")
        elif resolution == ResolutionKind.REISSUE:
            _reissue(svc, session, row, actor)
        session.execute(update(ReconException).where(ReconException.id == exception_id).values(
            status=ExceptionStatus.RESOLVED.value, resolution=resolution.value,
            resolution_reason=reason.strip()[:500],
            resolved_by=actor.username, resolved_at=utcnow(), posting_id=posting_id))
        audit.record(session, actor.username, f"exception.{resolution.value}", "recon_exception",
                     exception_id, {"type": row.type, "partner": row.partner_code,
                                    "reference": row.reference, "reason": reason.strip(),
                                    "amount_centimes": row.amount_centimes,
                                    "posting_id": posting_id})
        session.commit()
        return get_exception(session, exception_id)


def _reissue(svc: Services, session: Session, row: ReconException, actor: Actor) -> None:
    """Re-issues the exception's transfer as a new attempt (in a draft batch, so
    maker-checker applies before anything is sent), in the resolution's own
    transaction: the resolution and the new attempt commit together or not at
    all. Raises BadResolution, and resolves nothing, when the transfer cannot be
    re-issued."""
    if row.transfer_id is None:
        raise BadResolution(f"exception {row.id} concerns no transfer: nothing to re-issue")
    report = reissue.reissue_in(svc, session, [row.transfer_id], actor)
    if report.refused:
        raise BadResolution("cannot re-issue: " + "; ".join(
            f"{r['reference']}: {r['reason']}" for r in report.refused))


def due_date(since: datetime, sla_days: int) -> datetime:
    return since + timedelta(days=sla_days)


def known_types() -> list[str]:
    """Reconciliation outcomes, and the kinds other use cases open for an officer
    (a re-issue refused by rule)."""
    return sorted([*(o.value for o in EXCEPTIONS), NOT_REISSUABLE_EXCEPTION])
