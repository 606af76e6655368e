"""The service-point registry: loading a partner's file, and each point's load.

A partner's file is validated row by row; one bad row refuses the whole file
with every error named (line, field, message) and nothing changes. A good file
is upserted on (partner, code), so loading the same file twice changes nothing.
"""
from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from datetime import date
from typing import BinaryIO

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from disbursement.db.models import Transfer, utcnow
from disbursement.db.models.routing import ServicePoint
from disbursement.db.upsert import upsert
from disbursement.domain.service_points import (
    BadCoordinate,
    BadOpeningDays,
    parse_opening_days,
    to_micro_degrees,
)
from disbursement.domain.states import CLOSED_ATTEMPT, Role, TransferStatus
from disbursement.services.officers import audit
from disbursement.services.officers.users import Actor
from disbursement.services.ports import Services

COLUMNS = ("code", "name", "address", "region_code", "province_code", "commune_code",
           "latitude", "longitude", "opening_days", "daily_capacity_transfers",
           "daily_capacity_centimes")
ROWS_PER_STATEMENT = 1_000
MAX_CODE_LENGTH = 32
_CLOSED = [s.value for s in CLOSED_ATTEMPT]


class ServicePointFileError(ValueError):
    """Raised when a service-point file has bad rows (or no usable header);
    `errors` lists (line, field, message) and nothing was loaded."""

    def __init__(self, errors: list[tuple[int, str, str]]) -> None:
        shown = "; ".join(f"line {ln}, {f}: {m}" for ln, f, m in errors[:10])
        more = f" (and {len(errors) - 10} more)" if len(errors) > 10 else ""
        super().__init__(f"service-point file refused, nothing loaded: {shown}{more}")
        self.errors = errors
        self.details = [{"line": ln, "field": f, "message": m} for ln, f, m in errors]


class NotACashPartner(ValueError):
    """Raised when service points are loaded for a partner that does not pay cash."""


class ServicePointNotFound(LookupError):
    """Raised when no service point has the code (for the partner given)."""


@dataclass
class ImportResult:
    partner: str
    rows: int = 0
    created: int = 0
    updated: int = 0
    codes: list[str] = field(default_factory=list, repr=False)


def import_file(svc: Services, partner_code: str, stream: BinaryIO, actor: Actor) -> ImportResult:
    actor.require(Role.MAKER, Role.ADMIN)
    partner = svc.partner(partner_code)
    if "cash" not in partner.channels:
        raise NotACashPartner(f"partner {partner_code} does not pay cash: it has no service points")
    rows = _validate(svc, partner_code, stream)
    result = ImportResult(partner_code, rows=len(rows), codes=[r["code"] for r in rows])
    with svc.uow() as session:
        existing = set(session.execute(select(ServicePoint.code).where(
            ServicePoint.partner_code == partner_code)).scalars())
        result.updated = sum(r["code"] in existing for r in rows)
        result.created = len(rows) - result.updated
        for i in range(0, len(rows), ROWS_PER_STATEMENT):
            upsert(session, ServicePoint.__table__, rows[i:i + ROWS_PER_STATEMENT],
                   key=["partner_code", "code"])
        audit.record(session, actor.username, "service_points.import", "partner", partner_code,
                     {"rows": result.rows, "created": result.created, "updated": result.updated})
        session.commit()
    return result


def _validate(svc: Services, partner_code: str, stream: BinaryIO) -> list[dict]:
    regions = svc.configuration.regions
    communes = svc.configuration.communes
    try:
        text = io.TextIOWrapper(stream, encoding="utf-8-sig", newline="")
        reader = csv.DictReader(text)
        header = reader.fieldnames or []
    except UnicodeDecodeError:
        raise ServicePointFileError([(1, "_file", "is not UTF-8 text")]) from None
    missing = [c for c in COLUMNS if c not in header]
    if missing:
        raise ServicePointFileError([(1, "_header", f"missing column(s) {', '.join(missing)}")])
    errors: list[tuple[int, str, str]] = []
    rows: list[dict] = []
    seen: dict[str, int] = {}
    now = utcnow()
    try:
        for line, raw in enumerate(reader, start=2):
            row, problems = _row(partner_code, raw, regions, communes, now)
            code = (raw.get("code") or "").strip()
            if code in seen:
                problems.append(("code", f"duplicate code {code!r}, first on line {seen[code]}"))
            seen.setdefault(code, line)
            errors.extend((line, f, m) for f, m in problems)
            if not problems:
                rows.append(row)
    except UnicodeDecodeError:
        errors.append((len(seen) + 2, "_file", "is not UTF-8 text"))
    if errors:
        raise ServicePointFileError(errors)
    if not rows:
        raise ServicePointFileError([(2, "_file", "has no service point")])
    return rows


def _row(partner_code, raw, regions, communes, now) -> tuple[dict, list[tuple[str, str]]]:
    problems: list[tuple[str, str]] = []
    if None in raw:
        problems.append(("_row", "has more cells than the header"))
    value = {c: (raw.get(c) or "").strip() for c in COLUMNS}
    for column in ("code", "name", "region_code", "province_code", "commune_code"):
        if not value[column]:
            problems.append((column, "is required"))
    if len(value["code"]) > MAX_CODE_LENGTH:
        problems.append(("code", f"is longer than {MAX_CODE_LENGTH} characters"))
    region = regions.get(value["region_code"])
    if value["region_code"] and region is None:
        problems.append(("region_code", f"unknown region {value['region_code']!r}"))
    elif region is not None and value["province_code"] not in region.provinces:
        problems.append(("province_code", f"province {value['province_code']!r} is not in "
                                          f"region {value['region_code']}"))
    commune = communes.get(value["commune_code"])
    if value["commune_code"] and communes and commune is None:
        problems.append(("commune_code", f"unknown commune {value['commune_code']!r}"))
    elif commune is not None and commune.province_code != value["province_code"]:
        problems.append(("commune_code", f"commune {value['commune_code']} is in province "
                                         f"{commune.province_code}, not {value['province_code']}"))
    row = {"partner_code": partner_code, "code": value["code"], "name": value["name"][:120],
           "address": value["address"][:200], "region_code": value["region_code"],
           "province_code": value["province_code"], "commune_code": value["commune_code"],
           "active": True, "updated_at": now}
    for column, limit, target in (("latitude", 90, "latitude_micro"),
                                  ("longitude", 180, "longitude_micro")):
        try:
            row[target] = to_micro_degrees(value[column], limit, column)
        except BadCoordinate as exc:
            problems.append((column, str(exc)))
    try:
        row["opening_days"] = parse_opening_days(value["opening_days"])
    except BadOpeningDays as exc:
        problems.append(("opening_days", str(exc)))
    for column in ("daily_capacity_transfers", "daily_capacity_centimes"):
        text = value[column]
        if not (text.isascii() and text.isdigit()):
            problems.append((column, f"{text!r} is not a non-negative whole number"))
        else:
            row[column] = int(text)
    return row, problems


def point_load(session: Session, code: str, day: date, partner_code: str | None = None) -> dict:
    """A point's capacity and what is planned for pickup from `day`, and collected."""
    stmt = select(ServicePoint).where(ServicePoint.code == code)
    if partner_code:
        stmt = stmt.where(ServicePoint.partner_code == partner_code)
    points = session.execute(stmt).scalars().all()
    if len(points) != 1:
        raise ServicePointNotFound(f"no service point {code}" if not points else
                                   f"service point code {code} is used by several partners: "
                                   "name the partner")
    return _load_view(session, points[0], day)


def partner_load(session: Session, partner_code: str, day: date) -> list[dict]:
    points = session.execute(select(ServicePoint).where(
        ServicePoint.partner_code == partner_code).order_by(ServicePoint.code)).scalars().all()
    counts = _counts(session, partner_code, day, None)
    return [_view(p, day, counts.get(p.code, {})) for p in points]


def _load_view(session: Session, point: ServicePoint, day: date) -> dict:
    counts = _counts(session, point.partner_code, day, point.code)
    return _view(point, day, counts.get(point.code, {}))


def _counts(session: Session, partner_code: str, day: date, code: str | None) -> dict:
    stmt = (select(Transfer.service_point, Transfer.status, func.count(),
                   func.sum(Transfer.amount_centimes))
            .where(Transfer.partner_code == partner_code, Transfer.pickup_from == day,
                   Transfer.service_point.is_not(None))
            .group_by(Transfer.service_point, Transfer.status))
    if code:
        stmt = stmt.where(Transfer.service_point == code)
    out: dict[str, dict[str, tuple[int, int]]] = {}
    for point, status, count, total in session.execute(stmt):
        if point is not None:   # always so: the WHERE says it
            out.setdefault(point, {})[status] = (count, int(total))
    return out


def _view(point: ServicePoint, day: date, by_status: dict[str, tuple[int, int]]) -> dict:
    live = {s: v for s, v in by_status.items() if s not in _CLOSED}
    paid = by_status.get(TransferStatus.PAID.value, (0, 0))
    return {"partner": point.partner_code, "code": point.code, "name": point.name,
            "commune_code": point.commune_code, "date": day.isoformat(),
            "open": point.opening_days[day.weekday()] == "1",
            "capacity_transfers": point.daily_capacity_transfers,
            "capacity_centimes": point.daily_capacity_centimes,
            "planned_transfers": sum(c for c, _ in live.values()),
            "planned_centimes": sum(t for _, t in live.values()),
            "collected_transfers": paid[0], "collected_centimes": paid[1],
            "by_status": {s: c for s, (c, _) in sorted(by_status.items())}}
