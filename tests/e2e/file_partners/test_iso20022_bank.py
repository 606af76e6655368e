"""The ISO 20022 bank over a real SFTP server in its own process: a released
bank batch leaves as one pain.001 that validates against the XSD with the right
NbOfTxs, CtrlSum, EndToEndIds and RIBs; the bank's pain.002 and camt.054 drive
the transfers (ACSC or a camt.054 booking -> paid, RJCT AC04 -> rejected with
its reason); a broken report is refused and changes nothing."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from connectors.iso20022.pain001 import InitiationSummary, read_pain001
from disbursement.db.models import Household, PaymentInstruction, Transfer
from disbursement.domain.rib import is_valid_rib
from disbursement.iso20022.schemas import validate
from disbursement.services.dispatch import file_collection
from tests.support.file_partners import released, simulator, snapshot, statuses

pytestmark = pytest.mark.e2e

BANK = "CIHBANK"
HOUSEHOLDS = 150
XSD_BY_PREFIX = {"pain001": "pain.001.001.10", "pain002": "pain.002.001.11",
                 "camt054": "camt.054.001.08", "camt053": "camt.053.001.08"}


def _released(file_svc, officers, households_csv, sim):
    return released(file_svc, officers, households_csv(HOUSEHOLDS), sim, BANK,
                    "the bank takes the pain.001")


def _ribs_and_amounts(svc, batch_id) -> dict[str, tuple[str, int]]:
    with svc.uow() as session:
        rows = session.execute(select(Transfer.reference, Transfer.amount_centimes, Household.pii)
                               .join(PaymentInstruction,
                                     PaymentInstruction.id == Transfer.instruction_id)
                               .join(Household, Household.id == PaymentInstruction.household_pk)
                               .where(Transfer.batch_id == batch_id)).all()
    return {ref: (svc.vault.open(pii)["account"], amount) for ref, amount, pii in rows}


def test_a_bank_batch_leaves_as_one_valid_pain001_and_reports_drive_the_transfers(
        file_svc, officers, households_csv, tmp_path):
    with simulator("iso20022", BANK, tmp_path, "--reject-rate", "0.3", "--reject-code", "AC04",
                   "--seed", "5") as sim:
        svc, batch_id = _released(file_svc, officers, households_csv, sim)
        sim.advance()
        sim.control("POST", "/_sim/statement", {})
        report = file_collection.collect(svc, BANK).as_dict()
        bank = sim.state()

    archive = tmp_path / f"partner-{BANK}" / "archive"
    (pain001,) = archive.glob("pain001-*.xml")
    validate(pain001, "pain.001.001.10")
    summary = InitiationSummary()
    with pain001.open("rb") as stream:
        initiated = {t.reference: (t.creditor_account, t.amount_centimes)
                     for t in read_pain001(stream, summary)}
    ours = _ribs_and_amounts(svc, batch_id)
    assert initiated == ours and all(is_valid_rib(rib) for rib, _ in ours.values())
    assert summary.declared_count == len(ours)
    assert summary.declared_total_centimes == sum(amount for _, amount in ours.values())
    for produced in (tmp_path / f"partner-{BANK}" / "outbox").glob("*.xml"):
        validate(produced, XSD_BY_PREFIX[produced.name.split("-")[0]])

    final = statuses(svc, batch_id)
    expected = {"ACSC": "paid", "RJCT": "rejected"}
    assert {ref: status for ref, (status, _) in final.items()} == \
        {ref: expected[s] for ref, s in bank["statuses"].items()}
    rejected = [reason for status, reason in final.values() if status == "rejected"]
    assert rejected and all(reason.startswith("AC04") for reason in rejected)
    kinds = [(f["kind"], f["status"]) for f in report["files"]]
    assert kinds == [("pain.002", "accepted")] * 2 + [("camt.054", "accepted")]
    settlement, booking = report["files"][1], report["files"][2]
    paid = sum(1 for status, _ in final.values() if status == "paid")
    assert settlement["applied"] == len(final)          # ACSC -> paid, RJCT -> rejected
    assert booking["duplicates"] == paid and booking["applied"] == 0


def test_camt054_bookings_alone_drive_transfers_to_paid(file_svc, officers, households_csv,
                                                         tmp_path):
    with simulator("iso20022", BANK, tmp_path, "--paid-reports", "camt054") as sim:
        svc, batch_id = _released(file_svc, officers, households_csv, sim)
        sim.advance()
        report = file_collection.collect(svc, BANK).as_dict()

    booking = next(f for f in report["files"] if f["kind"] == "camt.054")
    assert booking["applied"] == len(statuses(svc, batch_id))
    assert {s for s, _ in statuses(svc, batch_id).values()} == {"paid"}


def test_a_truncated_or_twice_delivered_report_is_refused_and_changes_nothing(
        file_svc, officers, households_csv, tmp_path):
    with simulator("iso20022", BANK, tmp_path, "--duplicate-messages") as sim:
        svc, batch_id = _released(file_svc, officers, households_csv, sim)
        file_collection.collect(svc, BANK)            # the ACCP report and its twin
        before = snapshot(svc)
        sim.faults(truncate_next_files=2)             # settlement and booking (twins alike)
        sim.advance()
        report = file_collection.collect(svc, BANK).as_dict()

    assert [f["status"] for f in report["files"]] == ["rejected"] * 4
    assert all(f["error"] and f["applied"] == 0 for f in report["files"])
    assert snapshot(svc) == before
    assert {s for s, _ in statuses(svc, batch_id).values()} == {"sent"}
    refused = file_collection.list_files(svc, BANK, rejected_only=True)
    assert any("delivered twice" in r["error"] for r in refused)      # the ACCP twin
