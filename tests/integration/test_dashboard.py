"""The dashboard snapshot after a small real cycle (REST simulators over HTTP,
our API on a loopback port), on PostgreSQL and SQLite: every figure is checked
against the rows themselves, counted here in Python; the number of queries does
not grow with the data; the API answers with the same snapshot."""
from __future__ import annotations

import io
from collections import Counter, defaultdict
from datetime import timedelta

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import Column, Float, MetaData, String, Table, create_engine, insert, select
from sqlalchemy.orm import Session

from disbursement.db.models import Transfer, TransferEvent, User, as_utc, utcnow
from disbursement.db.models.ledger import ReconException
from disbursement.db.models.partners import PartnerBreaker
from disbursement.domain.states import TransferStatus
from disbursement.services.monitoring import dashboard
from disbursement.services.officers import users
from disbursement.web.app import create_app
from reconciliation import reconcile
from tests.support.cycle import import_and_plan, release_all
from tests.support.statements import counted

pytestmark = pytest.mark.integration


def percentile_cont(values: list[float], p: float) -> float:
    """The SQL standard's continuous percentile (linear between closest ranks)."""
    ordered = sorted(values)
    position = p * (len(ordered) - 1)
    lower = int(position)
    upper = min(lower + 1, len(ordered) - 1)
    return ordered[lower] + (ordered[upper] - ordered[lower]) * (position - lower)


def _run_cycle(live, officers, households_csv):
    svc = live.svc
    release_all(svc, officers, import_and_plan(svc, officers, households_csv(240)))
    with httpx.Client(timeout=60) as client:
        for url in live.sims.values():
            client.post(f"{url}/_sim/advance", json={}).raise_for_status()
        client.post(f"{live.sims['BARID']}/_sim/faults", json={
            "statement_extra_lines": 1, "statement_altered_lines": 1}).raise_for_status()
    statement = svc.connector("BARID").fetch_statement()
    reconcile.reconcile(svc, "BARID", io.BytesIO(statement), "barid.csv", officers.maker)


def _latency_counts(partners) -> dict[str, float]:
    return {p: REGISTRY.get_sample_value("disburse_confirmation_latency_seconds_count",
                                         {"partner": p}) or 0.0 for p in partners}


def _expected_per_partner(svc) -> dict[tuple[str, str], int]:
    with svc.uow() as session:
        transfers = session.execute(select(Transfer.partner_code, Transfer.status)).all()
    counts = Counter(transfers)
    return {(p, s.value): counts.get((p, s.value), 0) for p in svc.partners for s in TransferStatus}


def _expected(session: Session):
    transfers = session.execute(select(Transfer)).scalars().all()
    events = session.execute(select(TransferEvent)).scalars().all()
    partner_of = {t.id: t.partner_code for t in transfers}
    by_state = Counter(t.status for t in transfers)
    paid = defaultdict(lambda: [0, 0])
    for t in transfers:
        if t.status == "paid":
            paid[t.partner_code][0] += 1
            paid[t.partner_code][1] += t.amount_centimes
    sent_at, confirmed_at = {}, {}
    for e in events:
        at = as_utc(e.at)
        if e.to_status == "sent":
            sent_at[e.transfer_id] = max(at, sent_at.get(e.transfer_id, at))
        if e.to_status in ("available", "paid"):
            confirmed_at[e.transfer_id] = min(at, confirmed_at.get(e.transfer_id, at))
    latencies = defaultdict(list)
    for tid, at in confirmed_at.items():
        latencies[partner_of[tid]].append((at - sent_at[tid]).total_seconds())
    rejected = Counter(partner_of[e.transfer_id] for e in events if e.to_status == "rejected")
    exceptions = Counter(e.type for e in session.execute(select(ReconException)).scalars()
                         if e.status != "resolved")
    return by_state, Counter(e.to_status for e in events), paid, latencies, rejected, exceptions


@pytest.mark.sim_args("--reject-rate", "0.05", "--uncollected-rate", "0.1",
                      "--duplicate-callbacks", "--out-of-order-callbacks")
def test_snapshot_after_a_cycle_matches_the_rows(live, officers, households_csv):
    svc = live.svc
    with svc.uow() as session, counted(svc.engine) as statements_when_empty:
        empty = dashboard.snapshot(session)
    assert set(empty["transfers_by_state"]) == {s.value for s in TransferStatus}
    assert sum(empty["transfers_by_state"].values()) == 0
    latency_before = _latency_counts(svc.partners)
    _run_cycle(live, officers, households_csv)
    with svc.uow() as session:
        with counted(svc.engine) as statements:
            snap = dashboard.snapshot(session, partners=svc.partners.keys())
        by_state, events_by_state, paid, latencies, rejected, exceptions = _expected(session)
    assert len(statements) == len(statements_when_empty)  # bounded, whatever the data
    assert snap["transfers_by_state"] == {s.value: by_state.get(s.value, 0) for s in TransferStatus}
    assert by_state["paid"] > 0 and by_state["available"] > 0
    hourly = Counter()
    for row in snap["transfers_by_state_hourly"]:
        hourly[row["state"]] += row["count"]
    assert hourly == events_by_state
    assert {r["partner"]: (r["count"], r["amount_centimes"]) for r in snap["paid_by_partner"]} == \
        {p: tuple(v) for p, v in paid.items()}
    assert snap["paid_by_partner"]
    for row in snap["paid_by_partner"]:
        units, cents = divmod(row["amount_centimes"], 100)
        assert row["amount"] == f"{units}.{cents:02d}" and row["currency"] == "MAD"
    assert {r["partner"] for r in snap["confirmation_latency"]} == set(latencies)
    assert latencies
    for row in snap["confirmation_latency"]:
        values = latencies[row["partner"]]
        assert row["samples"] == len(values)
        assert row["p50_seconds"] == pytest.approx(percentile_cont(values, 0.5), abs=2e-3)
        assert row["p95_seconds"] == pytest.approx(percentile_cont(values, 0.95), abs=2e-3)
        assert 0 < row["p50_seconds"] <= row["p95_seconds"]
    assert {r["partner"]: r["rejected"] for r in snap["errors"]} == \
        {p: rejected.get(p, 0) for p in svc.partners}
    assert sum(rejected.values()) > 0
    assert snap["exceptions_by_type"] == dict(exceptions) and exceptions
    assert snap["breakers"] == [{"partner": p, "state": "closed"} for p in sorted(svc.partners)]
    assert snap["queues"] == {"outbox_pending": 0, "outbox_dead": 0, "rq_queued": 0,
                              "rq_workers": 0}

    # The histogram saw each first confirmation once, duplicates and replays
    # included (the cycle's callbacks arrive out of order and twice).
    latency_after = _latency_counts(svc.partners)
    assert {p: latency_after[p] - latency_before[p] for p in svc.partners} == \
        {p: len(latencies.get(p, [])) for p in svc.partners}

    # A day later the windowed figures are empty; the current ones are not.
    with svc.uow() as session:
        later = dashboard.snapshot(session, utcnow() + timedelta(hours=25))
    assert later["transfers_by_state"] == snap["transfers_by_state"]
    assert later["transfers_by_state_hourly"] == [] and later["confirmation_latency"] == []
    assert later["errors"] and all(r["rejected"] == 0 for r in later["errors"])

    client = create_app(services=svc).test_client()
    assert client.get("/api/v1/dashboard").status_code == 401
    with svc.uow() as session:
        token = users.issue_token(session, officers.monitor, 600)
        session.commit()
    response = client.get("/api/v1/dashboard", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200
    body = response.get_json()
    assert body["transfers_by_state"] == snap["transfers_by_state"]
    assert body["paid_by_partner"] == snap["paid_by_partner"]
    assert body["queues"]["jobs"] == "in-process"

    # The embedded /metrics reads the same figures at scrape time.
    scraped = {(s.name, tuple(sorted(s.labels.items()))): s.value for family in
               text_string_to_metric_families(client.get("/metrics").get_data(as_text=True))
               for s in family.samples}
    per_partner = _expected_per_partner(svc)
    assert per_partner
    for (partner, state), count in per_partner.items():
        assert scraped[("disburse_transfers", (("partner", partner), ("state", state)))] == count
    for row in snap["paid_by_partner"]:
        assert scraped[("disburse_paid_amount_centimes_total",
                        (("currency", row["currency"]), ("partner", row["partner"])))] == \
            row["amount_centimes"]
    assert snap["exceptions_by_type"]
    for outcome, count in snap["exceptions_by_type"].items():
        assert scraped[("disburse_recon_exceptions", (("outcome", outcome),))] == count


def test_dashboard_refuses_a_user_without_a_dashboard_role(svc, officers):
    with svc.uow() as session:
        session.add(User(username="nobody", display_name="nobody", password_hash="x", roles=""))
        session.commit()
        token = users.issue_token(session, users.actor_by_name(session, "nobody"), 600)
        session.commit()
    response = create_app(services=svc).test_client().get(
        "/api/v1/dashboard", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 403
    assert response.get_json()["error"]["code"] == "forbidden"


_latencies = st.dictionaries(st.sampled_from(["BARID", "CASHPLUS", "WAFACASH"]),
                             st.lists(st.floats(0, 86_400, allow_nan=False), min_size=1,
                                      max_size=60), min_size=1)


@settings(max_examples=60, deadline=None)
@given(_latencies)
def test_portable_percentiles_equal_percentile_cont(samples):
    """The SQLite fallback picks the right ranks and interpolates like
    percentile_cont, for any sample sizes (real SQLite, in memory)."""
    engine = create_engine("sqlite://")
    table = Table("lat", MetaData(), Column("partner", String), Column("seconds", Float))
    table.create(engine)
    with Session(engine) as session:
        session.execute(insert(table), [{"partner": p, "seconds": v}
                                        for p, values in samples.items() for v in values])
        got = dashboard._latency_by_ranks(session, select(table).subquery())
    engine.dispose()
    assert [r["partner"] for r in got] == sorted(samples)
    for row in got:
        values = samples[row["partner"]]
        assert row["samples"] == len(values)
        # Both sides are rounded to milliseconds; a half-way value may round
        # either way depending on the order of float operations.
        assert row["p50_seconds"] == pytest.approx(percentile_cont(values, 0.5), abs=5e-4 + 1e-9)
        assert row["p95_seconds"] == pytest.approx(percentile_cont(values, 0.95), abs=5e-4 + 1e-9)


def test_an_open_breaker_shows_on_the_dashboard_and_in_metrics(svc, officers):
    with svc.uow() as session:
        session.add(PartnerBreaker(partner_code="CASHPLUS", state="open", consecutive_failures=5,
                                   opened_at=utcnow()))
        session.commit()
    client = create_app(services=svc).test_client()
    with svc.uow() as session:
        token = users.issue_token(session, officers.monitor, 600)
        session.commit()
    body = client.get("/api/v1/dashboard", headers={"Authorization": f"Bearer {token}"}).get_json()
    assert body["breakers"] == [{"partner": p, "state": "open" if p == "CASHPLUS" else "closed"}
                                for p in sorted(svc.partners)]
    scraped = {(s.name, tuple(s.labels.items())): s.value for family in
               text_string_to_metric_families(client.get("/metrics").get_data(as_text=True))
               for s in family.samples if s.name == "disburse_partner_breaker_open"}
    assert scraped == {("disburse_partner_breaker_open", (("partner", p),)): int(p == "CASHPLUS")
                       for p in svc.partners}
