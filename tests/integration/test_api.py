"""The HTTP API through Flask's test client, on PostgreSQL and on SQLite:
authentication, roles, registry uploads and their error report, planning, and
maker-checker on batches. Every refusal is checked by its exact error body and
by what it did not change."""
from __future__ import annotations

import csv
import dataclasses
import io

import pytest
from sqlalchemy import func, select

from disbursement.db.models import (
    AuditEntry,
    Batch,
    BatchDecision,
    Cycle,
    Household,
    LedgerLine,
    OutboxItem,
    RegistryImport,
    Transfer,
    TransferEvent,
)
from disbursement.domain.states import Role
from disbursement.services.officers import audit, users
from tests.conftest import PASSWORD
from tests.support.api import Api

pytestmark = pytest.mark.integration

PROGRAM, PERIOD = "asd", "2026-12"


def _error(code: str, message: str, details=None) -> dict:
    return {"error": {"code": code, "message": message, "details": details}}


@pytest.fixture
def api(svc, officers) -> Api:
    return Api(svc)


def _count(svc, model) -> int:
    with svc.uow() as session:
        return session.execute(select(func.count()).select_from(model)).scalar_one()


def _households(svc) -> list[tuple]:
    with svc.uow() as session:
        return session.execute(select(Household.household_id,
                                      Household.import_id, Household.head_name,
                                      Household.updated_at).order_by(Household.household_id)).all()


def _transfer_statuses(svc, batch_id: int) -> dict[str, int]:
    with svc.uow() as session:
        return dict(session.execute(select(Transfer.status, func.count())
                                    .where(Transfer.batch_id == batch_id)
                                    .group_by(Transfer.status)).all())


def _batch_trail(svc, batch_id: int) -> list[tuple[str, str]]:
    """(actor, action) of the audit rows about one batch, in order; and the
    whole chain verified."""
    with svc.uow() as session:
        assert audit.verify(session) == session.execute(
            select(func.count()).select_from(AuditEntry)).scalar_one()
        return session.execute(select(AuditEntry.actor, AuditEntry.action)
                               .where(AuditEntry.object_type == "batch",
                                      AuditEntry.object_id == str(batch_id))
                               .order_by(AuditEntry.id)).all()


# -- authentication and roles ---------------------------------------------------

def test_tokens_roles_and_the_error_shape(api, svc, households_csv):
    good = api.client.post("/api/v1/auth/tokens",
                           json={"username": "approver", "password": PASSWORD})
    assert good.status_code == 201
    body = good.get_json()
    assert (body["username"], body["roles"], body["expires_in"]) == (
        "approver", ["approver"], svc.settings.token_ttl_seconds)
    issued = {"Authorization": f"Bearer {body['token']}"}
    assert api.client.get("/api/v1/batches", headers=issued).status_code == 200

    for username, password in (("approver", "wrong"), ("nobody", PASSWORD)):
        refused = api.client.post("/api/v1/auth/tokens",
                                  json={"username": username, "password": password})
        assert refused.status_code == 401
        # Same answer for an unknown user and a wrong password: no user enumeration.
        assert refused.get_json() == _error("unauthenticated", "unknown user or wrong password")
    shapeless = api.client.post("/api/v1/auth/tokens", json={"username": "approver"})
    assert shapeless.status_code == 422
    assert shapeless.get_json() == _error("invalid_credentials_body",
                                          'body must be {"username": ..., "password": ...}')

    missing = api.client.get("/api/v1/batches")
    assert missing.status_code == 401
    assert missing.get_json() == _error(
        "unauthenticated", "an API token is required: Authorization: Bearer <token>")
    forged = api.client.get("/api/v1/batches", headers={"Authorization": "Bearer not-a-token"})
    assert forged.status_code == 401
    assert forged.get_json() == _error("unauthenticated", "invalid token")

    assert api.upload(households_csv(20)).status_code == 201
    refused = api.plan(as_user="monitor")
    assert refused.status_code == 403
    assert refused.get_json() == _error("forbidden", "user monitor needs the maker role")
    assert _count(svc, Cycle) == 0 and _count(svc, Transfer) == 0


# -- registry uploads -------------------------------------------------------------

def test_a_good_extract_is_imported_once(api, svc, households_csv):
    path = households_csv(30)
    first = api.upload(path)
    assert first.status_code == 201
    body = first.get_json()
    import_id = body["import_id"]
    assert {k: body[k] for k in ("status", "rows_total", "rows_valid", "rows_invalid",
                                 "rows_imported", "duplicate_of", "error_report")} == {
        "status": "imported", "rows_total": 30, "rows_valid": 30, "rows_invalid": 0,
        "rows_imported": 30, "duplicate_of": None,
        "error_report": f"/api/v1/registry/imports/{import_id}/errors.csv"}
    before = _households(svc)
    assert len(before) == 30

    again = api.upload(path)
    assert again.status_code == 200
    assert {k: again.get_json()[k] for k in ("status", "import_id", "duplicate_of", "rows_imported",
                                             "checksum")} == {
        "status": "duplicate", "import_id": import_id, "duplicate_of": import_id,
        "rows_imported": 0, "checksum": body["checksum"]}
    assert _households(svc) == before
    assert _count(svc, RegistryImport) == 1

    shown = api.call("GET", f"/api/v1/registry/imports/{import_id}", "monitor").get_json()
    assert (shown["status"], shown["rows_imported"],
            shown["imported_by"]) == ("imported", 30, "maker")


def test_an_extract_with_bad_rows_is_rejected_whole_with_a_line_by_line_report(
        api, svc, households_csv):
    # Households already there must come out of a rejected upload untouched,
    # even those whose ids the bad file also carries.
    assert api.upload(households_csv(20, seed=3, name="earlier.csv")).status_code == 201
    before = _households(svc)

    rejected = api.upload(households_csv(50, bad_rows=4, name="bad.csv"))
    assert rejected.status_code == 422
    body = rejected.get_json()
    assert {k: body[k] for k in ("status", "rows_total", "rows_valid", "rows_invalid",
                                 "rows_imported")} == {
        "status": "rejected", "rows_total": 50, "rows_valid": 46, "rows_invalid": 4,
        "rows_imported": 0}
    assert _households(svc) == before

    report = api.call("GET", body["error_report"], "monitor")
    assert report.status_code == 200
    assert report.mimetype == "text/csv"
    assert list(csv.reader(io.StringIO(report.get_data(as_text=True)))) == [
        ["line", "household_id", "field", "message"],
        ["12", "RSU-00000011", "cin",
         '"12AB" is not a national ID card number (1-2 letters then 1-6 digits)'],
        ["22", "RSU-00000021", "children_0_5", 'must be a non-negative integer, got "-1"'],
        ["32", "RSU-00000031", "region_code", 'unknown region "13"'],
        ["42", "RSU-00000040", "household_id",
         'duplicate household id "RSU-00000040", first seen on line 41'],
    ]
    missing = api.call("GET", "/api/v1/registry/imports/999999/errors.csv", "monitor")
    assert missing.status_code == 404
    assert missing.get_json() == _error("not_found", "registry import 999999 not found")


def test_valid_rows_only_imports_the_rest_as_partial(api, svc, households_csv):
    partial = api.upload(households_csv(50, seed=11, bad_rows=4), valid_rows_only="true")
    assert partial.status_code == 201
    body = partial.get_json()
    assert (body["status"], body["rows_valid"], body["rows_invalid"], body["rows_imported"]) == (
        "partial", 46, 4, 46)
    ids = {row.household_id for row in _households(svc)}
    assert len(ids) == 46
    assert not ids & {"RSU-00000011", "RSU-00000021", "RSU-00000031", "RSU-00000041"}
    assert "RSU-00000040" in ids  # the first holder of the duplicated id stays
    report = api.call("GET", body["error_report"], "maker").get_data(as_text=True)
    assert [row[:3] for row in csv.reader(io.StringIO(report))][1:] == [
        ["12", "RSU-00000011", "cin"], ["22", "RSU-00000021", "children_0_5"],
        ["32", "RSU-00000031", "region_code"], ["42", "RSU-00000040", "household_id"]]


def test_an_upload_over_the_size_limit_is_refused_before_reading(svc, officers, households_csv):
    limit = 2_048
    small = dataclasses.replace(svc, settings=svc.settings.with_overrides(max_upload_bytes=limit))
    api = Api(small)
    path = households_csv(50)
    assert path.stat().st_size > limit
    refused = api.upload(path)
    assert refused.status_code == 413
    assert refused.get_json() == _error("request_entity_too_large",
                                        f"upload larger than {limit} bytes")
    assert _count(svc, RegistryImport) == 0 and _count(svc, Household) == 0


# -- planning and maker-checker -----------------------------------------------------

def _planned(api, households_csv, n: int = 30, as_user: str = "maker") -> list[int]:
    assert api.upload(households_csv(n), as_user=as_user).status_code == 201
    planned = api.plan(as_user=as_user)
    assert planned.status_code == 201
    body = planned.get_json()
    assert (body["program"], body["period"]) == (PROGRAM, PERIOD)
    assert body["instructions_created"] > 0 and body["batches_created"]
    return body["batches_created"]


def test_a_batch_is_dispatched_only_after_another_officer_approves(api, svc, households_csv):
    """A transfer cannot be dispatched before approval: releasing a draft or
    a submitted batch is refused and leaves no trace of dispatch."""
    batch_id = _planned(api, households_csv)[0]
    draft = api.call("GET", f"/api/v1/batches/{batch_id}", "monitor").get_json()
    assert (draft["status"], draft["created_by"],
            draft["approvals_required"]) == ("draft", "maker", 1)
    transfers = draft["transfer_count"]
    assert transfers > 0
    draft_release = api.batch(batch_id, "release", "maker")
    assert draft_release.status_code == 409
    assert draft_release.get_json() == _error(
        "state_conflict", f"batch {batch_id} is draft: it must be approved before release")
    early = api.batch(batch_id, "approve", "approver")
    assert early.status_code == 409
    assert early.get_json() == _error(
        "state_conflict", f"batch {batch_id} is draft, only a submitted batch can be approved")

    submitted = api.batch(batch_id, "submit", "maker")
    assert submitted.status_code == 200
    assert (submitted.get_json()["status"],
            submitted.get_json()["submitted_by"]) == ("submitted", "maker")
    for who in ("maker", "approver"):
        refused = api.batch(batch_id, "release", who)
        assert refused.status_code == 409
        assert refused.get_json() == _error(
            "state_conflict", f"batch {batch_id} is submitted: it must be approved before release")
    by_maker = api.batch(batch_id, "approve", "maker")  # a maker has no approver role
    assert by_maker.status_code == 403
    assert by_maker.get_json() == _error("forbidden", "user maker needs the approver role")

    with svc.uow() as session:
        assert session.get(Batch, batch_id).status == "submitted"
        # Nothing anywhere left pending_approval: no queued transfer, no dispatch
        # work, no money released in the ledger, no event but "planned".
        assert set(
            session.execute(select(Transfer.status).distinct()).scalars()) == {"pending_approval"}
        assert session.execute(select(func.count()).select_from(OutboxItem)).scalar_one() == 0
        assert session.execute(select(func.count()).select_from(LedgerLine)).scalar_one() == 0
        assert set(
            session.execute(select(TransferEvent.detail).distinct()).scalars()) == {"planned"}
    assert _batch_trail(svc, batch_id) == [("maker", "batch.submit")]

    approved = api.batch(batch_id, "approve", "approver")
    assert approved.status_code == 200
    assert approved.get_json()["status"] == "approved"
    assert _transfer_statuses(svc, batch_id) == {"approved": transfers}
    assert _count(svc, OutboxItem) == 0  # approval alone dispatches nothing either
    assert _batch_trail(svc, batch_id) == [("maker", "batch.submit"), ("approver", "batch.approve")]


def test_an_officer_with_both_roles_cannot_approve_their_own_batch(api, svc, households_csv):
    with svc.uow() as session:
        users.create_user(session, users.SYSTEM, "amina", PASSWORD, [Role.MAKER, Role.APPROVER])
        session.commit()
    batch_id = _planned(api, households_csv, as_user="amina")[0]
    assert api.batch(batch_id, "submit", "amina").status_code == 200

    refused = api.batch(batch_id, "approve", "amina")
    assert refused.status_code == 403
    assert refused.get_json() == _error("self_approval",
                                        f"amina made batch {batch_id} and cannot approve it")
    shown = api.call("GET", f"/api/v1/batches/{batch_id}", "monitor").get_json()
    assert shown["status"] == "submitted"
    assert [(d["username"], d["decision"]) for d in shown["decisions"]] == [("amina", "submit")]
    assert set(_transfer_statuses(svc, batch_id)) == {"pending_approval"}

    refused_reject = api.batch(batch_id, "reject", "amina", json={"reason": "changed my mind"})
    assert refused_reject.status_code == 403
    assert refused_reject.get_json()["error"]["code"] == "self_approval"
    assert _batch_trail(svc, batch_id) == [("amina", "batch.submit")]


def test_a_rejection_needs_a_reason_and_cancels_the_transfers(api, svc, households_csv):
    batch_id = _planned(api, households_csv)[0]
    assert api.batch(batch_id, "submit", "maker").status_code == 200
    transfers = _transfer_statuses(svc, batch_id)["pending_approval"]

    for body in ({}, {"reason": "   "}):
        refused = api.batch(batch_id, "reject", "approver", json=body)
        assert refused.status_code == 422
        assert refused.get_json() == _error("reason_required", "a rejection needs a reason")
    assert _transfer_statuses(svc, batch_id) == {"pending_approval": transfers}

    rejected = api.batch(batch_id, "reject", "approver", json={"reason": "  amounts look wrong "})
    assert rejected.status_code == 200
    assert rejected.get_json()["status"] == "rejected"
    assert _transfer_statuses(svc, batch_id) == {"cancelled": transfers}
    with svc.uow() as session:
        events = session.execute(select(TransferEvent.from_status, TransferEvent.source,
                                        TransferEvent.actor, TransferEvent.detail).distinct()
                                 .where(TransferEvent.to_status == "cancelled")).all()
        assert events == [("pending_approval", "officer", "approver",
                           "batch rejected: amounts look wrong")]
        reason = session.execute(select(BatchDecision.reason).where(
            BatchDecision.batch_id == batch_id, BatchDecision.decision == "reject")).scalar_one()
        assert reason == "amounts look wrong"

    late = api.batch(batch_id, "approve", "approver2")
    assert late.status_code == 409
    assert late.get_json() == _error(
        "state_conflict", f"batch {batch_id} is rejected, only a submitted batch can be approved")
    assert _batch_trail(svc, batch_id) == [("maker", "batch.submit"), ("approver", "batch.reject")]


def test_a_large_batch_needs_two_different_approvers(svc, officers, households_csv):
    strict = dataclasses.replace(svc, settings=svc.settings.with_overrides(
        second_approval_above_centimes=100_00))
    api = Api(strict)
    batch_id = _planned(api, households_csv)[0]
    shown = api.call("GET", f"/api/v1/batches/{batch_id}", "monitor").get_json()
    assert shown["total_centimes"] > 100_00 and shown["approvals_required"] == 2
    assert api.batch(batch_id, "submit", "maker").status_code == 200

    for _ in range(2):  # the same approver twice counts once
        once = api.batch(batch_id, "approve", "approver")
        assert once.status_code == 200
        assert once.get_json()["status"] == "submitted"
    assert set(_transfer_statuses(svc, batch_id)) == {"pending_approval"}

    second = api.batch(batch_id, "approve", "approver2")
    assert second.status_code == 200
    assert second.get_json()["status"] == "approved"
    assert set(_transfer_statuses(svc, batch_id)) == {"approved"}
    decisions = api.call("GET", f"/api/v1/batches/{batch_id}", "monitor").get_json()["decisions"]
    assert [(d["username"], d["decision"]) for d in decisions] == [
        ("maker", "submit"), ("approver", "approve"), ("approver2", "approve")]
    assert _batch_trail(svc, batch_id) == [
        ("maker", "batch.submit"), ("approver", "batch.approve"), ("approver2", "batch.approve")]
    with svc.uow() as session:
        actions = session.execute(select(AuditEntry.action).order_by(AuditEntry.id)).scalars().all()
    assert actions == ["user.create"] * 4 + ["registry.import", "cycle.plan", "batch.submit",
                                             "batch.approve", "batch.approve"]
