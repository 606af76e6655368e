"""Reports: the CSV, XLSX and JSON figures equal the database's own sums, per
batch, partner, cycle and region. And `disburse ledger check`, run as a
process, exits non-zero naming the difference when the ledger disagrees with
the transfers."""
from __future__ import annotations

import csv
import io
from collections import defaultdict
from datetime import date

import pytest
from openpyxl import load_workbook
from prometheus_client import REGISTRY
from sqlalchemy import select

from disbursement.db.models import Cycle, Household, PaymentInstruction, Transfer, as_utc
from disbursement.db.models.ledger import ReconException
from disbursement.domain.money import parse_units
from disbursement.services.ledger import postings as ledger
from disbursement.services.ledger import reports
from disbursement.services.tracking import confirmations
from reconciliation import reconcile
from reconciliation.matcher import ageing_bucket
from tests.conftest import create_officers
from tests.support.api import Api
from tests.support.cli import run_cli
from tests.support.recon_world import PERIOD, PROGRAM, build_world, csv_statement

pytestmark = pytest.mark.integration
AS_OF = date(2027, 1, 20)


@pytest.fixture
def world(pg_svc, households_csv, redis_url):
    officers = create_officers(pg_svc)
    built = build_world(pg_svc, officers, households_csv, redis_url, households=80)
    refs = built.refs["BARID"]
    confirmations.apply(pg_svc, "BARID", [
        {"event_id": None, "reference": r, "status": status, "occurred_at": None, "reason": None,
         "service_point": None}
        for r, status in zip(refs[:8], ["paid"] * 5 + ["rejected"] * 3, strict=True)])
    statement = csv_statement([(refs[0], built.transfer(refs[0]).amount_centimes + 7),
                               ("XNOTOURS0000001", 500)])
    reconcile.reconcile(pg_svc, "BARID", statement, "r.csv", officers.maker)
    built.officers = officers
    return built


def _truth(session, kind: str) -> dict[tuple[str, str, str], tuple[int, int, int]]:
    """Per (key, section, category): count, amount, fees, summed here in Python
    from one row per transfer and per exception."""
    out: dict = defaultdict(lambda: [0, 0, 0])
    for t, region, program, period in session.execute(
            select(Transfer, Household.region_code, PaymentInstruction.program,
                   PaymentInstruction.period)
            .join(PaymentInstruction, PaymentInstruction.id == Transfer.instruction_id)
            .join(Household, Household.id == PaymentInstruction.household_pk)):
        key = {"batch": str(t.batch_id), "partner": t.partner_code,
               "cycle": f"{program} {period}", "region": region}[kind]
        cell = out[(key, "state", t.status)]
        cell[0] += 1
        cell[1] += t.amount_centimes
        cell[2] += t.fee_centimes
    # The report covers one cycle: exceptions of no cycle (an unknown reference) are outside it.
    for e in session.execute(select(ReconException).where(
            ReconException.status != "resolved", ReconException.program == PROGRAM,
            ReconException.period == PERIOD)).scalars():
        transfer = session.get(Transfer, e.transfer_id) if e.transfer_id else None
        region = None
        if transfer is not None:
            region = session.execute(select(Household.region_code).join(
                PaymentInstruction, PaymentInstruction.household_pk == Household.id)
                .where(PaymentInstruction.id == transfer.instruction_id)).scalar_one()
        key = {"batch": str(transfer.batch_id) if transfer else "none", "partner": e.partner_code,
               "cycle": f"{e.program} {e.period}" if e.program else "none",
               "region": region or "none"}[kind]
        for section, category in (("exception", e.type),
                                  ("ageing", ageing_bucket(as_utc(e.since).date(), AS_OF))):
            cell = out[(key, section, category)]
            cell[0] += 1
            cell[1] += e.amount_centimes
    return {k: tuple(v) for k, v in out.items()}


@pytest.mark.parametrize("kind", ["batch", "partner", "cycle", "region"])
def test_csv_xlsx_and_json_figures_equal_the_database_sums(world, kind):
    svc = world.svc
    with svc.uow() as session:
        expected = _truth(session, kind)
        where = reports.scope(session, program=PROGRAM, period=PERIOD)
        rows = reports.build(session, kind, where, AS_OF)
    as_json = reports.as_json(kind, where, rows)
    from_json = {(r["key"], r["section"], r["category"]): (r["count"], r["amount_centimes"],
                                                           r["fee_centimes"])
                 for r in as_json["rows"]}
    text = io.StringIO()
    reports.write_csv(kind, rows, text)
    parsed = list(csv.reader(io.StringIO(text.getvalue())))
    assert parsed[0] == reports.COLUMNS
    from_csv = {(r[1], r[2], r[3]): (int(r[4]), parse_units(r[5]), parse_units(r[6]))
                for r in parsed[1:]}
    book = io.BytesIO()
    reports.write_xlsx(kind, rows, book)
    book.seek(0)
    sheet = load_workbook(book, read_only=True).active
    cells = list(sheet.iter_rows(values_only=True))
    from_xlsx = {(r[1], r[2], r[3]): (int(r[4]), parse_units(r[5]), parse_units(r[6]))
                 for r in cells[1:]}

    assert from_json == expected
    assert from_csv == from_json
    assert from_xlsx == from_json
    assert any(k[1] == "ageing" for k in from_json) and any(k[1] == "exception" for k in from_json)


def test_reports_over_the_api_in_each_format(world):
    api = Api(world.svc)
    with world.svc.uow() as session:
        cycle_id = session.execute(select(Cycle.id)).scalar_one()
    as_json = api.call("GET", f"/api/v1/reports/partner?cycle={cycle_id}", "maker")
    assert as_json.status_code == 200 and as_json.get_json()["period"] == PERIOD
    as_csv = api.call("GET", f"/api/v1/reports/partner?cycle={cycle_id}&format=csv", "approver2")
    assert as_csv.mimetype == "text/csv" and as_csv.data.startswith(b"kind,key,section")
    as_xlsx = api.call("GET", f"/api/v1/reports/region?cycle={cycle_id}&format=xlsx", "approver")
    assert as_xlsx.status_code == 200 and as_xlsx.data[:2] == b"PK"
    missing = api.call("GET", "/api/v1/reports/planet", "maker")
    assert (missing.status_code, missing.get_json()["error"]["code"]) == (404, "unknown_report")
    assert api.call("GET", "/api/v1/reports/batch?cycle=999", "maker").status_code == 404


def test_ledger_check_command_passes_then_names_a_difference(world, tmp_path):
    svc = world.svc
    with svc.uow() as session:
        cycle_id = session.execute(select(Cycle.id)).scalar_one()
    ok = run_cli(svc, tmp_path, "ledger", "check", "--cycle", str(cycle_id))
    assert ok.returncode == 0, ok.stderr
    assert "asd 2026-12 BARID" in ok.stdout and "DIFFERENCE" not in ok.stdout

    with svc.uow() as session:   # a payment the transfers know nothing of
        ledger.post(session, "payment", PROGRAM, PERIOD, "BARID", "stray",
                    [("paid:asd", 100), ("clearing:BARID", -100)])
        session.commit()
    bad = run_cli(svc, tmp_path, "ledger", "check", "--program", PROGRAM, "--period", PERIOD)
    assert bad.returncode == 4
    assert "BARID" in bad.stdout and "DIFFERENCE" in bad.stdout
    assert "paid: ledger" in bad.stdout and "(difference 100)" in bad.stdout


def test_ledger_check_sets_the_gauges(world):
    svc = world.svc
    with svc.uow() as session:
        assert ledger.check(session).balanced
    assert REGISTRY.get_sample_value("disburse_ledger_balanced") == 1
    assert REGISTRY.get_sample_value("disburse_ledger_difference_centimes",
                                     {"partner": "BARID"}) == 0
    with svc.uow() as session:
        released = sum(c.released for c in ledger.check(session).cycles if c.partner == "BARID")
        ledger.post(session, "payment", PROGRAM, PERIOD, "BARID", "stray",
                    [("paid:asd", 100), ("clearing:BARID", -100)])
        session.commit()
        assert not ledger.check(session).balanced
    assert REGISTRY.get_sample_value("disburse_ledger_balanced") == 0
    # paid and outstanding each disagree with the transfers by 100.
    assert REGISTRY.get_sample_value("disburse_ledger_difference_centimes",
                                     {"partner": "BARID"}) == 200
    assert REGISTRY.get_sample_value("disburse_ledger_figure_centimes",
                                     {"partner": "BARID", "kind": "released"}) == released
