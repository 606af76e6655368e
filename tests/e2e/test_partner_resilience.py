"""Failure handling against real simulator processes and real PostgreSQL: the
circuit breaker, dead letters, wallet rules before dispatch, cancellation
confirmed by the partner, and re-issue that never makes two live attempts."""
from __future__ import annotations

import dataclasses
import threading
from datetime import timedelta

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import select, update

from connectors.base import PartnerStatus as P
from connectors.base import RetryableError
from disbursement.db.models import AuditEntry, Batch, Transfer, utcnow
from disbursement.db.models.partners import PartnerBreaker
from disbursement.services.batches import approval as batches
from disbursement.services.batches import reissue
from disbursement.services.dispatch import cancellation
from disbursement.services.dispatch import chunks as dispatch
from disbursement.services.dispatch.partner_health import breaker_state, open_partners
from disbursement.services.ledger import postings as ledger
from disbursement.web.app import create_app
from tests.conformance.harness import (
    rest_harness,
    rest_transfer,
    unique_reference,
    wallet_harness,
)
from tests.conformance.ours import outbox_item, seed_transfers, statuses
from tests.conftest import create_officers

pytestmark = pytest.mark.e2e


def _services(svc, harness, **overrides):
    """Services reaching the harness's simulator, with a job queue of their own
    that runs jobs with them too."""
    wanted = harness.service_overrides()
    return svc.with_overrides(
        partner_urls={**svc.settings.partner_urls, **wanted["partner_urls"]},
        partner_keys={**svc.settings.partner_keys, **wanted["partner_keys"]}, **overrides)


def _gauge(name: str, **labels) -> float | None:
    return REGISTRY.get_sample_value(name, labels)


def _age_breaker(svc, partner: str) -> None:
    """Stand in for the cooldown passing (no sleeping in tests)."""
    past = utcnow() - timedelta(hours=2)
    with svc.uow() as session:
        session.execute(update(PartnerBreaker).where(PartnerBreaker.partner_code == partner)
                        .values(opened_at=past, probe_started_at=None))
        session.commit()


def test_breaker_opens_defers_probes_and_closes(pg_svc, tmp_path) -> None:
    with rest_harness(tmp_path) as harness:
        code = harness.partner_code
        svc = _services(pg_svc, harness, breaker_failure_threshold=2,
                        breaker_cooldown_seconds=3600)
        chunks = [harness.make_transfers(2) for _ in range(3)]
        outbox = [outbox_item(svc, seed_transfers(svc, code, c, status="queued")).id
                  for c in chunks]
        retries_before = _gauge("disburse_dispatch_retries_total", partner=code) or 0
        harness.fault("outage")

        for _ in range(2):
            with pytest.raises(RetryableError, match="HTTP 503"):
                dispatch.dispatch_chunk(svc, outbox[0])
        with svc.uow() as session:
            assert breaker_state(session)[code].state == "open"
            assert open_partners(session) == {code}
        assert _gauge("disburse_partner_breaker_state", partner=code) == 2
        assert _gauge("disburse_dispatch_retries_total", partner=code) == retries_before + 2

        # While open: deferred, not failed, not sent, and not swept before its time.
        deferred = dispatch.dispatch_chunk(svc, outbox[1])
        assert deferred.deferred and deferred.sent == 0
        item = outbox_item(svc, _batch_of(svc, chunks[1]))
        assert (item.attempts, item.status) == (0, "pending") and item.next_attempt_at
        assert outbox[1] not in dispatch.sweep(svc)
        svc.queue.drain()                # what the sweeper did enqueue is deferred too
        assert harness.held_count() == 0
        with svc.uow() as session:
            assert breaker_state(session)[code].state == "open"

        # Cooldown over, partner still down: the one probe fails and reopens.
        _age_breaker(svc, code)
        with pytest.raises(RetryableError):
            dispatch.dispatch_chunk(svc, outbox[1])
        with svc.uow() as session:
            assert breaker_state(session)[code].state == "open"

        # Cooldown over again, partner back: the probe succeeds and closes it.
        _age_breaker(svc, code)
        harness.fault("clear")
        assert dispatch.dispatch_chunk(svc, outbox[1]).sent == 2
        with svc.uow() as session:
            assert breaker_state(session)[code].state == "closed"
            assert open_partners(session) == set()
        assert _gauge("disburse_partner_breaker_state", partner=code) == 0
        for outbox_id in (outbox[0], outbox[2]):
            dispatch.dispatch_chunk(svc, outbox_id)

        every = [t.reference for c in chunks for t in c]
        assert set(statuses(svc, every).values()) == {"sent"}
        assert harness.held_count() == 6
        assert harness.connector.status(every) == dict.fromkeys(every, P.RECEIVED)


def _batch_of(svc, chunk) -> int:
    with svc.uow() as session:
        return session.execute(select(Transfer.batch_id).where(
            Transfer.reference == chunk[0].reference)).scalar_one()


def test_spent_retries_make_a_dead_letter_an_officer_retries(pg_svc, tmp_path) -> None:
    officers = create_officers(pg_svc)
    with rest_harness(tmp_path) as harness:
        svc = _services(pg_svc, harness, dispatch_max_attempts=2, breaker_failure_threshold=50)
        chunk = harness.make_transfers(3)
        batch_id = seed_transfers(svc, harness.partner_code, chunk, status="queued")
        outbox_id = outbox_item(svc, batch_id).id
        harness.fault("outage")
        for _ in range(2):
            with pytest.raises(RetryableError):
                dispatch.dispatch_chunk(svc, outbox_id)

        assert outbox_item(svc, batch_id).status == "dead"
        assert _gauge("disburse_dead_letters") == 1
        client = create_app(services=svc).test_client()
        token = _token(svc, "monitor")
        listed = client.get("/api/v1/dead-letters", headers={"Authorization": f"Bearer {token}"})
        assert listed.status_code == 200
        [letter] = listed.get_json()["dead_letters"]
        assert (letter["id"], letter["partner"], letter["transfers"], letter["attempts"]) == \
            (outbox_id, harness.partner_code, 3, 2)
        assert letter["last_error"].startswith(
            "RetryableError: BARID: POST /v1/transfers: HTTP 503")
        refused = client.post(f"/api/v1/dead-letters/{outbox_id}/retry",
                              headers={"Authorization": f"Bearer {token}"})
        assert refused.status_code == 403          # a monitor only watches

        harness.fault("clear")
        answer = client.post(f"/api/v1/dead-letters/{outbox_id}/retry",
                             headers={"Authorization": f"Bearer {_token(svc, 'maker')}"})
        assert answer.status_code == 202
        svc.queue.drain()

        assert outbox_item(svc, batch_id).status == "done"
        assert set(statuses(svc, [t.reference for t in chunk]).values()) == {"sent"}
        assert harness.held_count() == 3
        assert _gauge("disburse_dead_letters") == 0
        with svc.uow() as session:
            audited = session.execute(select(AuditEntry.actor, AuditEntry.object_id).where(
                AuditEntry.action == "dead_letter.retry")).all()
        assert audited == [(officers.maker.username, str(outbox_id))]
        assert client.post(f"/api/v1/dead-letters/{outbox_id}/retry", headers={
            "Authorization": f"Bearer {_token(svc, 'maker')}"}).status_code == 404


def _token(svc, username: str) -> str:
    from disbursement.services.officers import users

    with svc.uow() as session:
        token = users.issue_token(session, users.actor_by_name(session, username), 3600)
        session.commit()
    return token


def test_wallet_rules_reject_before_dispatch(pg_svc, tmp_path) -> None:
    with wallet_harness(tmp_path) as harness:
        svc = _services(pg_svc, harness)
        too_much, landline, fine = harness.make_transfers(3)
        too_much = dataclasses.replace(too_much, amount_centimes=70_000)
        landline = dataclasses.replace(landline, phone="+212522123456")
        batch_id = seed_transfers(svc, harness.partner_code, [too_much], "queued", wallet_tier=1)
        seed_transfers(svc, harness.partner_code, [landline, fine], "queued", wallet_tier=2)
        other = outbox_item(svc, _batch_of(svc, [fine])).id

        first = dispatch.dispatch_chunk(svc, outbox_item(svc, batch_id).id)
        second = dispatch.dispatch_chunk(svc, other)

        assert (first.refused_before_dispatch, first.sent) == (1, 0)
        assert (second.refused_before_dispatch, second.sent) == (1, 1)
        with svc.uow() as session:
            found = dict(session.execute(select(Transfer.reference, Transfer.status_reason)
                                         .where(Transfer.status == "rejected")).all())
        assert found == {
            too_much.reference: "WL04 wallet tier 1 ceiling 200.00 MAD below 700.00 MAD",
            landline.reference: "WL01 wallet number is not a valid Moroccan mobile number"}
        assert statuses(svc, [fine.reference]) == {fine.reference: "sent"}
        # The partner never saw the refused ones.
        assert harness.held_count() == 1
        assert harness.partner_status(too_much.reference) == P.NOT_FOUND


def test_cancel_is_confirmed_by_the_partner_and_reverses_the_release(pg_svc, tmp_path) -> None:
    officers = create_officers(pg_svc)
    with rest_harness(tmp_path) as harness:
        svc = _services(pg_svc, harness)
        waiting, collected = harness.make_transfers(2)
        harness.connector.send([waiting, collected])
        seed_transfers(svc, harness.partner_code, [waiting, collected], status="sent")
        harness.advance(P.PAID, [collected.reference])

        done = cancellation.cancel_transfer(svc, waiting.reference, "household moved abroad",
                                            officers.maker)
        with pytest.raises(cancellation.CancelRefused, match="it reports the transfer paid"):
            cancellation.cancel_transfer(svc, collected.reference, "too late", officers.maker)
        with pytest.raises(cancellation.CancelRefused, match="is cancelled"):
            cancellation.cancel_transfer(svc, waiting.reference, "again", officers.maker)
        with pytest.raises(cancellation.CancelReasonMissing):
            cancellation.cancel_transfer(svc, collected.reference, "  ", officers.maker)

        assert (done.status, done.partner_status) == ("cancelled", "cancelled")
        assert harness.partner_status(waiting.reference) == P.CANCELLED
        assert statuses(svc, [waiting.reference, collected.reference]) == \
            {waiting.reference: "cancelled", collected.reference: "sent"}
        with svc.uow() as session:
            assert ledger.check(session).balanced
            audited = session.execute(select(AuditEntry.object_id, AuditEntry.detail).where(
                AuditEntry.action == "transfer.cancel").order_by(AuditEntry.id)).all()
        assert [(ref, d["partner_status"], d["cancelled"]) for ref, d in audited] == [
            (waiting.reference, "cancelled", True), (collected.reference, "paid", False)]


def test_cancel_through_the_api(pg_svc, tmp_path) -> None:
    create_officers(pg_svc)
    with rest_harness(tmp_path) as harness:
        svc = _services(pg_svc, harness)
        transfer = harness.make_transfers(1)[0]
        harness.connector.send([transfer])
        seed_transfers(svc, harness.partner_code, [transfer], status="sent")
        client = create_app(services=svc).test_client()

        def cancel(user: str, body: dict):
            return client.post(f"/api/v1/transfers/{transfer.reference}/cancel", json=body,
                               headers={"Authorization": f"Bearer {_token(svc, user)}"})

        assert cancel("monitor", {"reason": "x"}).status_code == 403
        assert cancel("approver", {}).get_json()["error"]["code"] == "reason_required"
        answer = cancel("approver", {"reason": "duplicate household"})
        assert answer.status_code == 200 and answer.get_json()["status"] == "cancelled"
        assert cancel("approver", {"reason": "again"}).status_code == 409
        assert harness.partner_status(transfer.reference) == P.CANCELLED


def test_reissue_goes_to_another_partner_and_never_makes_two_live_attempts(pg_svc) -> None:
    officers = create_officers(pg_svc)

    rejected = rest_transfer(unique_reference(), 0, "cash")          # region 01
    seed_transfers(pg_svc, "BARID", [rejected], status="sent")
    with pg_svc.uow() as session:
        session.execute(update(Transfer).values(status="rejected",
                                                status_reason="AC01 invalid account"))
        session.commit()

    reports: list = []
    barrier = threading.Barrier(2)

    def race() -> None:
        barrier.wait()
        reports.append(reissue.reissue_references(pg_svc, [rejected.reference], officers.maker))

    threads = [threading.Thread(target=race) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    won = [r for r in reports if r.reissued]
    lost = [r for r in reports if r.refused]
    assert len(won) == 1 and len(lost) == 1
    assert "live attempt" in lost[0].refused[0]["reason"]
    new = won[0].reissued[0]
    assert (new["partner"], new["attempt"]) == ("CASHPLUS", 2)
    with pg_svc.uow() as session:
        attempts = session.execute(select(Transfer.reference,
                                          Transfer.status, Transfer.partner_code)
                                   .order_by(Transfer.attempt)).all()
        batch = session.get(Batch, new["batch_id"])
        assert (batch.status, batch.partner_code, batch.transfer_count) == ("draft", "CASHPLUS", 1)
    assert attempts == [(rejected.reference, "rejected", "BARID"),
                        (new["new_reference"], "pending_approval", "CASHPLUS")]
    # Maker-checker applies to the new batch, as to any other.
    batches.submit(pg_svc, new["batch_id"], officers.maker)
    assert batches.approve(pg_svc, new["batch_id"], officers.approver).status == "approved"
    # And a live attempt is never re-issued.
    again = reissue.reissue_references(pg_svc, [new["new_reference"], rejected.reference],
                                       officers.maker)
    assert again.reissued == []
    assert [r["reason"] for r in again.refused] == [
        "transfer is approved: only rejected or failed attempts are re-issued",
        f"the instruction already has a live attempt ({new['new_reference']})"]


def test_the_partner_commands(pg_svc, pg_url, tmp_path) -> None:
    """`disburse` as a real process, acting as the maker."""
    import base64
    import json as json_module
    import os
    import subprocess
    import sys

    from tests.conftest import PASSWORD, ROOT

    create_officers(pg_svc)
    env = {**os.environ, "DATABASE_URL": pg_url, "DISBURSE_VAR_DIR": str(tmp_path),
           "DISBURSE_DATA_KEY": base64.b64encode(pg_svc.settings.data_key).decode(),
           "DISBURSE_USER": "maker", "DISBURSE_PASSWORD": PASSWORD, "REDIS_URL": ""}

    def disburse(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "disbursement.cli", *args], cwd=ROOT,
                              env=env, capture_output=True, text=True, timeout=120)

    listed = disburse("deadletters", "list")
    breakers_out = disburse("breakers")
    reissued = disburse("transfer", "reissue", "DNOSUCH")
    cancelled = disburse("transfer", "cancel", "DNOSUCH", "--reason", "x")
    retried = disburse("deadletters", "retry", "999")

    assert (listed.returncode, listed.stdout) == (0, "no dead letters\n"), listed.stderr
    assert breakers_out.returncode == 0 and "MWALLET    closed" in breakers_out.stdout
    assert json_module.loads(reissued.stdout)["refused"] == [
        {"reference": "DNOSUCH", "reason": "no transfer with this reference"}]
    assert cancelled.returncode == 3
    assert "no transfer with reference DNOSUCH" in cancelled.stderr
    assert retried.returncode == 3 and "no dead letter 999" in retried.stderr
