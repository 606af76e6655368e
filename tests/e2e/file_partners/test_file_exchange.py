"""The file-exchange partner over a real SFTP server in its own process: chunks
go out as instruction files, status files come back and drive transfers; bad
files (truncated, trailer disagreeing, checksum mismatch, delivered twice) are
detected, reported, and change nothing."""
from __future__ import annotations

import base64
import os
import subprocess
import sys

import pytest
from sqlalchemy import select

from connectors.base import PartnerStatus, RetryableError
from disbursement.bootstrap import Services
from disbursement.db.models import OutboxItem, Transfer, TransferEvent
from disbursement.services.dispatch import chunks as dispatch
from disbursement.services.dispatch import file_collection
from tests.support.file_partners import (
    plan_and_release,
    pointed_at,
    released,
    simulator,
    snapshot,
    statuses,
)

pytestmark = pytest.mark.e2e

PARTNER = "DAMANE"
HOUSEHOLDS = 80


def _released(file_svc, officers, households_csv, sim) -> tuple[Services, int]:
    """DAMANE's batch released and dispatched; the partner has picked up the file."""
    return released(file_svc, officers, households_csv(HOUSEHOLDS), sim, PARTNER,
                    "the partner picks up the file")


def test_a_chunk_over_sftp_ends_in_the_partners_final_states(file_svc, officers, households_csv,
                                                              tmp_path):
    with simulator("sftp", PARTNER, tmp_path, "--reject-rate", "0.25", "--seed", "3") as sim:
        svc, batch_id = _released(file_svc, officers, households_csv, sim)
        received = file_collection.collect(svc, PARTNER).as_dict()
        assert received["accepted"] == 1 and received["applied"] == 0  # acknowledgements only

        sim.advance()
        report = file_collection.collect(svc, PARTNER).as_dict()

        assert report["accepted"] == 2 and report["rejected"] == 0
        partner_says = sim.state()["statuses"]
        ours = statuses(svc, batch_id)
        assert {ref: status for ref, (status, _) in ours.items()} == partner_says
        assert {s for s, _ in ours.values()} == {"paid", "rejected"}
        assert all(reason.startswith("R0") for status, reason in ours.values()
                   if status == "rejected")
        before = snapshot(svc)
        again = file_collection.collect(svc, PARTNER).as_dict()
        assert again["files"] == [] and snapshot(svc) == before


@pytest.mark.parametrize("fault, problem", [
    ("truncate_next_files", "truncated: no TRAILER line"),
    ("trailer_mismatch_next_files", "trailer says"),
    ("checksum_mismatch_next_files", "checksum mismatch"),
])
def test_a_bad_status_file_is_reported_and_changes_nothing(fault, problem, file_svc, officers,
                                                          households_csv, tmp_path):
    with simulator("sftp", PARTNER, tmp_path) as sim:
        svc, batch_id = _released(file_svc, officers, households_csv, sim)
        file_collection.collect(svc, PARTNER)
        before = snapshot(svc)

        sim.faults(**{fault: 2})          # both files of the next advance
        sim.advance()
        report = file_collection.collect(svc, PARTNER).as_dict()

        assert [f["status"] for f in report["files"]] == ["rejected", "rejected"]
        assert all(problem in f["error"] for f in report["files"])
        assert snapshot(svc) == before
        refused = file_collection.list_files(svc, PARTNER, rejected_only=True)
        assert [r["name"] for r in refused] == [f["name"] for f in report["files"]]
        assert {s for s, _ in statuses(svc, batch_id).values()} == {"sent"}


def test_files_list_rejected_names_the_problem_and_the_line(file_svc, officers, households_csv,
                                                          tmp_path):
    with simulator("sftp", PARTNER, tmp_path) as sim:
        svc, _ = _released(file_svc, officers, households_csv, sim)
        sim.faults(trailer_mismatch_next_files=1)
        sim.advance()
        file_collection.collect(svc, PARTNER)
        env = {**os.environ, "DATABASE_URL": svc.settings.database_url,
               "DISBURSE_CONFIG_DIR": str(svc.settings.config_dir),
               "DISBURSE_VAR_DIR": str(tmp_path),
               "DISBURSE_DATA_KEY": base64.b64encode(svc.settings.data_key).decode()}
        env.pop("REDIS_URL", None)
        listed = subprocess.run([sys.executable, "-m", "disbursement.cli", "files", "list",
                                 "--rejected"], env=env, capture_output=True, text=True,
                                timeout=60, check=True).stdout

    assert "STATUS-000002.csv" in listed and "rejected" in listed
    assert "line " in listed and "trailer says" in listed
    assert "STATUS-000003.csv" not in listed      # the good file of the same advance


def test_a_status_file_delivered_twice_is_refused_and_pays_nobody_twice(file_svc, officers,
                                                                        households_csv, tmp_path):
    with simulator("sftp", PARTNER, tmp_path, "--duplicate-status-files") as sim:
        svc, batch_id = _released(file_svc, officers, households_csv, sim)
        sim.advance()
        report = file_collection.collect(svc, PARTNER).as_dict()

    by_status = [f["status"] for f in report["files"]]
    assert by_status.count("accepted") == by_status.count("rejected") == 3
    twins = [f for f in report["files"] if f["status"] == "rejected"]
    assert all("delivered twice" in f["error"] and f["applied"] == 0 for f in twins)
    assert {s for s, _ in statuses(svc, batch_id).values()} == {"paid"}
    with svc.uow() as session:
        paid_events = session.execute(
            select(TransferEvent.transfer_id).where(
                TransferEvent.to_status == "paid")).scalars().all()
    assert len(paid_events) == len(set(paid_events)) == len(statuses(svc, batch_id))


def test_out_of_order_status_files_end_paid_with_the_late_available_stale(
        file_svc, officers, households_csv, tmp_path):
    with simulator("sftp", PARTNER, tmp_path, "--out-of-order-status-files") as sim:
        svc, batch_id = _released(file_svc, officers, households_csv, sim)
        file_collection.collect(svc, PARTNER)
        sim.advance()
        report = file_collection.collect(svc, PARTNER).as_dict()

    paid_file, available_file = report["files"]
    assert paid_file["applied"] == available_file["stale"] == len(statuses(svc, batch_id))
    assert {s for s, _ in statuses(svc, batch_id).values()} == {"paid"}


def test_status_and_cancel_are_answered_by_request_files(file_svc, officers, households_csv,
                                                          tmp_path):
    with simulator("sftp", PARTNER, tmp_path) as sim:
        svc, batch_id = _released(file_svc, officers, households_csv, sim)
        first, second = sorted(statuses(svc, batch_id))[:2]
        connector = svc.connector(PARTNER)
        try:
            assert connector.cancel(first) == PartnerStatus.CANCELLED
            assert connector.status([first, second, "D00000000000000"]) == {
                first: PartnerStatus.CANCELLED, second: PartnerStatus.RECEIVED,
                "D00000000000000": PartnerStatus.NOT_FOUND}
        finally:
            connector.close()
        sim.advance()
        assert sim.state()["statuses"][first] == "cancelled"     # never paid after cancelling


def test_refused_connections_leave_the_chunk_queued_until_the_partner_is_back(
        file_svc, officers, households_csv, tmp_path):
    with simulator("sftp", PARTNER, tmp_path, "--refuse-connections") as sim:
        svc = pointed_at(file_svc, [sim])
        # The in-process retries open the partner's circuit breaker; no cooldown,
        # so each call below is the breaker's probe and reaches the partner.
        svc = svc.with_overrides(breaker_cooldown_seconds=0)
        with svc.uow() as session:
            assert session.execute(select(OutboxItem)).first() is None
        batch_id = plan_and_release(svc, officers, households_csv(HOUSEHOLDS), PARTNER)
        assert {s for s, _ in statuses(svc, batch_id).values()} == {"queued"}
        with svc.uow() as session:
            item = session.execute(
                select(OutboxItem).where(OutboxItem.batch_id == batch_id)).scalar_one()
        assert item.status == "pending" and "RetryableError" in item.last_error
        with pytest.raises(RetryableError):
            dispatch.dispatch_chunk(svc, item.id)

        sim.faults(refuse_connections=False)
        dispatch.dispatch_chunk(svc, item.id)

        assert {s for s, _ in statuses(svc, batch_id).values()} == {"sent"}
        with svc.uow() as session:
            assert session.execute(
                select(Transfer).where(Transfer.status == "queued")).first() is None
