"""What the monitors' dashboard draws: one snapshot of the service, read with a
fixed number of set-based queries (GROUP BY) whatever the number of transfers.

`snapshot(session)` reads the database only; `snapshot_for(svc)` adds what the
database does not know (configured partners, the RQ queue and its workers).
Latency percentiles use `percentile_cont` on PostgreSQL; on SQLite the rows at
the two ranks around each percentile are picked with window functions and
interpolated here the same way (linear, like `percentile_cont`).
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, case, func, literal_column, or_, select
from sqlalchemy.orm import Session, aliased

from disbursement.db.models import Batch, OutboxItem, Transfer, TransferEvent, as_utc, utcnow
from disbursement.db.models.ledger import ReconException
from disbursement.domain.money import format_units
from disbursement.domain.states import ExceptionStatus, OutboxStatus
from disbursement.domain.states import TransferStatus as S
from disbursement.services.dispatch import partner_health
from disbursement.services.ports import Services

WINDOW_HOURS = 24
CONFIRMED = (S.AVAILABLE.value, S.PAID.value)
PERCENTILES = {"p50_seconds": 0.5, "p95_seconds": 0.95}


def snapshot(session: Session, now: datetime | None = None, *, partners: Iterable[str] = (),
             queues: Mapping[str, int] | None = None) -> dict:
    """The dashboard's data as JSON-ready values. `partners` adds configured
    partners that have no transfers yet; `queues` the RQ figures (the job
    queue's `figures()`), zeros when absent (in-process jobs)."""
    now = as_utc(now or utcnow())
    since = now - timedelta(hours=WINDOW_HOURS)
    postgres = session.get_bind().dialect.name == "postgresql"
    by_state = transfers_by_state(session)
    known = sorted(set(partners) | {p for p, _ in by_state})
    breakers = partner_health.breaker_states(session)
    return {
        "generated_at": now.isoformat(),
        "window_hours": WINDOW_HOURS,
        "transfers_by_state": _totals_by_state(by_state),
        "transfers_by_state_hourly": _hourly(session, since, postgres),
        "paid_by_partner": paid_by_partner(session),
        "confirmation_latency": confirmation_latency(session, since, postgres),
        "errors": _errors(session, since, known),
        "breakers": [{"partner": p, "state": breakers.get(p, "closed")} for p in known],
        "queues": {**_outbox(session), "rq_queued": 0, "rq_workers": 0, **(queues or {})},
        "exceptions_by_type": exceptions_by_type(session),
    }


def snapshot_for(svc: Services, now: datetime | None = None) -> dict:
    """The snapshot with the configured partners and, when Redis is
    configured, the RQ queue length and registered workers."""
    queues = svc.queue.figures() if svc.settings.redis_url else {}
    with svc.uow() as session:
        data = snapshot(session, now, partners=svc.partners.keys(), queues=queues)
    data["queues"]["jobs"] = "rq" if svc.settings.redis_url else "in-process"
    return data


def transfers_by_state(session: Session) -> list[tuple[str, dict[str, int]]]:
    """[(partner, {state: count})]: one GROUP BY that the (partner_code, status)
    index answers on its own. Shared with the scrape-time metrics collector."""
    rows = session.execute(select(Transfer.partner_code, Transfer.status, func.count())
                           .group_by(Transfer.partner_code, Transfer.status)).all()
    out: dict[str, dict[str, int]] = {}
    for partner, state, count in rows:
        out.setdefault(partner, {})[state] = count
    return sorted(out.items())


def _totals_by_state(by_state: list[tuple[str, dict[str, int]]]) -> dict[str, int]:
    totals = {s.value: 0 for s in S}
    for _, counts in by_state:
        for state, count in counts.items():
            totals[state] = totals.get(state, 0) + count
    return totals


def _hour_bucket(postgres: bool):
    if postgres:
        # Truncated in UTC so that a session time zone with a half-hour offset
        # cannot shift the buckets.
        return func.date_trunc("hour", func.timezone("UTC", TransferEvent.at))
    # SQLite keeps UTC timestamps as 'YYYY-MM-DD HH:MM:SS.ffffff' text.
    return func.strftime("%Y-%m-%d %H:00:00", TransferEvent.at)


def _as_hour(value) -> datetime:
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=UTC)


def _hourly(session: Session, since: datetime, postgres: bool) -> list[dict]:
    hour = _hour_bucket(postgres).label("hour")
    rows = session.execute(select(hour, TransferEvent.to_status, func.count())
                           .where(TransferEvent.at >= since)
                           .group_by(hour, TransferEvent.to_status)
                           .order_by(hour, TransferEvent.to_status)).all()
    return [{"hour": _as_hour(h).isoformat(), "state": state, "count": count}
            for h, state, count in rows]


def paid_by_partner(session: Session) -> list[dict]:
    rows = session.execute(select(Transfer.partner_code, Transfer.currency, func.count(),
                                  func.sum(Transfer.amount_centimes))
                           .where(Transfer.status == S.PAID.value)
                           .group_by(Transfer.partner_code, Transfer.currency)
                           .order_by(Transfer.partner_code, Transfer.currency)).all()
    return [{"partner": p, "currency": cur, "count": n, "amount_centimes": int(total),
             "amount": format_units(int(total))} for p, cur, n, total in rows]


def _latency_rows(session: Session, since: datetime, postgres: bool):
    """Per transfer first confirmed in the window: seconds from its last `sent`
    event to its first `available` or `paid` event. Reads only the window's
    confirmation events, then looks each transfer's earlier events up by
    transfer id (indexed), so the cost follows the window, not the history."""
    first = (select(TransferEvent.transfer_id, func.min(TransferEvent.at).label("confirmed_at"))
             .where(TransferEvent.to_status.in_(CONFIRMED), TransferEvent.at >= since)
             .group_by(TransferEvent.transfer_id).subquery("first"))
    earlier = aliased(TransferEvent)
    confirmed_before = (select(earlier.id).where(earlier.transfer_id == first.c.transfer_id,
                                                 earlier.to_status.in_(CONFIRMED),
                                                 earlier.at < since).exists())
    sent = aliased(TransferEvent)
    sent_at = (select(func.max(sent.at)).where(sent.transfer_id == first.c.transfer_id,
                                               sent.to_status == S.SENT.value,
                                               sent.at <= first.c.confirmed_at)
               .scalar_subquery())
    seconds: ColumnElement[Any]   # epoch seconds on PostgreSQL, days * 86400 elsewhere
    if postgres:
        seconds = func.extract("epoch", first.c.confirmed_at - sent_at)
    else:
        seconds = (func.julianday(first.c.confirmed_at) - func.julianday(sent_at)) * 86400.0
    rows = (select(Transfer.partner_code.label("partner"), seconds.label("seconds"))
            .select_from(first)
            .join(Transfer, Transfer.id == first.c.transfer_id)
            .where(~confirmed_before).subquery("timed"))
    # Transfers confirmed without ever being sent (resolved from `unknown`) have no latency.
    return select(rows.c.partner, rows.c.seconds).where(rows.c.seconds.is_not(None)).subquery(
        "latency")


def confirmation_latency(session: Session, since: datetime, postgres: bool) -> list[dict]:
    lat = _latency_rows(session, since, postgres)
    if postgres:
        rows = session.execute(
            select(lat.c.partner, func.count(),
                   *(func.percentile_cont(p).within_group(lat.c.seconds).label(name)
                     for name, p in PERCENTILES.items()))
            .group_by(lat.c.partner).order_by(lat.c.partner)).all()
        return [{"partner": r[0], **{name: round(float(v), 3) for name, v in
                                     zip(PERCENTILES, r[2:], strict=True)}, "samples": r[1]}
                for r in rows]
    return _latency_by_ranks(session, lat)


def _latency_by_ranks(session: Session, lat) -> list[dict]:
    """Portable percentile_cont: position p*(n-1) in each partner's sorted
    latencies, computed in integer hundredths so no rank is missed by rounding;
    only the rows at the floor and ceiling ranks come back."""
    rank = (func.row_number().over(partition_by=lat.c.partner, order_by=lat.c.seconds) - 1)
    ranked = select(lat.c.partner, lat.c.seconds, rank.label("rn"),
                    func.count().over(partition_by=lat.c.partner).label("n")).subquery("ranked")
    wanted = []
    for p in PERCENTILES.values():
        pos100: ColumnElement[int] = literal_column(str(round(p * 100))) * (ranked.c.n - 1)
        floor_rank = pos100 // 100
        ceiling_rank = floor_rank + case((pos100 % 100 > 0, 1), else_=0)
        wanted += [ranked.c.rn == floor_rank, ranked.c.rn == ceiling_rank]
    rows = session.execute(select(ranked.c.partner, ranked.c.n, ranked.c.rn, ranked.c.seconds)
                           .where(or_(*wanted))).all()
    by_partner: dict[str, tuple[int, dict[int, float]]] = {}
    for partner, n, rn, seconds in rows:
        by_partner.setdefault(partner, (n, {}))[1][rn] = float(seconds)
    out = []
    for partner, (n, at_rank) in sorted(by_partner.items()):
        entry: dict = {"partner": partner}
        for name, p in PERCENTILES.items():
            lower, frac100 = divmod(round(p * 100) * (n - 1), 100)
            value = at_rank[lower]
            if frac100:
                value += (at_rank[lower + 1] - value) * frac100 / 100
            entry[name] = round(value, 3)
        entry["samples"] = n
        out.append(entry)
    return out


def _errors(session: Session, since: datetime, partners: list[str]) -> list[dict]:
    """Last window, per partner: failed dispatch attempts recorded on outbox
    chunks (each failure is one `attempts` increment), the retries they led to
    (every failure but the last of a dead chunk), rejections and unknown
    outcomes (transfer events). Two queries; easy to re-point when dispatch
    attempts get a table of their own."""
    out = {p: {"partner": p, "dispatch_errors": 0, "retries": 0, "rejected": 0,
               "unknown_outcomes": 0} for p in partners}
    retries = case((OutboxItem.status == OutboxStatus.DEAD.value, OutboxItem.attempts - 1),
                   else_=OutboxItem.attempts)
    for partner, errors, retried in session.execute(
            select(Batch.partner_code, func.sum(OutboxItem.attempts), func.sum(retries))
            .join(Batch, Batch.id == OutboxItem.batch_id)
            .where(OutboxItem.updated_at >= since, OutboxItem.attempts > 0)
            .group_by(Batch.partner_code)):
        row = out.setdefault(partner, {"partner": partner, "dispatch_errors": 0, "retries": 0,
                                       "rejected": 0, "unknown_outcomes": 0})
        row["dispatch_errors"], row["retries"] = int(errors), int(retried)
    for partner, state, count in session.execute(
            select(Transfer.partner_code, TransferEvent.to_status, func.count())
            .join(Transfer, Transfer.id == TransferEvent.transfer_id)
            .where(TransferEvent.at >= since,
                   TransferEvent.to_status.in_([S.REJECTED.value, S.UNKNOWN.value]))
            .group_by(Transfer.partner_code, TransferEvent.to_status)):
        row = out.setdefault(partner, {"partner": partner, "dispatch_errors": 0, "retries": 0,
                                       "rejected": 0, "unknown_outcomes": 0})
        row["rejected" if state == S.REJECTED.value else "unknown_outcomes"] = count
    return [out[p] for p in sorted(out)]


def outbox_depths(session: Session) -> dict[str, int]:
    """Outbox items waiting (pending) or given up (dead), by status."""
    return dict(session.execute(select(OutboxItem.status, func.count())
                                .where(OutboxItem.status.in_([OutboxStatus.PENDING.value,
                                                              OutboxStatus.DEAD.value]))
                                .group_by(OutboxItem.status)).all())


def _outbox(session: Session) -> dict[str, int]:
    counts = outbox_depths(session)
    return {"outbox_pending": counts.get(OutboxStatus.PENDING.value, 0),
            "outbox_dead": counts.get(OutboxStatus.DEAD.value, 0)}


def oldest_in_flight(session: Session, states: Iterable[str]) -> dict[str, datetime]:
    """State -> when the transfer longest in that state entered it (its last update)."""
    rows = session.execute(select(Transfer.status, func.min(Transfer.updated_at))
                           .where(Transfer.status.in_(list(states)))
                           .group_by(Transfer.status)).all()
    return {state: as_utc(at) for state, at in rows}


def exceptions_by_type(session: Session) -> dict[str, int]:
    """Reconciliation exceptions by type still waiting for an officer (the
    queue of issue 4: expected, open or re-issue requested)."""

    return dict(session.execute(select(ReconException.type, func.count())
                                .where(ReconException.status != ExceptionStatus.RESOLVED.value)
                                .group_by(ReconException.type)
                                .order_by(ReconException.type)).all())
