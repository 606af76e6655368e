"""The whole cycle over real processes: simulators over HTTP, our API on a
loopback port, on PostgreSQL and on the embedded SQLite default; and on
PostgreSQL + Redis with a real `disburse worker` process."""
from __future__ import annotations

import base64
import io
import os
import subprocess
import sys

import httpx
import pytest
from sqlalchemy import func, select, text

from disbursement.bootstrap import build
from disbursement.db.models import OutboxItem, Transfer
from disbursement.services.batches import approval as batches
from disbursement.services.cycles import planning
from disbursement.services.ledger import postings as ledger
from reconciliation import reconcile
from tests.conftest import PARTNER_KEYS, _truncate_all, create_officers, make_settings
from tests.support.cycle import approve_all, import_and_plan

pytestmark = pytest.mark.e2e


def _advance(live):
    with httpx.Client(timeout=60) as client:
        for url in live.sims.values():
            client.post(f"{url}/_sim/advance", json={}).raise_for_status()


def _per_household_invariants(session):
    one_instruction = session.execute(text(
        "SELECT count(*) FROM (SELECT household_pk FROM payment_instructions "
        "GROUP BY program, period, household_pk HAVING count(*) > 1) d")).scalar_one()
    live_attempts = session.execute(text(
        "SELECT count(*) FROM (SELECT instruction_id FROM transfers WHERE status NOT IN "
        "('rejected','failed','cancelled','returned') GROUP BY instruction_id "
        "HAVING count(*) > 1) d")).scalar_one()
    paid_twice = session.execute(text(
        "SELECT count(*) FROM (SELECT transfer_id FROM transfer_events WHERE to_status = 'paid' "
        "GROUP BY transfer_id HAVING count(*) > 1) d")).scalar_one()
    return one_instruction, live_attempts, paid_twice


@pytest.mark.sim_args("--duplicate-callbacks", "--out-of-order-callbacks", "--reject-rate", "0.02")
def test_cycle_twice_over_pays_once(live, officers, households_csv):
    svc = live.svc
    path = households_csv(600)
    plan = import_and_plan(svc, officers, path)
    assert planning.plan_cycle(svc, "asd", "2026-12", officers.maker).instructions_created == 0
    approve_all(svc, officers, plan)
    for batch_id in plan.batches_created:
        assert batches.release(svc, batch_id, officers.maker)  # first release enqueues
        assert batches.release(svc, batch_id, officers.maker) == []  # second changes nothing
    svc.queue.drain()
    _advance(live)   # duplicate and out-of-order callbacks
    _advance(live)   # nothing new to say: replays only
    with svc.uow() as session:
        assert _per_household_invariants(session) == (0, 0, 0)
        statuses = dict(session.execute(select(Transfer.status, func.count())
                                        .group_by(Transfer.status)).all())
        assert statuses.get("paid", 0) > 0 and "queued" not in statuses and "sent" not in statuses
        outbox = session.execute(select(OutboxItem.status)).scalars().all()
        assert outbox and set(outbox) == {"done"}
        report = ledger.check(session, "asd", "2026-12")
    assert report.balanced, [c.differences for c in report.cycles]
    paid_sum = sum(c.paid for c in report.cycles)
    with svc.uow() as session:
        assert paid_sum == session.execute(select(func.sum(Transfer.amount_centimes))
                                           .where(Transfer.status == "paid")).scalar_one()


def test_cycle_reconciles_statement_faults(live, officers, households_csv):
    svc = live.svc
    plan = import_and_plan(svc, officers, households_csv(300))
    approve_all(svc, officers, plan)
    for batch_id in plan.batches_created:
        batches.release(svc, batch_id, officers.maker)
    svc.queue.drain()
    _advance(live)
    with httpx.Client() as client:
        client.post(f"{live.sims['BARID']}/_sim/faults", json={
            "statement_missing_lines": 1, "statement_extra_lines": 1,
            "statement_altered_lines": 1, "statement_duplicate_lines": 1}).raise_for_status()
    statement = svc.connector("BARID").fetch_statement()
    report = reconcile.reconcile(svc, "BARID", io.BytesIO(statement), "barid.csv", officers.maker)
    counts = report.as_dict()
    assert counts["exceptions"]["paid_in_records_missing_from_statement"] == 1
    assert counts["exceptions"]["unknown_reference"] == 1
    assert counts["exceptions"]["amount_over"] == 1
    assert counts["exceptions"]["duplicate_line"] == 1
    again = reconcile.reconcile(svc, "BARID", io.BytesIO(statement), "barid.csv", officers.maker)
    assert again.duplicate_of == report.statement_id


def test_cycle_on_postgresql_redis_and_an_rq_worker_process(pg_url, redis_url, tmp_path,
                                                             households_csv):
    """Release enqueues on Redis; a separate `disburse worker` process sends."""
    from contextlib import ExitStack

    from redis import Redis

    from disbursement.demo import api_server, simulator

    Redis.from_url(redis_url).flushdb()
    settings = make_settings(tmp_path, pg_url, redis_url)
    svc = build(settings)
    officers = create_officers(svc)
    try:
        with ExitStack() as stack:
            api = stack.enter_context(api_server(svc, "127.0.0.1", 0))
            sims = {code: stack.enter_context(simulator(
                code, 0, f"{api}/api/v1/partners/{code}/confirmations",
                PARTNER_KEYS[code], 1)) for code in PARTNER_KEYS}
            svc = svc.with_partner_urls(sims)
            env = {**os.environ, "DATABASE_URL": pg_url, "REDIS_URL": redis_url,
                   "DISBURSE_VAR_DIR": str(tmp_path),
                   "DISBURSE_DATA_KEY": base64.b64encode(settings.data_key).decode(),
                   **{f"PARTNER_{c}_HMAC_KEYS": k for c, k in PARTNER_KEYS.items()},
                   **{f"PARTNER_{c}_URL": u for c, u in sims.items()}}
            plan = import_and_plan(svc, officers, households_csv(500))
            approve_all(svc, officers, plan)
            for batch_id in plan.batches_created:
                batches.release(svc, batch_id, officers.maker)
            assert svc.queue.queue.count == len(plan.batches_created)  # waiting on Redis
            worker = subprocess.run([sys.executable, "-m", "disbursement.cli", "worker", "--burst"],
                                    env=env, capture_output=True, text=True, timeout=120)
            assert worker.returncode == 0, worker.stderr[-2000:]
            with httpx.Client(timeout=60) as client:
                for url in sims.values():
                    client.post(f"{url}/_sim/advance", json={}).raise_for_status()
            with svc.uow() as session:
                assert session.execute(select(func.count()).select_from(OutboxItem)
                                       .where(OutboxItem.status != "done")).scalar_one() == 0
                assert session.execute(select(func.count()).select_from(Transfer)
                                       .where(Transfer.status.in_(["queued",
                                                                   "sent"]))).scalar_one() == 0
                assert _per_household_invariants(session) == (0, 0, 0)
                assert ledger.check(session).balanced
    finally:
        _truncate_all(svc)
        svc.engine.dispose()


def test_demo_command_prints_a_balanced_summary(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env["DISBURSE_VAR_DIR"] = str(tmp_path)
    done = subprocess.run([sys.executable, "-m", "disbursement.cli", "demo", "--households", "400",
                           "--json"], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    import json
    summary = json.loads(done.stdout)
    assert summary["households"] == 400
    assert summary["ledger_balanced"] is True
    assert summary["transfers_accounted"] is True
    assert sum(summary["by_status"].values()) + summary["unroutable"] == summary["instructions"]
    assert summary["reconciliation"]["matched"] > 0
