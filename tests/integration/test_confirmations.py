"""Signed partner confirmations through the HTTP API, on PostgreSQL and on
SQLite: applied, duplicate and stale outcomes; the signature checked before
the body is parsed; a request with one foreign or unknown reference applied
not at all; and the transfer's timeline as the API shows it."""
from __future__ import annotations

import json
import time
from datetime import datetime

import pytest
from sqlalchemy import func, select

from connectors import signing
from disbursement.db.models import (
    InboundMessage,
    LedgerLine,
    LedgerPosting,
    Transfer,
    TransferEvent,
)
from disbursement.services.officers import users
from disbursement.web.app import create_app
from tests.conftest import PARTNER_KEYS
from tests.support.cycle import sent_references

pytestmark = pytest.mark.integration


def _error(code: str, message: str, details=None) -> dict:
    return {"error": {"code": code, "message": message, "details": details}}


@pytest.fixture
def sent(svc, officers, households_csv) -> dict[str, list[str]]:
    """Planned, approved, then moved queued -> sent the way dispatch moves
    them; returns the references by partner."""
    by_partner = sent_references(svc, officers, households_csv(40))
    assert len(by_partner.get("BARID", [])) >= 3 and len(by_partner.get("CASHPLUS", [])) >= 1
    return by_partner


@pytest.fixture
def client(svc):
    return create_app(services=svc).test_client()


def post(client, payload=None, *, partner: str = "BARID", raw: bytes | None = None,
         key: str | None = None, now: float | None = None, headers: dict | None = None):
    body = raw if raw is not None else json.dumps(payload).encode()
    path = f"/api/v1/partners/{partner}/confirmations"
    signed = signing.sign((key or PARTNER_KEYS[partner]).encode(), body, method="POST",
                          target=path, now=now)
    return client.post(path, data=body,
                       headers={"Content-Type": "application/json",
                                **(signed if headers is None else headers)})


def _footprint(svc) -> tuple:
    """Everything a confirmation may change."""
    with svc.uow() as session:
        return (
            session.execute(select(Transfer.reference, Transfer.status, Transfer.service_point,
                                   Transfer.status_reason).order_by(Transfer.reference)).all(),
            *(session.execute(select(func.count()).select_from(model)).scalar_one()
              for model in (TransferEvent, InboundMessage, LedgerPosting, LedgerLine)))


def _status(svc, reference: str) -> str:
    with svc.uow() as session:
        return session.execute(
            select(Transfer.status).where(Transfer.reference == reference)).scalar_one()


def test_available_then_paid_is_applied_once_and_posts_the_payment(svc, client, sent):
    r1, r2 = sent["BARID"][:2]
    single = post(client, {"event_id": "BARID-1", "reference": r1, "status": "available",
                           "occurred_at": "2026-12-03T10:00:00Z"})
    assert single.status_code == 200
    assert single.get_json() == {"applied": 1, "duplicates": 0, "stale": 0,
        "disputed": 0, "refused": 0, "results": [
        {"reference": r1, "outcome": "applied", "status": "available"}]}
    with svc.uow() as session:
        assert session.execute(select(func.count()).select_from(LedgerLine)).scalar_one() == 0

    paid = [{"event_id": "BARID-2", "reference": r1, "status": "paid", "service_point": "SP-0007"},
            {"event_id": "BARID-3", "reference": r2, "status": "paid"}]  # sent -> paid is allowed
    applied = post(client, paid)
    assert applied.status_code == 200
    assert applied.get_json() == {"applied": 2, "duplicates": 0, "stale": 0,
        "disputed": 0, "refused": 0, "results": [
        {"reference": r1, "outcome": "applied", "status": "paid"},
        {"reference": r2, "outcome": "applied", "status": "paid"}]}
    with svc.uow() as session:
        amounts = session.execute(select(func.sum(Transfer.amount_centimes))
                                  .where(Transfer.reference.in_([r1, r2]))).scalar_one()
        fees = session.execute(select(func.sum(Transfer.fee_centimes))
                               .where(Transfer.reference.in_([r1, r2]))).scalar_one()
        postings = session.execute(select(LedgerPosting.kind, LedgerPosting.partner_code,
                                          LedgerPosting.memo).order_by(LedgerPosting.id)).all()
        # The partner's fees are posted with the payments (issue 4's chart of accounts).
        assert postings == [("payment", "BARID", "2 payment(s) confirmed by BARID")] + (
            [("fee", "BARID", "fees: 2 payment(s) confirmed by BARID")] if fees else [])
        lines = session.execute(select(LedgerLine.account, LedgerLine.amount_centimes)
                                .order_by(LedgerLine.account)).all()
        assert lines == sorted([("clearing:BARID", -amounts), ("paid:asd", amounts)] + (
            [("budget:asd", -fees), ("fees:BARID", fees)] if fees else []))
        assert session.execute(select(Transfer.service_point)
                               .where(Transfer.reference == r1)).scalar_one() == "SP-0007"

    before = _footprint(svc)
    replay = post(client, paid)  # the partner retries: same body, fresh signature
    assert replay.status_code == 200
    assert replay.get_json() == {"applied": 0, "duplicates": 2, "stale": 0,
        "disputed": 0, "refused": 0, "results": [
        {"reference": r1, "outcome": "duplicate", "status": "paid"},
        {"reference": r2, "outcome": "duplicate", "status": "paid"}]}
    assert _footprint(svc) == before


def test_late_and_repeated_messages_change_nothing(svc, client, sent):
    r1, r2, r3 = sent["BARID"][:3]
    assert post(client,
                {"event_id": "E-paid", "reference": r1, "status": "paid"}).status_code == 200
    assert post(client,
                {"event_id": "E-avail", "reference": r2, "status": "available"}).status_code == 200
    before = _footprint(svc)

    late = post(client, [
        {"event_id": "E-late", "reference": r1, "status": "available"},   # after paid: stale
        {"event_id": "E-avail", "reference": r2, "status": "available"},  # a replay
    ])
    assert late.status_code == 200
    assert late.get_json() == {"applied": 0, "duplicates": 1, "stale": 1, "disputed": 0,
                               "refused": 0, "results": [
        {"reference": r1, "outcome": "stale", "status": "paid"},
        {"reference": r2, "outcome": "duplicate", "status": "available"}]}
    # A stale item does not spend its event id: nothing at all was remembered.
    assert _footprint(svc) == before

    # The event id is the idempotency key: a different body under a seen id is
    # a conflict (409, naming it), and must not pay r2.
    conflict = post(client, {"event_id": "E-avail", "reference": r2, "status": "paid"})
    assert conflict.status_code == 409
    assert conflict.get_json()["error"]["message"] == (
        f"event id(s) already used with another payload: E-avail (first used for {r2})")
    assert _status(svc, r2) == "available"
    assert _footprint(svc) == before

    # Without event ids: a status the transfer already has is a duplicate, and
    # two copies in one request apply once.
    twice = post(client, [{"reference": r3, "status": "available"},
                          {"reference": r3, "status": "available"}])
    assert twice.get_json() == {"applied": 1, "duplicates": 1, "stale": 0,
        "disputed": 0, "refused": 0, "results": [
        {"reference": r3, "outcome": "applied", "status": "available"},
        {"reference": r3, "outcome": "duplicate", "status": "available"}]}
    with svc.uow() as session:
        assert session.execute(select(func.count()).select_from(TransferEvent).join(
            Transfer, Transfer.id == TransferEvent.transfer_id).where(
            Transfer.reference == r3, TransferEvent.to_status == "available")).scalar_one() == 1


def test_a_rejection_keeps_the_partner_reason(svc, client, sent):
    r1 = sent["BARID"][0]
    rejected = post(client, {"event_id": "E-rej", "reference": r1, "status": "rejected",
                             "reason": "AC01 invalid account"})
    assert rejected.get_json()["results"] == [{"reference": r1,
                                               "outcome": "applied", "status": "rejected"}]
    with svc.uow() as session:
        reason = session.execute(select(Transfer.status_reason)
                                 .where(Transfer.reference == r1)).scalar_one()
        assert reason == "AC01 invalid account"


def test_a_bad_signature_is_refused_before_the_body_is_read(svc, client, sent):
    r1 = sent["BARID"][0]
    good = json.dumps({"event_id": "E1", "reference": r1, "status": "paid"}).encode()
    before = _footprint(svc)
    cases = [
        ({"raw": good, "key": "not-the-key"}, "signature does not match"),
        ({"raw": good, "key": PARTNER_KEYS["CASHPLUS"]}, "signature does not match"),
        # Not JSON, and still a 401: nothing is parsed before the signature holds.
        ({"raw": b"{not json", "key": "not-the-key"}, "signature does not match"),
        ({"raw": good, "headers": {}},
         "missing X-Disburse-Timestamp, X-Disburse-Nonce or X-Disburse-Signature header"),
        ({"raw": good, "now": time.time() - signing.MAX_CLOCK_SKEW_SECONDS - 60},
         "timestamp outside the 300s window"),
    ]
    for kwargs, message in cases:
        refused = post(client, **kwargs)
        assert refused.status_code == 401, message
        assert refused.get_json() == _error("bad_signature", message)
    # A body changed after signing.
    headers = signing.sign(PARTNER_KEYS["BARID"].encode(), good, method="POST",
                           target="/api/v1/partners/BARID/confirmations")
    tampered = good.replace(b'"paid"', b'"available"')
    refused = post(client, raw=tampered, headers=headers)
    assert refused.get_json() == _error("bad_signature", "signature does not match")
    assert _footprint(svc) == before


def test_one_foreign_or_unknown_reference_refuses_the_whole_request(svc, client, sent):
    mine, theirs = sent["BARID"][0], sent["CASHPLUS"][0]
    before = _footprint(svc)
    foreign = post(client, [{"event_id": "E-ok", "reference": mine, "status": "available"},
                            {"event_id": "E-theirs", "reference": theirs, "status": "available"}])
    assert foreign.status_code == 404
    assert foreign.get_json() == _error(
        "unknown_reference", f"unknown reference(s) for this partner: {theirs}",
        {"references": [theirs]})
    unknown = post(client, [{"reference": mine, "status": "paid"},
                            {"reference": "DNOSUCHREF00001", "status": "paid"}])
    assert unknown.status_code == 404
    assert unknown.get_json() == _error(
        "unknown_reference", "unknown reference(s) for this partner: DNOSUCHREF00001",
        {"references": ["DNOSUCHREF00001"]})
    assert _footprint(svc) == before
    assert (_status(svc, mine), _status(svc, theirs)) == ("sent", "sent")

    # The refused request burned no event id: the valid item alone applies.
    alone = post(client, {"event_id": "E-ok", "reference": mine, "status": "available"})
    assert alone.get_json()["results"] == [{"reference": mine,
                                            "outcome": "applied", "status": "available"}]

    nobody = post(client, {"reference": mine, "status": "paid"}, partner="NOPE", key="whatever")
    assert nobody.status_code == 404
    assert nobody.get_json() == _error("unknown_partner", "unknown partner NOPE")


def test_malformed_bodies_are_refused_with_details(svc, client, sent):
    r1 = sent["BARID"][0]
    before = _footprint(svc)
    not_json = post(client, raw=b"status=paid")
    assert not_json.status_code == 400
    assert not_json.get_json() == _error("invalid_json", "body is not JSON")

    wrong = post(client, [{"reference": r1, "status": "available"},
                          {"reference": r1, "status": "collected"},
                          {"status": "paid"}])
    assert wrong.status_code == 422
    assert wrong.get_json() == _error("invalid_confirmation", "invalid confirmation", {
        "1": {"status": ["Must be one of: available, paid, expired, rejected, cancelled."]},
        "2": {"reference": ["Missing data for required field."]}})

    for payload in ([], [1, 2], "paid"):
        shapeless = post(client, payload)
        assert shapeless.status_code == 422
        assert shapeless.get_json() == _error(
            "invalid_confirmation",
            "body must be a confirmation object or a non-empty list of them")
    assert _footprint(svc) == before


def test_the_transfer_view_shows_the_timeline_in_order(svc, client, sent, officers):
    r1 = sent["BARID"][0]
    post(client, {"event_id": "T1", "reference": r1, "status": "available"})
    post(client, {"event_id": "T2", "reference": r1, "status": "paid", "service_point": "SP-0031"})
    with svc.uow() as session:
        token = users.issue_token(session, officers.monitor, 60)
        session.commit()
    auth = {"Authorization": f"Bearer {token}"}

    shown = client.get(f"/api/v1/transfers/{r1}", headers=auth)
    assert shown.status_code == 200
    view = shown.get_json()
    assert (view["reference"], view["status"], view["partner"], view["service_point"]) == (
        r1, "paid", "BARID", "SP-0031")
    assert (view["instruction"]["program"], view["instruction"]["period"]) == ("asd", "2026-12")
    assert [(e["from"], e["to"], e["source"], e["actor"], e["detail"])
            for e in view["timeline"]] == [
        (None, "pending_approval", "officer", "maker", "planned"),
        ("pending_approval", "approved", "officer", "approver",
         f"batch {view['batch_id']} approved"),
        ("approved", "queued", "officer", "maker", "released"),
        ("queued", "sent", "dispatch", "BARID", None),
        ("sent", "available", "partner", "BARID", "partner confirmed available"),
        ("available", "paid", "partner", "BARID", "partner confirmed paid"),
    ]
    stamps = [datetime.fromisoformat(e["at"]) for e in view["timeline"]]
    assert stamps == sorted(stamps)

    missing = client.get("/api/v1/transfers/DNOSUCHREF00001", headers=auth)
    assert missing.status_code == 404
    assert missing.get_json() == _error("unknown_reference",
                                        "no transfer with reference DNOSUCHREF00001")
    assert client.get(f"/api/v1/transfers/{r1}").status_code == 401
