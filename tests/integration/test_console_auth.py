"""Console sign-in, CSRF, lockout and the approvers' second factor, on real
PostgreSQL through the app's own request handling."""
from __future__ import annotations

import pyotp
import pytest
from sqlalchemy import select

from disbursement.db.models import Batch
from disbursement.domain.states import BatchStatus, Role
from disbursement.services.batches import approval as batches
from disbursement.services.cycles import planning
from disbursement.services.officers import sign_in as officers
from disbursement.services.officers import users
from disbursement.services.registry import importing as registry
from tests.conftest import PASSWORD
from tests.support.console import (
    Officer,
    console_app,
    eligible_rows,
    fresh_totp_code,
    write_extract,
)

pytestmark = pytest.mark.integration


@pytest.fixture
def app(pg_svc):
    return console_app(pg_svc)


@pytest.fixture
def people(pg_svc):
    wanted = [("maker", Role.MAKER), ("approver", Role.APPROVER), ("approver2", Role.APPROVER),
              ("auditor", Role.AUDITOR), ("monitor", Role.MONITOR)]
    with pg_svc.uow() as session:
        for name, role in wanted:
            users.create_user(session, users.SYSTEM, name, PASSWORD, [role])
        session.commit()
        return {n: users.actor_by_name(session, n) for n, _ in wanted}


@pytest.fixture
def submitted_batches(pg_svc, people, tmp_path):
    path = write_extract(tmp_path / "extract.csv", eligible_rows(30))
    with path.open("rb") as stream:
        registry.import_households(pg_svc, stream, path.name, people["maker"])
    plan = planning.plan_cycle(pg_svc, "asd", "2026-03", people["maker"])
    for batch_id in plan.batches_created:
        batches.submit(pg_svc, batch_id, people["maker"])
    return plan.batches_created


def _status(svc, batch_id: int) -> str:
    with svc.uow() as session:
        return session.execute(select(Batch.status).where(Batch.id == batch_id)).scalar_one()


def test_pages_need_a_sign_in_and_the_cookie_is_locked_down(app, people):
    officer = Officer(app)
    assert officer.get("/console/batches/1").status_code == 302
    response = officer.login("maker", PASSWORD)
    assert response.status_code == 303
    cookie = response.headers["Set-Cookie"]
    assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert officer.get("/console/").status_code == 200


def test_failed_sign_in_does_not_say_which_part_was_wrong(app, people):
    unknown = Officer(app).login("nobody", PASSWORD)
    wrong = Officer(app).login("maker", "not the password")
    assert unknown.status_code == wrong.status_code == 401
    assert "wrong username or password" in unknown.get_data(as_text=True)
    assert "wrong username or password" in wrong.get_data(as_text=True)


def test_repeated_failures_lock_the_username_even_for_the_right_password(app, pg_svc, people):
    officer = Officer(app)
    for _ in range(pg_svc.settings.login_max_failures):
        assert officer.login("approver", "guess").status_code == 401
    locked = officer.login("approver", PASSWORD)
    assert locked.status_code == 401
    assert "too many failed sign-ins" in locked.get_data(as_text=True)
    assert Officer(app).login("maker", PASSWORD).status_code == 303  # others unaffected


def test_forms_without_the_csrf_token_are_refused_and_change_nothing(app, pg_svc, people,
                                                                   submitted_batches):
    officer = Officer(app)
    assert officer.post("/console/login", {"username": "approver", "password": PASSWORD},
                        csrf=False).status_code == 400
    officer.login("approver", PASSWORD)
    batch_id = submitted_batches[0]
    response = officer.post(f"/console/batches/{batch_id}/approve",
                            {"confirmation": PASSWORD}, csrf=False)
    assert response.status_code == 400
    assert _status(pg_svc, batch_id) == BatchStatus.SUBMITTED.value


def test_maker_sees_a_disabled_approve_button_with_the_reason_and_is_refused(
        app, pg_svc, people, submitted_batches):
    officer = Officer(app)
    officer.login("maker", PASSWORD)
    batch_id = submitted_batches[0]
    page = officer.get(f"/console/batches/{batch_id}").get_data(as_text=True)
    assert 'id="approve-batch" disabled' in page
    assert "you made this batch" in page
    refused = officer.post(f"/console/batches/{batch_id}/approve", {"confirmation": PASSWORD})
    assert refused.status_code == 403
    assert "needs the approver role" in refused.get_data(as_text=True)
    assert _status(pg_svc, batch_id) == BatchStatus.SUBMITTED.value


def test_an_officer_holding_both_roles_cannot_approve_the_batch_they_made(
        app, pg_svc, people, submitted_batches):
    with pg_svc.uow() as session:
        users.create_user(session, users.SYSTEM, "chief", PASSWORD, [Role.MAKER, Role.APPROVER])
        session.commit()
        chief = users.actor_by_name(session, "chief")
    plan = planning.plan_cycle(pg_svc, "asd", "2026-04", chief)
    batch_id = plan.batches_created[0]
    batches.submit(pg_svc, batch_id, chief)
    officer = Officer(app)
    officer.login("chief", PASSWORD)
    page = officer.get(f"/console/batches/{batch_id}").get_data(as_text=True)
    assert 'id="approve-batch" disabled' in page and "you made this batch" in page
    refused = officer.post(f"/console/batches/{batch_id}/approve", {"confirmation": PASSWORD})
    assert refused.status_code == 403
    assert "cannot approve" in refused.get_data(as_text=True)
    assert _status(pg_svc, batch_id) == BatchStatus.SUBMITTED.value


def test_approval_needs_the_approvers_password(app, pg_svc, people, submitted_batches):
    officer = Officer(app)
    officer.login("approver", PASSWORD)
    batch_id = submitted_batches[0]
    officer.get(f"/console/batches/{batch_id}")
    wrong = officer.post(f"/console/batches/{batch_id}/approve", {"confirmation": "nope"})
    assert wrong.status_code == 403
    assert _status(pg_svc, batch_id) == BatchStatus.SUBMITTED.value
    ok = officer.post(f"/console/batches/{batch_id}/approve", {"confirmation": PASSWORD})
    assert ok.status_code == 303
    assert _status(pg_svc, batch_id) == BatchStatus.APPROVED.value
    history = officer.get(f"/console/batches/{batch_id}").get_data(as_text=True)
    assert "approver" in history and "approve" in history


def test_a_totp_code_confirms_one_decision_only(app, pg_svc, people, submitted_batches):
    assert len(submitted_batches) >= 2
    uri = officers.enrol_totp(pg_svc, "approver")
    totp = pyotp.parse_uri(uri)
    officer = Officer(app)
    officer.login("approver", PASSWORD)
    # A fresh step so both posts below fall in the same 30-second window.
    code = fresh_totp_code(totp)
    first, second = submitted_batches[:2]
    officer.get(f"/console/batches/{first}")
    assert officer.post(f"/console/batches/{first}/approve",
                        {"confirmation": code}).status_code == 303
    replay = officer.post(f"/console/batches/{second}/approve", {"confirmation": code})
    assert replay.status_code == 403
    assert _status(pg_svc, first) == BatchStatus.APPROVED.value
    assert _status(pg_svc, second) == BatchStatus.SUBMITTED.value


def test_rejection_needs_a_reason(app, pg_svc, people, submitted_batches):
    officer = Officer(app)
    officer.login("approver", PASSWORD)
    batch_id = submitted_batches[0]
    officer.get(f"/console/batches/{batch_id}")
    blank = officer.post(f"/console/batches/{batch_id}/reject",
                         {"reason": "  ", "confirmation": PASSWORD})
    assert blank.status_code == 422
    assert officer.post(f"/console/batches/{batch_id}/reject",
                        {"reason": "amounts look wrong",
                         "confirmation": PASSWORD}).status_code == 303
    assert _status(pg_svc, batch_id) == BatchStatus.REJECTED.value


def test_personal_data_is_masked_unless_the_role_may_see_it(app, pg_svc, people, submitted_batches):
    batch_id = submitted_batches[0]
    approver, auditor = Officer(app), Officer(app)
    approver.login("approver", PASSWORD)
    auditor.login("auditor", PASSWORD)
    masked = approver.get(f"/console/batches/{batch_id}").get_data(as_text=True)
    clear = auditor.get(f"/console/batches/{batch_id}").get_data(as_text=True)
    rows = eligible_rows(30)
    cins = [r["cin"] for r in rows]
    assert not any(cin in masked for cin in cins)
    assert "*****" in masked
    assert any(cin in clear for cin in cins)


def test_wrong_confirmations_count_towards_the_lockout(app, pg_svc, people, submitted_batches):
    officer = Officer(app)
    officer.login("approver", PASSWORD)
    batch_id = submitted_batches[0]
    officer.get(f"/console/batches/{batch_id}")
    for _ in range(pg_svc.settings.login_max_failures):
        assert officer.post(f"/console/batches/{batch_id}/approve",
                            {"confirmation": "guess"}).status_code == 403
    locked = officer.post(f"/console/batches/{batch_id}/approve", {"confirmation": PASSWORD})
    assert locked.status_code == 403
    assert "too many failed attempts" in locked.get_data(as_text=True)
    assert _status(pg_svc, batch_id) == BatchStatus.SUBMITTED.value
