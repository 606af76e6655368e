"""Cycles in the console: planning and registry imports run as jobs whose
progress the page follows, and a cycle shows what changed since the previous
one and why. On PostgreSQL and the embedded SQLite; jobs run by the in-process queue."""
from __future__ import annotations

import io

import pytest
from sqlalchemy import func, select

from disbursement.db.models.console import ConsoleJob
from disbursement.domain.states import Role
from disbursement.services.cycles import planning
from disbursement.services.officers import users
from disbursement.services.registry import importing as registry
from tests.conftest import PASSWORD
from tests.support.console import Officer, console_app, eligible_rows, write_extract

pytestmark = pytest.mark.integration


@pytest.fixture
def maker(svc):
    with svc.uow() as session:
        users.create_user(session, users.SYSTEM, "maker", PASSWORD, [Role.MAKER])
        session.commit()
        actor = users.actor_by_name(session, "maker")
    officer = Officer(console_app(svc))
    officer.login("maker", PASSWORD)
    officer.get("/console/cycles")
    return actor, officer


def _job_id(response) -> int:
    assert response.status_code == 303, response.get_data(as_text=True)
    return int(response.headers["Location"].rsplit("/", 1)[1])


def test_import_and_planning_run_as_jobs_with_progress(svc, maker, tmp_path):
    _, officer = maker
    rows = eligible_rows(40)
    extract = write_extract(tmp_path / "rsu.csv", rows).read_bytes()
    job_id = _job_id(officer.client.post(
        "/console/registry/import", base_url="https://localhost",
        headers={"Referer": "https://localhost/console/cycles"},
        data={"csrf_token": officer.token, "extract": (io.BytesIO(extract), "rsu.csv")},
        content_type="multipart/form-data"))
    svc.queue.drain()
    job = officer.get(f"/console/jobs/{job_id}.json").get_json()
    assert job["status"] == "done" and job["kind"] == "import"
    assert job["done"] == job["total"] == 40
    assert job["result"]["rows_imported"] == 40
    assert not list((svc.settings.var_dir / "uploads").iterdir())  # upload removed

    job_id = _job_id(officer.post("/console/cycles/plan", {"program": "asd", "period": "2026-05"}))
    svc.queue.drain()
    job = officer.get(f"/console/jobs/{job_id}.json").get_json()
    assert job["status"] == "done" and job["done"] == job["total"] == 40
    assert job["result"]["instructions_created"] == 40
    assert job["next_url"] == f"/console/cycles/{job['result']['cycle_id']}"
    page = officer.get(job["next_url"]).get_data(as_text=True)
    assert 'id="instructions">40<' in page and "first cycle" in page


def test_a_bad_period_is_refused_before_any_job_starts(svc, maker):
    _, officer = maker
    response = officer.post("/console/cycles/plan", {"program": "asd", "period": "2026-13"})
    assert response.status_code == 422
    assert "is not YYYY-MM" in response.get_data(as_text=True)
    with svc.uow() as session:
        assert session.execute(select(func.count()).select_from(ConsoleJob)).scalar_one() == 0


def test_cycle_page_shows_households_added_removed_and_changed_and_why(svc, maker, tmp_path):
    actor, officer = maker
    rows = eligible_rows(30)
    first = write_extract(tmp_path / "may.csv", rows[:28])
    with first.open("rb") as stream:
        registry.import_households(svc, stream, first.name, actor)
    planning.plan_cycle(svc, "asd", "2026-05", actor)
    # June: one household left the program (score above the threshold), one
    # had a baby, two are new.
    rows[0] = {**rows[0], "score": "25"}
    rows[1] = {**rows[1], "children_0_5": str(int(rows[1]["children_0_5"]) + 1)}
    second = write_extract(tmp_path / "june.csv", rows)
    with second.open("rb") as stream:
        registry.import_households(svc, stream, second.name, actor)
    june = planning.plan_cycle(svc, "asd", "2026-06", actor)
    page = officer.get(f"/console/cycles/{june.cycle_id}").get_data(as_text=True)
    assert "Compared with asd 2026-05" in page
    assert "<dt>households added</dt><dd>2</dd>" in page
    assert "<dt>households removed</dt><dd>1</dd>" in page
    assert "<dt>amount changed</dt><dd>1</dd>" in page
    assert rows[1]["household_id"] in page
    assert " added" in page or " raised" in page  # the rule line that moved
