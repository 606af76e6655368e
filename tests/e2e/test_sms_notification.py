"""End to end: after dispatch, the SMS gateway simulator (its own process)
receives one message per cash transfer with a phone, carrying the service
point, the pickup date and the withdrawal code; the code is the one the partner
simulator received with the instruction; it is stored only hashed and appears
in no log line and no export. A gateway outage is retried without a second
message to anyone."""
from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest
from sqlalchemy import select

from disbursement.db.models import Household, OutboxItem, PaymentInstruction, Transfer
from disbursement.db.models.routing import Notification, ServicePoint
from disbursement.demo import _read_line_within
from disbursement.demo_points import load_demo_points
from disbursement.domain.withdrawal import verify, withdrawal_code
from disbursement.jobs import tasks
from disbursement.services.cycles.routing import explain
from disbursement.services.dispatch import chunks as dispatch
from disbursement.services.tracking.queries import transfer_view
from tests.conftest import create_officers
from tests.support.cycle import import_and_plan, release_all

pytestmark = pytest.mark.e2e
SMS_KEY = "sms-gateway-test-key"


@contextmanager
def sms_gateway(*flags: str) -> Iterator[str]:
    env = {**os.environ, "SMS_TEST_KEY": SMS_KEY}
    proc = subprocess.Popen([sys.executable, "-m", "disbursement.cli", "simulator", "sms",
                             "--port", "0", "--key-env", "SMS_TEST_KEY", *flags],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        line = _read_line_within(proc, 20)
        assert line.startswith("ready on"), line
        yield line.split("ready on", 1)[1].strip()
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        proc.stdout.close()


def run_cycle(svc, tmp_path, households_csv, n: int):
    officers = create_officers(svc)
    load_demo_points(svc, officers.maker)
    plan = import_and_plan(svc, officers, households_csv(n))
    release_all(svc, officers, plan)
    return plan


def cash_transfers(svc) -> list[tuple[Transfer, dict]]:
    with svc.uow() as session:
        rows = session.execute(
            select(Transfer, Household.pii).join(PaymentInstruction,
                                                 PaymentInstruction.id == Transfer.instruction_id)
            .join(Household, Household.id == PaymentInstruction.household_pk)
            .where(Transfer.channel == "cash")).all()
        session.expunge_all()
    return [(t, svc.vault.open(pii)) for t, pii in rows]


@pytest.mark.parametrize("svc", ["postgresql"], indirect=True)
def test_one_message_per_cash_transfer_with_the_code_the_partner_received(
        live, tmp_path, households_csv, caplog):
    caplog.set_level(logging.DEBUG)
    with sms_gateway() as gateway, httpx.Client(timeout=30) as client:
        svc = live.svc.with_overrides(sms_gateway_url=gateway, sms_gateway_key=SMS_KEY.encode())
        run_cycle(svc, tmp_path, households_csv, 80)

        delivered = client.get(f"{gateway}/_sim/messages").json()
        cash = cash_transfers(svc)
        with_phone = [(t, pii) for t, pii in cash if pii.get("phone") and t.status == "sent"]
        assert len(with_phone) > 20  # most households have a phone
        assert sorted(m["key"] for m in delivered["messages"]) == \
            sorted(t.reference for t, _ in with_phone)
        by_key = {m["key"]: m for m in delivered["messages"]}
        with svc.uow() as session:
            point_names = dict(session.execute(select(ServicePoint.code, ServicePoint.name)).all())
        codes = []
        for transfer, pii in with_phone:
            message = by_key[transfer.reference]
            code = withdrawal_code(svc.settings.code_key, transfer.reference)
            codes.append(code)
            held = client.get(f"{live.sims[transfer.partner_code]}/_sim/transfers/"
                              f"{transfer.reference}").json()
            assert held["withdrawal_code"] == code
            assert held["instructed_point"] == transfer.service_point
            assert message["to"] == pii["phone"]
            assert f"Code de retrait: {code}" in message["text"]
            assert f"رمز السحب: {code}" in message["text"]
            assert transfer.pickup_from.isoformat() in message["text"]
            assert point_names[transfer.service_point] in message["text"]

        with svc.uow() as session:
            notes = {n.reference: n for n in session.execute(select(Notification)).scalars()}
            assert {r for r, n in notes.items() if n.status == "sent"} == set(by_key)
            assert len(notes) == len([t for t, _ in cash if t.status == "sent"])
            for ref, note in notes.items():
                assert verify(svc.settings.code_key, ref,
                              withdrawal_code(svc.settings.code_key, ref), note.code_hash)
            exports = json.dumps([transfer_view(session, t.reference) for t, _ in with_phone]
                                 + [explain(session, hid) for hid in session.execute(
                                     select(Household.household_id)).scalars()], default=str)

        # A retried job and a sweep send nothing again.
        with svc.uow() as session:
            notify_ids = session.execute(select(OutboxItem.id).where(
                OutboxItem.kind == "notify")).scalars().all()
            assert notify_ids and all(session.get(OutboxItem, i).status == "done"
                                      for i in notify_ids)
        for outbox_id in notify_ids:
            tasks.notify_chunk(svc, outbox_id)
        dispatch.sweep(svc)
        svc.queue.drain()
        again = client.get(f"{gateway}/_sim/messages").json()
        assert (len(again["messages"]), again["duplicates"]) == (len(delivered["messages"]), 0)

    logged = caplog.text
    for code in codes:
        assert not re.search(rf"\b{code}\b", logged), "a withdrawal code reached the logs"
        assert not re.search(rf"\b{code}\b", exports), "a withdrawal code reached an export"


@pytest.mark.parametrize("svc", ["postgresql"], indirect=True)
def test_gateway_outage_is_retried_and_nobody_is_texted_twice(live, tmp_path, households_csv):
    with sms_gateway("--error-rate", "1") as gateway, httpx.Client(timeout=30) as client:
        svc = live.svc.with_overrides(sms_gateway_url=gateway, sms_gateway_key=SMS_KEY.encode())
        run_cycle(svc, tmp_path, households_csv, 30)
        assert client.get(f"{gateway}/_sim/messages").json()["messages"] == []
        with svc.uow() as session:
            pending = session.execute(select(OutboxItem).where(
                OutboxItem.kind == "notify")).scalars().all()
            assert pending and all(i.status == "pending" and i.attempts > 0 for i in pending)

        client.post(f"{gateway}/_sim/faults", json={"error_rate": 0}).raise_for_status()
        dispatch.sweep(svc)
        svc.queue.drain()
        dispatch.sweep(svc)
        svc.queue.drain()

        delivered = client.get(f"{gateway}/_sim/messages").json()
        expected = [t.reference for t, pii in cash_transfers(svc)
                    if pii.get("phone") and t.status == "sent"]
        assert sorted(m["key"] for m in delivered["messages"]) == sorted(expected)
        assert delivered["duplicates"] == 0
