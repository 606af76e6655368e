"""The exceptions queue through the HTTP API (filters, keyset pages, role
rules, each resolution kind, audited, a write-off a balanced posting), the
partner's signed returns of funds, expiry, and the arrears they leave."""
from __future__ import annotations

import json
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from connectors import signing
from disbursement.db.models import AuditEntry, LedgerLine, Transfer, utcnow
from disbursement.db.models.ledger import Arrears, ReconException
from disbursement.domain.states import Role
from disbursement.services.ledger import postings as ledger
from disbursement.services.officers import users
from disbursement.services.tracking import confirmations
from reconciliation import exceptions, expiry, reconcile, returns
from tests.conftest import PARTNER_KEYS
from tests.support.api import Api
from tests.support.recon_world import build_world, csv_statement

pytestmark = pytest.mark.integration
PARTNER = "BARID"


@pytest.fixture
def world(svc, officers, households_csv, redis_url):
    built = build_world(svc, officers, households_csv, redis_url)
    with svc.uow() as session:
        users.create_user(session, users.SYSTEM, "auditor", "correct horse battery staple",
                          [Role.AUDITOR])
        session.commit()
    return built


def _confirm(svc, refs, status):
    confirmations.apply(svc, PARTNER, [{"event_id": None, "reference": r, "status": status,
                                        "occurred_at": None, "reason": None,
                                        "service_point": None} for r in refs])


@pytest.fixture
def queue(world, officers):
    """A statement with an amount over, an unknown reference and a missing payment."""
    svc, r = world.svc, world.refs[PARTNER]
    _confirm(svc, r[:3], "paid")
    statement = csv_statement([(r[0], world.transfer(r[0]).amount_centimes + 250),
                               ("XNOTOURS0000001", 1234), ("XNOTOURS0000002", 99)])
    reconcile.reconcile(svc, PARTNER, statement, "q.csv", officers.maker)
    return Api(svc)


def test_list_filters_and_pages_by_keyset(queue):
    everything = queue.call("GET", "/api/v1/exceptions", "auditor").get_json()
    assert [e["type"] for e in everything["exceptions"]] == [
        "amount_over", "unknown_reference", "unknown_reference",
        "paid_in_records_missing_from_statement", "paid_in_records_missing_from_statement"]
    assert everything["next_after"] is None
    first = queue.call("GET",
                       "/api/v1/exceptions?type=unknown_reference&limit=1", "maker").get_json()
    assert [e["reference"] for e in first["exceptions"]] == ["XNOTOURS0000001"]
    second = queue.call("GET", f"/api/v1/exceptions?type=unknown_reference&limit=1"
                               f"&after={first['next_after']}", "maker").get_json()
    assert [e["reference"] for e in second["exceptions"]] == ["XNOTOURS0000002"]
    expected = queue.call("GET", "/api/v1/exceptions?status=expected&partner=BARID", "approver")
    assert {e["status"] for e in expected.get_json()["exceptions"]} == {"expected"}
    assert queue.call("GET", "/api/v1/exceptions?partner=CASHPLUS", "maker").get_json()[
        "exceptions"] == []
    counts = queue.call("GET", "/api/v1/exceptions/counts", "auditor").get_json()
    assert counts["unknown_reference"] == {"count": 2, "amount_centimes": 1333}
    assert queue.call("GET", "/api/v1/exceptions", "monitor").status_code == 403


def test_write_off_needs_an_approver_posts_a_balanced_correction_and_is_audited(queue):
    over = queue.call("GET", "/api/v1/exceptions?type=amount_over",
                      "maker").get_json()["exceptions"][0]
    path = f"/api/v1/exceptions/{over['id']}/resolve"
    refused = queue.call("POST", path, "maker", json={"kind": "write_off", "reason": "small"})
    assert refused.status_code == 403
    no_reason = queue.call("POST", path, "approver", json={"kind": "write_off", "reason": " "})
    assert (no_reason.status_code,
            no_reason.get_json()["error"]["code"]) == (422, "invalid_resolution")

    done = queue.call("POST", path, "approver", json={"kind": "write_off",
                                                      "reason": "partner paid 2.50 over; absorbed"})
    assert done.status_code == 200
    body = done.get_json()
    assert (body["status"], body["resolution"], body["resolved_by"]) == ("resolved",
                                                                         "write_off", "approver")
    with queue.svc.uow() as session:
        legs = session.execute(select(LedgerLine.account, LedgerLine.amount_centimes)
                               .where(LedgerLine.posting_id == body["posting_id"])
                               .order_by(LedgerLine.account)).all()
        audited = session.execute(select(AuditEntry.action, AuditEntry.detail)
                                  .where(AuditEntry.action == "exception.write_off")).one()
        check = ledger.check(session)
    assert legs == [("clearing:BARID", -250), ("corrections:asd", 250)]
    assert audited.detail["reason"] == "partner paid 2.50 over; absorbed"
    assert check.balanced and sum(c.corrections for c in check.cycles) == 250
    again = queue.call("POST", path, "approver", json={"kind": "write_off", "reason": "twice"})
    assert (again.status_code, again.get_json()["error"]["code"]) == (409, "already_resolved")


def test_correction_reissue_and_chase_resolutions(queue):
    items = queue.call("GET", "/api/v1/exceptions", "maker").get_json()["exceptions"]
    unknown, missing = items[1], items[3]
    no_cycle = queue.call("POST", f"/api/v1/exceptions/{unknown['id']}/resolve", "approver",
                          json={"kind": "correction_posting", "reason": "fee",
                                "amount_centimes": 1234})
    assert no_cycle.status_code == 422
    assert "name the program and period" in no_cycle.get_json()["error"]["message"]
    fixed = queue.call("POST", f"/api/v1/exceptions/{unknown['id']}/resolve", "approver",
                       json={"kind": "correction_posting",
                             "reason": "partner fee", "program": "asd",
                             "period": "2026-12", "amount_centimes": 1234})
    assert fixed.status_code == 200 and fixed.get_json()["posting_id"]
    reissue = queue.call("POST", f"/api/v1/exceptions/{missing['id']}/resolve", "approver",
                         json={"kind": "reissue", "reason": "never reached the household"})
    # The transfer is paid in our records: re-issuing it could pay twice, so the
    # resolution is refused and the exception stays in the queue.
    assert reissue.status_code == 422
    assert "cannot re-issue" in reissue.get_json()["error"]["message"]
    still = queue.call("GET", f"/api/v1/exceptions/{missing['id']}", "maker").get_json()
    assert still["resolution"] is None and still["status"] in ("expected", "open")
    chase = queue.call("POST", f"/api/v1/exceptions/{items[2]['id']}/resolve", "approver",
                       json={"kind": "chase_partner", "reason": "asked BARID for its file"})
    assert (chase.get_json()["status"],
            chase.get_json()["resolution"]) == ("resolved", "chase_partner")
    bad = queue.call("POST", f"/api/v1/exceptions/{items[4]['id']}/resolve", "approver",
                     json={"kind": "shrug", "reason": "x"})
    assert bad.status_code == 422
    assert "unknown resolution 'shrug'" in bad.get_json()["error"]["message"]
    with queue.svc.uow() as session:
        assert ledger.check(session).balanced


def test_a_refused_reissue_resolves_nothing_and_reissues_nothing(queue, officers):
    """The resolution and its re-issue are one transaction on PostgreSQL: when the
    re-issue is refused, neither the resolution, nor a new attempt, nor the
    re-issue's audit entry remains."""
    missing = queue.call("GET", "/api/v1/exceptions?type=paid_in_records_missing_from_statement",
                         "maker").get_json()["exceptions"][0]

    def snapshot():
        with queue.svc.uow() as session:
            return (session.execute(select(func.count()).select_from(Transfer)).scalar_one(),
                    session.execute(select(func.count()).select_from(AuditEntry).where(
                        AuditEntry.action.in_(["transfer.reissue", "exception.reissue"])))
                    .scalar_one(),
                    session.get(ReconException, missing["id"]).status)

    before = snapshot()
    with pytest.raises(exceptions.BadResolution, match="cannot re-issue"):
        exceptions.resolve(queue.svc, missing["id"], officers.approver, "reissue",
                           "never reached the household")
    assert snapshot() == before
    assert before[2] in ("expected", "open")


def test_signed_returns_of_funds_expire_flag_arrears_and_answer_calmly(world, svc):
    api, r = Api(svc), world.refs[PARTNER]
    _confirm(svc, r[:3], "available")
    _confirm(svc, [r[3]], "paid")
    _confirm(svc, [r[4]], "rejected")
    assert expiry.run(svc, users.SYSTEM, utcnow().date() + timedelta(days=29)).expired == {"asd": 0}
    with svc.uow() as session:
        due = session.execute(select(func.count()).select_from(Transfer).where(
            Transfer.status.in_(["sent", "available"]))).scalar_one()
    ran = expiry.run(svc, users.SYSTEM, utcnow().date() + timedelta(days=31))
    assert ran.expired["asd"] == due
    assert world.status(r[0]) == "expired"
    assert world.status(r[5]) == "expired"      # sent and never available: expired too
    assert expiry.run(svc, users.SYSTEM, utcnow().date() + timedelta(days=31)).expired == {"asd": 0}

    path = f"/api/v1/partners/{PARTNER}/returns"
    payload = [{"event_id": "R1", "reference": r[0], "reason_code": "MD06"},
               {"event_id": "R2", "reference": r[3]}, {"event_id": "R3", "reference": r[4]}]
    first = api.signed(path, payload)
    assert first.status_code == 200
    assert first.get_json()["results"] == [
        {"reference": r[0], "outcome": "returned"}, {"reference": r[3], "outcome": "not_allowed"},
        {"reference": r[4], "outcome": "returned"}]
    replay = api.signed(path, payload).get_json()
    assert (replay["returned"], replay["duplicates"], replay["not_allowed"]) == (0, 3, 0)
    assert [world.status(x) for x in (r[0], r[3], r[4])] == ["returned", "paid", "rejected"]
    forged = api.client.post(path, data=json.dumps(payload),
                             headers={"Content-Type": "application/json"})
    assert forged.status_code == 401
    foreign = api.signed(path, [{"reference": world.refs["CASHPLUS"][0]}])
    assert foreign.status_code == 404
    with svc.uow() as session:
        arrears = session.execute(select(Arrears.transfer_id, Arrears.amount_centimes)).all()
        flagged = session.execute(select(ReconException.type, ReconException.reference)).all()
        due = returns.arrears_due(session, "asd")
        assert ledger.check(session).balanced
        t0 = session.execute(select(Transfer).where(Transfer.reference == r[0])).scalar_one()
        returned_lines = session.execute(select(func.sum(LedgerLine.amount_centimes)).where(
            LedgerLine.account == "returned:asd")).scalar_one()
    assert arrears == [(t0.id, t0.amount_centimes)]
    assert [a["transfer_id"] for a in due] == [t0.id]
    assert flagged == [("return_of_paid", r[3])]
    assert returned_lines == t0.amount_centimes + world.transfer(r[4]).amount_centimes


def test_returns_take_the_inbound_path_of_confirmations(world, svc):
    """Verified before parsed (a signed body that is not JSON is 400, an unsigned
    one 401), and an event id is one message: its second copy is a replay."""
    api, r = Api(svc), world.refs[PARTNER]
    path = f"/api/v1/partners/{PARTNER}/returns"
    headers = signing.sign(PARTNER_KEYS[PARTNER].encode(), b"not json", method="POST", target=path)
    json_type = {"Content-Type": "application/json"}
    not_json = api.client.post(path, data=b"not json", headers={**json_type, **headers})
    assert (not_json.status_code, not_json.get_json()["error"]) == (
        400, {"code": "invalid_json", "message": "body is not JSON", "details": None})
    unsigned = api.client.post(path, data=b"not json", headers=json_type)
    assert unsigned.status_code == 401

    _confirm(svc, r[:2], "rejected")
    twice = api.signed(path, [{"event_id": "R9", "reference": r[0]},
                              {"event_id": "R9", "reference": r[0]}]).get_json()
    assert twice["results"] == [{"reference": r[0], "outcome": "returned"},
                                {"reference": r[0], "outcome": "duplicate"}]
    # One event id for two references is a conflict: nothing of the message is applied.
    other = api.signed(path, [{"event_id": "R9", "reference": r[1]}])
    assert other.status_code == 409
    assert "R9 (first used for" in other.get_json()["error"]["message"]
    assert [world.status(x) for x in r[:2]] == ["rejected", "rejected"]
