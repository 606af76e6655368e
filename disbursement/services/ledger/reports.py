"""Reports per batch, partner, cycle or region: counts and amounts by state,
fees, unsettled exceptions by type, and their ageing. Three set-based queries
(GROUP BY), whatever the number of transfers; written as CSV or XLSX (amounts
in MAD with two decimals, made from the integers) or returned as JSON
(integer centimes).

One long table, one row per (key, section, category):
  section "state"      category = transfer state: count, amount, fees
  section "exception"  category = exception type (not yet resolved): count, signed amount
  section "ageing"     category = ageing bucket of those exceptions: count, signed amount
"""
from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import IO

from sqlalchemy import String, case, cast, func, literal, select
from sqlalchemy.orm import Session

from disbursement.db.models import Cycle, Household, PaymentInstruction, Transfer, utcnow
from disbursement.db.models.ledger import ReconException
from disbursement.domain.errors import NotFound
from disbursement.domain.money import format_units
from disbursement.domain.states import ExceptionStatus
from reconciliation.matcher import AGEING_BUCKETS

KINDS = ("batch", "partner", "cycle", "region")
FORMATS = ("json", "csv", "xlsx")
FILE_TYPES = {"csv": "text/csv",
              "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}
COLUMNS = ["kind", "key", "section", "category", "count", "amount_mad", "fees_mad"]
NO_KEY = "none"


class UnknownReport(NotFound, LookupError):
    """Raised when a report kind, a format or a cycle does not exist."""


@dataclass(frozen=True)
class ReportRow:
    key: str
    section: str
    category: str
    count: int
    amount_centimes: int
    fee_centimes: int = 0


@dataclass(frozen=True)
class Scope:
    cycle_id: int | None = None
    program: str | None = None
    period: str | None = None


def scope(session: Session, cycle_id: int | None = None, program: str | None = None,
          period: str | None = None) -> Scope:
    """The cycle a report covers (all cycles when none is named)."""
    if cycle_id is not None:
        row = session.get(Cycle, cycle_id)
        if row is None:
            raise UnknownReport(f"cycle {cycle_id} not found")
        return Scope(row.id, row.program, row.period)
    if program and period:
        found = session.execute(select(Cycle.id).where(Cycle.program == program,
                                                       Cycle.period == period)).scalar_one_or_none()
        if found is None:
            raise UnknownReport(f"no cycle {program} {period}")
        return Scope(found, program, period)
    return Scope()


def _transfer_key(kind: str):
    if kind == "batch":
        return cast(Transfer.batch_id, String)
    if kind == "partner":
        return Transfer.partner_code
    if kind == "cycle":
        return PaymentInstruction.program + literal(" ") + PaymentInstruction.period
    return Household.region_code


def _exception_key(kind: str):
    if kind == "partner":
        return ReconException.partner_code
    if kind == "cycle":
        return func.coalesce(ReconException.program + literal(" ") + ReconException.period, NO_KEY)
    return func.coalesce(_transfer_key(kind), NO_KEY)


def build(session: Session, kind: str, where: Scope = Scope(),
          as_of: date | None = None) -> list[ReportRow]:
    if kind not in KINDS:
        raise UnknownReport(f"unknown report {kind!r}; one of {', '.join(KINDS)}")
    as_of = as_of or utcnow().date()
    return [*_states(session, kind, where), *_exceptions(session, kind, where, as_of)]


def _states(session: Session, kind: str, where: Scope) -> list[ReportRow]:
    key = _transfer_key(kind).label("key")
    stmt = (select(key, Transfer.status, func.count(), func.sum(Transfer.amount_centimes),
                   func.sum(Transfer.fee_centimes))
            .join(PaymentInstruction, PaymentInstruction.id == Transfer.instruction_id)
            .group_by(key, Transfer.status).order_by(key, Transfer.status))
    if kind == "region":
        stmt = stmt.join(Household, Household.id == PaymentInstruction.household_pk)
    if where.cycle_id is not None:
        stmt = stmt.where(PaymentInstruction.cycle_id == where.cycle_id)
    return [ReportRow(str(k), "state", status, n, int(a or 0), int(f or 0))
            for k, status, n, a, f in session.execute(stmt)]


def _bucket(as_of: date):
    def since(days: int) -> datetime:
        return datetime.combine(as_of - timedelta(days=days), time(), tzinfo=UTC)

    return case(*[(ReconException.since >= since(upper), name) for name, upper in AGEING_BUCKETS],
                else_=">60")


def _exceptions(session: Session, kind: str, where: Scope, as_of: date) -> list[ReportRow]:
    key = _exception_key(kind).label("key")
    rows: list[ReportRow] = []
    for section, category in (("exception", ReconException.type), ("ageing", _bucket(as_of))):
        category = category.label("category")
        stmt = (select(key, category, func.count(), func.sum(ReconException.amount_centimes))
                .outerjoin(Transfer, Transfer.id == ReconException.transfer_id)
                .outerjoin(PaymentInstruction, PaymentInstruction.id == Transfer.instruction_id)
                .where(ReconException.status != ExceptionStatus.RESOLVED.value)
                .group_by(key, category).order_by(key, category))
        if kind == "region":
            stmt = stmt.outerjoin(Household, Household.id == PaymentInstruction.household_pk)
        if where.cycle_id is not None:
            stmt = stmt.where(ReconException.program == where.program,
                              ReconException.period == where.period)
        rows += [ReportRow(str(k), section, str(c), n, int(a or 0))
                 for k, c, n, a in session.execute(stmt)]
    return rows


# --- output -------------------------------------------------------------------

def as_json(kind: str, where: Scope, rows: list[ReportRow]) -> dict:
    return {"kind": kind, "cycle_id": where.cycle_id, "program": where.program,
            "period": where.period, "rows": [asdict(r) for r in rows]}


def _cells(kind: str, rows: Iterable[ReportRow]) -> Iterator[list]:
    yield COLUMNS
    for r in rows:
        yield [kind, r.key, r.section, r.category, r.count, format_units(r.amount_centimes),
               format_units(r.fee_centimes)]


def write_csv(kind: str, rows: Iterable[ReportRow], out: IO[str]) -> None:
    csv.writer(out, lineterminator="\n").writerows(_cells(kind, rows))


def write_xlsx(kind: str, rows: Iterable[ReportRow], out: IO[bytes]) -> None:
    """Streamed with openpyxl's write-only mode. Amounts are text with two
    decimals so no spreadsheet turns them into binary floats."""
    from openpyxl import Workbook

    book = Workbook(write_only=True)
    sheet = book.create_sheet(f"{kind} report")
    for cells in _cells(kind, rows):
        sheet.append(cells)
    book.save(out)


def as_file(kind: str, where: Scope, rows: list[ReportRow], fmt: str) -> tuple[bytes, str, str]:
    """The report as a download: (content, media type, file name). Raises
    UnknownReport for a format other than CSV or XLSX."""
    if fmt not in FILE_TYPES:
        raise UnknownReport(f"unknown file format {fmt!r}; one of {', '.join(FILE_TYPES)}")
    name = f"{kind}-report-{where.program or 'all'}-{where.period or 'all'}.{fmt}"
    if fmt == "csv":
        text = io.StringIO()
        write_csv(kind, rows, text)
        return text.getvalue().encode(), FILE_TYPES[fmt], name
    data = io.BytesIO()
    write_xlsx(kind, rows, data)
    return data.getvalue(), FILE_TYPES[fmt], name
