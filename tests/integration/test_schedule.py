"""The embedded mode's schedule, on the real in-process queue and SQLite: the
first tick of a scheduler catches up (every periodic job, and the expiry whose
day has no recorded run); the next tick enqueues only what is due."""
from __future__ import annotations

from datetime import UTC, datetime

import pytest

from disbursement.jobs.scheduler import EmbeddedScheduler, latest_due
from disbursement.services.ports import JobName

pytestmark = pytest.mark.integration


def test_a_first_tick_catches_up_and_the_next_waits(sqlite_svc):
    # No SFTP secrets here: the file partners' collection is turned off (0).
    svc = sqlite_svc.with_overrides(collect_files_every_seconds=0)
    scheduler = EmbeddedScheduler(svc)
    first = {job.name for job in scheduler.timetable.tick()}
    assert first == {JobName.SWEEP_OUTBOX, JobName.QUERY_IN_DOUBT, JobName.RUN_EXPIRY}
    svc.queue.drain(timeout_seconds=60)
    assert svc.queue.failures == []
    assert scheduler.timetable.tick() == []
    assert 0 < scheduler.timetable.sleep_seconds() <= svc.settings.scheduler_lease_seconds


def test_the_daily_expiry_is_due_at_its_time():
    at = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
    due = latest_due("0 2 * * *", at)
    assert due <= at and (at - due).total_seconds() < 24 * 3600
