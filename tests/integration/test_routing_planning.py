"""Planning on PostgreSQL routes with capacity, coverage, service points,
pickup dates and fees; `disburse routing explain` says why; service-point
files are validated and upserted; per-point load is queryable."""
from __future__ import annotations

import csv
import dataclasses
import io
import os
import subprocess
import sys
from collections import Counter
from datetime import date

import pytest
from sqlalchemy import select

from disbursement.bootstrap import Services
from disbursement.db.models import Batch, Household, PaymentInstruction, Transfer
from disbursement.db.models.routing import ServicePoint
from disbursement.services.cycles import planning, service_points
from disbursement.services.officers import users
from disbursement.services.registry import importing as registry
from disbursement.services.registry.generator import generate_households
from disbursement.services.registry.schema import COLUMNS as HOUSEHOLD_COLUMNS
from tests.conftest import create_officers
from tests.support.api import Api

pytestmark = pytest.mark.integration

PERIOD = "2026-12"
WINDOW = [date(2026, 12, d) for d in range(1, 6)]
POINT_HEADER = service_points.COLUMNS


def points_csv(*rows: tuple) -> io.BytesIO:
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(POINT_HEADER)
    for code, commune, transfers in rows:
        writer.writerow([code, f"Agence {code}", "avenue Hassan II", commune[:2], commune[:3],
                         commune, "34.000001", "-6.800000", "mon-sun", transfers, 50_000_000])
    return io.BytesIO(text.getvalue().encode())


def households_csv(tmp_path, specs: list[tuple[str, str | None]]):
    """One cash household per (commune, chosen partner); the rest from the generator."""
    path = tmp_path / "extract.csv"
    with path.open("w", newline="", encoding="utf-8") as stream:
        writer = csv.writer(stream, lineterminator="\n")
        writer.writerow(HOUSEHOLD_COLUMNS)
        generated = generate_households(len(specs), seed=5)
        for row, (commune, chosen) in zip(generated, specs, strict=True):
            row.update(region_code=commune[:2], province_code=commune[:3], commune_code=commune,
                       channel="cash", account="", wallet_phone="", partner_code=chosen or "",
                       score="5.1")
            writer.writerow([row[c] for c in HOUSEHOLD_COLUMNS])
    return path


def cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    """`disburse ...` as its own process, on the test's database."""
    return subprocess.run([sys.executable, "-m", "disbursement.cli", *args], text=True,
                          capture_output=True, env={**os.environ, **env}, timeout=120)


# The payment institutions with agency networks these tests load points for; the
# file-exchange and bank partners would otherwise take what they cannot.
CASH_NETWORKS = ("BARID", "CASHPLUS", "WAFACASH")


def with_capacity(svc: Services, **capacity: int) -> Services:
    partners = {code: dataclasses.replace(p, daily_capacity_transfers=capacity.get(code))
                for code, p in svc.partners.items() if code in CASH_NETWORKS}
    return dataclasses.replace(svc, partners=partners)


def plan(svc: Services, tmp_path, specs):
    officers = create_officers(svc)
    with households_csv(tmp_path, specs).open("rb") as stream:
        registry.import_households(svc, stream, "extract.csv", officers.maker)
    return officers, planning.plan_cycle(svc, "asd", PERIOD, officers.maker)


def transfers_by_household(svc: Services) -> dict[str, Transfer]:
    with svc.uow() as session:
        rows = session.execute(select(Household.household_id, Transfer)
                               .join(PaymentInstruction,
                                     PaymentInstruction.household_pk == Household.id)
                               .join(Transfer,
                                     Transfer.instruction_id == PaymentInstruction.id)).all()
        session.expunge_all()
    return dict(rows)


def test_capacity_spill_by_partner_and_point_coverage_gap_window_spread_and_fees(pg_svc, tmp_path):
    svc = with_capacity(pg_svc, CASHPLUS=2)
    officers = create_officers(svc)
    for partner, rows in (("CASHPLUS", [("CP-HOME", "041001", 5), ("CP-NEAR", "041002", 5)]),
                          ("BARID", [("B-HOME", "041001", 1), ("B-FAR", "041003", 100)])):
        service_points.import_file(svc, partner, points_csv(*rows), officers.maker)
    specs = [("041001", None)] * 16 + [("051001", "CASHPLUS")]
    with households_csv(tmp_path, specs).open("rb") as stream:
        registry.import_households(svc, stream, "extract.csv", officers.maker)

    result = planning.plan_cycle(svc, "asd", PERIOD, officers.maker)

    by_household = transfers_by_household(svc)
    transfers = sorted(by_household.values(), key=lambda t: t.id)
    # CASHPLUS (region 04's default) takes 2 a day over the 5-day window, then BARID:
    # its commune point (1 a day), then its nearest point in the province.
    assert Counter((t.partner_code, t.service_point) for t in transfers) == {
        ("CASHPLUS", "CP-HOME"): 10, ("BARID", "B-HOME"): 5, ("BARID", "B-FAR"): 1}
    assert Counter(t.pickup_from for t in transfers if t.partner_code == "CASHPLUS") == \
        dict.fromkeys(WINDOW, 2)
    assert Counter(t.pickup_from for t in transfers if t.service_point == "B-HOME") == \
        dict.fromkeys(WINDOW, 1)
    # Region 05: the chosen CASHPLUS does not cover it; BARID has no point there.
    assert result.unroutable == 1
    for t in transfers:
        assert t.fee_centimes == svc.partners[t.partner_code].fee_for("cash", t.amount_centimes)[0]
    with svc.uow() as session:
        batches = session.execute(select(Batch)).scalars().all()
        assert {b.partner_code: b.fee_total_centimes for b in batches} == {
            code: sum(t.fee_centimes for t in transfers if t.partner_code == code)
            for code in ("CASHPLUS", "BARID")}
    assert result.fee_centimes == sum(t.fee_centimes for t in transfers)

    env = {"DATABASE_URL": svc.settings.database_url,
           "DISBURSE_DATA_KEY": "QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUE=",
           "DISBURSE_VAR_DIR": str(tmp_path)}
    spilled = next(hid for hid, t in by_household.items() if t.service_point == "B-FAR")
    out = cli(env, "routing", "explain", spilled)
    assert out.returncode == 0, out.stderr
    assert "-> BARID" in out.stdout
    assert "CASHPLUS (program default for region 04 (no chosen partner)): skipped, full on every " \
           "day of the 5-day window (capacity 2 a day)" in out.stdout
    assert "service point B-FAR, nearest in province 041" in out.stdout
    assert "1 point(s) tried before it had no room" in out.stdout
    gap = next(iter(set(_household_ids(svc)) - set(by_household)))
    out = cli(env, "routing", "explain", gap, "--period", PERIOD)
    assert "NOT ROUTED" in out.stdout
    assert "chosen partner CASHPLUS: skipped, does not cover region 05" in out.stdout
    assert "no service point with room in province 051" in out.stdout
    assert "WAFACASH: skipped, does not cover region 05" in out.stdout

    out = cli(env, "batch", "list")
    assert "fees" in out.stdout

    with svc.uow() as session:
        load = service_points.point_load(session, "CP-HOME", WINDOW[0], "CASHPLUS")
    assert (load["planned_transfers"], load["capacity_transfers"]) == (2, 5)


def _household_ids(svc: Services) -> list[str]:
    with svc.uow() as session:
        return list(session.execute(select(Household.household_id)).scalars())


def test_replanning_after_new_households_counts_what_earlier_runs_gave(pg_svc, tmp_path):
    svc = with_capacity(pg_svc, CASHPLUS=1)
    officers = create_officers(svc)
    service_points.import_file(svc, "CASHPLUS", points_csv(("CP-HOME", "041001", 9)),
                               officers.maker)
    with households_csv(tmp_path, [("041001", None)] * 3).open("rb") as stream:
        registry.import_households(svc, stream, "a.csv", officers.maker)
    planning.plan_cycle(svc, "asd", PERIOD, officers.maker)
    path = households_csv(tmp_path, [("041001", None)] * 7)
    with path.open("rb") as stream:
        registry.import_households(svc, stream, "b.csv", officers.maker)

    planning.plan_cycle(svc, "asd", PERIOD, officers.maker)

    transfers = transfers_by_household(svc).values()
    assert sum(t.partner_code == "CASHPLUS" for t in transfers) == 5
    assert Counter(t.pickup_from for t in transfers if t.partner_code == "CASHPLUS") == \
        dict.fromkeys(WINDOW, 1)


def test_service_point_file_is_upserted_and_a_bad_file_changes_nothing(pg_svc):
    officers = create_officers(pg_svc)
    first = service_points.import_file(pg_svc, "BARID", points_csv(("B-1", "041001", 10)),
                                       officers.maker)
    again = service_points.import_file(pg_svc, "BARID", points_csv(("B-1", "041001", 20),
                                                                   ("B-2", "041002", 5)),
                                       officers.maker)
    assert (first.created, again.created, again.updated) == (1, 1, 1)

    bad = points_csv(("B-3", "041001", 10), ("B-4", "041999", "lots"), ("B-3", "051001", 1))
    with pytest.raises(service_points.ServicePointFileError) as caught:
        service_points.import_file(pg_svc, "BARID", bad, officers.maker)

    assert caught.value.errors == [
        (3, "commune_code", "unknown commune '041999'"),
        (3, "daily_capacity_transfers", "'lots' is not a non-negative whole number"),
        (4, "code", "duplicate code 'B-3', first on line 2")]
    with pg_svc.uow() as session:
        rows = session.execute(select(ServicePoint.code, ServicePoint.daily_capacity_transfers)
                               .order_by(ServicePoint.code)).all()
    assert [tuple(r) for r in rows] == [("B-1", 20), ("B-2", 5)]
    pg_svc.partners["X"] = dataclasses.replace(pg_svc.partners["BARID"], code="X",
                                                channels=frozenset({"bank"}))
    with pytest.raises(service_points.NotACashPartner):
        service_points.import_file(pg_svc, "X", points_csv(("X-1", "041001", 1)), officers.maker)


def test_service_point_api_upload_and_load(pg_svc, tmp_path):
    create_officers(pg_svc)
    api = Api(pg_svc)
    good = api.call("POST", "/api/v1/service-points", "maker",
                    data={"partner": "CASHPLUS",
                          "file": (points_csv(("CP-HOME", "041001", 5)), "points.csv")})
    bad = api.call("POST", "/api/v1/service-points", "maker",
                   data={"partner": "CASHPLUS",
                         "file": (points_csv(("CP-2", "041001", -1)), "points.csv")})
    refused = api.call("POST", "/api/v1/service-points", "monitor",
                       data={"partner": "CASHPLUS",
                             "file": (points_csv(("CP-3", "041001", 1)), "points.csv")})

    assert (good.status_code, good.get_json()["created"]) == (201, 1)
    assert bad.status_code == 422
    assert bad.get_json()["error"]["details"] == [
        {"line": 2, "field": "daily_capacity_transfers",
         "message": "'-1' is not a non-negative whole number"}]
    assert refused.status_code == 403
    with households_csv(tmp_path, [("041001", None)] * 3).open("rb") as stream:
        registry.import_households(pg_svc, stream, "x.csv", create_officers_maker(pg_svc))
    planning.plan_cycle(pg_svc, "asd", PERIOD, create_officers_maker(pg_svc))

    load = api.call("GET", f"/api/v1/service-points/CP-HOME/load?date={WINDOW[0]}", "monitor")
    missing = api.call("GET", f"/api/v1/service-points/NOPE/load?date={WINDOW[0]}", "monitor")
    bad_date = api.call("GET", "/api/v1/service-points/CP-HOME/load?date=tomorrow", "monitor")

    assert load.status_code == 200
    assert (load.get_json()["planned_transfers"], load.get_json()["capacity_transfers"]) == (1, 5)
    assert (missing.status_code, bad_date.status_code) == (404, 422)


def create_officers_maker(svc: Services):
    with svc.uow() as session:
        return users.actor_by_name(session, "maker")
