"""Re-issue by rule and the partners' rules applied at planning (issue 10, item 11),
on real PostgreSQL: which rejections may be re-issued (program config; never a
deceased, duplicate, identity or wallet-rule reason, which open an exception);
a re-issue planned like a first attempt (province, capacity, service point,
pickup date, fees on the batch); wallet households the wallet would refuse held
at planning; the registry import judging numbers as the wallet does."""
from __future__ import annotations

import csv
import dataclasses
import io
from datetime import date, timedelta

import pytest
from sqlalchemy import select, update

from disbursement.bootstrap import Services
from disbursement.db.models import Batch, Household, PaymentInstruction, Transfer, utcnow
from disbursement.services.batches import reissue
from disbursement.services.cycles import planning, service_points
from disbursement.services.cycles import review as cycle_review
from disbursement.services.registry import importing as registry
from reconciliation import exceptions
from tests.conftest import PASSWORD, create_officers
from tests.support.console import Officer, console_app
from tests.support.cycle import PERIOD, PROGRAM, write_households

pytestmark = pytest.mark.integration

CASH_06 = {"region_code": "06", "province_code": "061", "commune_code": "061001",
           "channel": "cash", "partner_code": "BARID", "account": "", "wallet_phone": "",
           "wallet_tier": ""}
NEVER = ("R03 beneficiary deceased", "R04 duplicate beneficiary",
         "MD07 end customer deceased", "RR01 identity mismatch",
         "WL04 wallet tier 1 ceiling 200.00 MAD below 900.00 MAD")


def _plan(svc: Services, tmp_path, overrides: list[dict[str, str]]):
    officers = create_officers(svc)
    path = write_households(tmp_path / "extract.csv", overrides)
    with path.open("rb") as stream:
        registry.import_households(svc, stream, path.name, officers.maker)
    return officers, planning.plan_cycle(svc, PROGRAM, PERIOD, officers.maker)


def _reject(svc: Services, household_id: str, reason: str) -> str:
    """The household's transfer rejected by its partner for `reason`; its reference."""
    with svc.uow() as session:
        reference = session.execute(
            select(Transfer.reference)
            .join(PaymentInstruction, PaymentInstruction.id == Transfer.instruction_id)
            .join(Household, Household.id == PaymentInstruction.household_pk)
            .where(Household.household_id == household_id)).scalar_one()
        session.execute(update(Transfer).where(Transfer.reference == reference)
                        .values(status="rejected", status_reason=reason))
        session.commit()
    return reference


def _household_id(n: int) -> str:
    return f"RSU-{n:08d}"


def test_deceased_duplicate_identity_and_wallet_rule_rejections_are_never_reissued(
        pg_svc, tmp_path):
    reasons = [*NEVER, "ZZ99 reason no program lists", "AC04 closed account"]
    officers, _ = _plan(pg_svc, tmp_path, [CASH_06] * len(reasons))
    refs = [_reject(pg_svc, _household_id(i + 1), reason) for i, reason in enumerate(reasons)]

    report = reissue.reissue_references(pg_svc, refs, officers.maker)

    assert [r["reference"] for r in report.reissued] == [refs[-1]]        # AC04 only
    refused = {r["reference"]: r["reason"] for r in report.refused}
    assert set(refused) == set(refs[:-1])
    for ref, reason in zip(refs, NEVER, strict=False):
        code = reason.split()[0]
        assert f"rejection reason {code} (" in refused[ref]
        assert "is never re-issued: an officer decides" in refused[ref]
    assert "rejection reason ZZ99 is not re-issued under program asd" in refused[refs[5]]
    with pg_svc.uow() as session:
        opened, _ = exceptions.list_exceptions(session, type="not_reissuable")
        attempts = session.execute(select(Transfer.reference).where(
            Transfer.attempt == 2)).scalars().all()
    assert sorted(e.reference for e in opened) == sorted(refs[:-1])
    assert sorted(e.id for e in opened) == sorted(report.exceptions_opened)
    assert {(e.status, e.amount_centimes) for e in opened} == {("open", 0)}
    deceased = next(e for e in opened if e.reference == refs[0])
    assert "R03 (beneficiary deceased)" in (deceased.detail or "")
    assert attempts == [report.reissued[0]["new_reference"]]
    assert "not_reissuable" in exceptions.known_types()

    # Asking again refuses again, and opens no second exception for the officer.
    again = reissue.reissue_references(pg_svc, refs[:2], officers.maker)
    assert (again.reissued, again.exceptions_opened) == ([], [])
    # An approver resolving the exception by a re-issue is refused the same way.
    with pytest.raises(exceptions.BadResolution, match=r"R03 \(beneficiary deceased\) is never"):
        exceptions.resolve(pg_svc, deceased.id, officers.approver, "reissue", "try again")
    with pg_svc.uow() as session:
        assert len(exceptions.list_exceptions(session, type="not_reissuable")[0]) == 6


def _points(*rows: tuple[str, str]) -> io.BytesIO:
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(service_points.COLUMNS)
    for code, commune in rows:
        writer.writerow([code, f"Agence {code}", "avenue Hassan II", commune[:2], commune[:3],
                         commune, "33.500001", "-7.600000", "mon-sun", 50, 50_000_000])
    return io.BytesIO(text.getvalue().encode())


def _cash_networks(svc: Services, **capacity: int) -> Services:
    """Only the three REST cash networks; `capacity` transfers a day where given."""
    partners = {code: dataclasses.replace(p, daily_capacity_transfers=capacity.get(code))
                for code, p in svc.partners.items() if code in ("BARID", "CASHPLUS", "WAFACASH")}
    return dataclasses.replace(svc, partners=partners)


def test_a_reissue_is_routed_like_a_first_attempt(pg_svc, tmp_path):
    # WAFACASH, region 06's default, takes 1 a day: the first plan fills its 5-day
    # window. In region 10 it serves only provinces 101 and 103.
    svc = _cash_networks(pg_svc, WAFACASH=1)
    window_days = svc.programs[PROGRAM].pickup_window_days
    guelmim_102 = {**CASH_06, "region_code": "10", "province_code": "102",
                   "commune_code": "102001"}
    officers, _ = _plan(svc, tmp_path, [{**CASH_06, "partner_code": ""}] * window_days
                        + [CASH_06, guelmim_102])
    with svc.uow() as session:
        assert [b.partner_code for b in session.execute(
            select(Batch).order_by(Batch.partner_code)).scalars()] == ["BARID", "WAFACASH"]
    service_points.import_file(svc, "CASHPLUS", _points(("CP-HOME", "061001")), officers.maker)
    in_06 = _reject(svc, _household_id(window_days + 1), "AC04 closed account")
    in_102 = _reject(svc, _household_id(window_days + 2), "AC01 invalid account")

    report = reissue.reissue_references(svc, [in_06, in_102], officers.maker)

    assert [r["reference"] for r in report.reissued] == [in_06]
    assert report.refused == [{"reference": in_102, "reason": report.refused[0]["reason"]}]
    assert "no other partner can take it in region 10, province 102 for cash" in \
        report.refused[0]["reason"]
    with svc.uow() as session:
        new = session.execute(select(Transfer).where(
            Transfer.reference == report.reissued[0]["new_reference"])).scalar_one()
        batch = session.get_one(Batch, new.batch_id)
        attempts = session.execute(select(Transfer.partner_code).where(
            Transfer.attempt == 2)).scalars().all()
    # Not WAFACASH (full on every day of the window), but the next partner
    # covering the household, at its service point.
    assert (new.partner_code, new.service_point, new.status) == \
        ("CASHPLUS", "CP-HOME", "pending_approval")
    first_day = max(date(2026, 12, 1), utcnow().date())
    window = [first_day + timedelta(days=d) for d in range(window_days)]
    assert new.pickup_from in window
    fee = svc.partners["CASHPLUS"].fee_for("cash", new.amount_centimes)[0]
    assert new.fee_centimes == fee > 0
    assert (batch.partner_code, batch.status, batch.transfer_count, batch.total_centimes,
            batch.fee_total_centimes) == ("CASHPLUS", "draft", 1, new.amount_centimes, fee)
    assert attempts == ["CASHPLUS"]          # nothing went to a partner outside province 102


def _seal_wallet_number(svc: Services, household_id: str, number: str) -> None:
    """Stand in for a household imported before the import judged numbers as
    the wallet does: its sealed wallet number is one the wallet refuses."""
    with svc.uow() as session:
        household = session.execute(select(Household).where(
            Household.household_id == household_id)).scalar_one()
        household.pii = svc.vault.seal({**svc.vault.open(household.pii), "wallet_phone": number})
        session.commit()


def test_planning_holds_wallet_transfers_the_wallet_would_refuse(pg_svc, tmp_path):
    wallet = {**CASH_06, "channel": "wallet", "partner_code": ""}
    officers = create_officers(pg_svc)
    path = write_households(tmp_path / "extract.csv", [
        {**wallet, "wallet_phone": "0612345601", "wallet_tier": "1"},   # 500 MAD floor > 200
        {**wallet, "wallet_phone": "0612345602", "wallet_tier": "2"},
        {**wallet, "wallet_phone": "0612345603", "wallet_tier": "2"},
        CASH_06])
    with path.open("rb") as stream:
        registry.import_households(pg_svc, stream, path.name, officers.maker)
    _seal_wallet_number(pg_svc, _household_id(3), "0790123456")

    result = planning.plan_cycle(pg_svc, PROGRAM, PERIOD, officers.maker)

    assert (result.instructions_created, result.held_by_wallet_rules) == (4, 2)
    with pg_svc.uow() as session:
        rows = session.execute(
            select(Household.household_id, PaymentInstruction.partner_code,
                   PaymentInstruction.route_reason, PaymentInstruction.amount_centimes)
            .join(Household, Household.id == PaymentInstruction.household_pk)
            .order_by(Household.household_id)).all()
        transfers = session.execute(select(Transfer.amount_centimes, Transfer.channel)).all()
        batch_total = sum(b.total_centimes for b in session.execute(select(Batch)).scalars())
        summary = cycle_review.summary(session, result.cycle_id, pg_svc.programs[PROGRAM])
    held = {hid: reason for hid, partner, reason, _ in rows if partner is None}
    assert set(held) == {_household_id(1), _household_id(3)}
    assert held[_household_id(1)].startswith("held by the wallet rules: WL04 wallet tier 1 "
                                             "ceiling 200.00 MAD")
    assert held[_household_id(3)] == ("held by the wallet rules: WL01 wallet number is not a "
                                      "valid Moroccan mobile number")
    # Approvers see only what can be paid: the held amounts are in no batch.
    assert sorted(channel for _, channel in transfers) == ["cash", "wallet"]
    assert batch_total == sum(amount for amount, _ in transfers)
    assert summary.held_by_wallet_rules == 2
    assert [hid for hid, _, _ in summary.held_examples] == [_household_id(1), _household_id(3)]
    # The cycle's page flags them for the officer.
    officer = Officer(console_app(pg_svc))
    officer.login("maker", PASSWORD)
    page = officer.get(f"/console/cycles/{result.cycle_id}").get_data(as_text=True)
    assert 'id="held-by-wallet-rules" class="flag">2<' in page
    assert _household_id(1) in page and "WL01 wallet number is not a valid" in page


def test_the_registry_import_refuses_numbers_the_wallet_refuses(pg_svc, tmp_path):
    officers = create_officers(pg_svc)
    wallet = {**CASH_06, "channel": "wallet", "wallet_tier": "2"}
    # 07 then 8 digits, but 079... is no mobile range: the wallet would refuse it.
    path = write_households(tmp_path / "extract.csv", [
        {**wallet, "wallet_phone": "0612345601"}, {**wallet, "wallet_phone": "0790123456"},
        {**CASH_06, "phone": "+212 683 123456"}])
    with path.open("rb") as stream:
        result = registry.import_households(pg_svc, stream, path.name, officers.maker)

    assert (result.status, result.rows_invalid, result.rows_imported) == ("rejected", 2, 0)
    with pg_svc.uow() as session:
        report = list(registry.error_report_rows(session, result.import_id))
    assert [row[:3] for row in report[1:]] == [[3, _household_id(2), "wallet_phone"],
                                               [4, _household_id(3), "phone"]]
    assert report[1][3].startswith('"0790123456" is not a Moroccan mobile number')


def test_a_failed_attempt_is_reissued_and_a_wallet_attempt_only_within_the_wallet_rules(
        pg_svc, tmp_path):
    wallet = {**CASH_06, "channel": "wallet", "wallet_tier": "2"}
    officers, _ = _plan(pg_svc, tmp_path, [CASH_06, {**wallet, "wallet_phone": "0612345601"}])
    failed = _reject(pg_svc, _household_id(1), "")
    closed = _reject(pg_svc, _household_id(2), "AC04 closed account")
    with pg_svc.uow() as session:
        session.execute(update(Transfer).where(Transfer.reference == failed)
                        .values(status="failed", status_reason=None))
        # The registry now says the wallet is tier 1: 200 MAD at most, below the 500 MAD floor.
        session.execute(update(Household).where(Household.household_id == _household_id(2))
                        .values(wallet_tier=1))
        session.commit()

    report = reissue.reissue_references(pg_svc, [failed, closed], officers.maker)

    assert [(r["reference"], r["partner"]) for r in report.reissued] == [(failed, "WAFACASH")]
    assert [r["reference"] for r in report.refused] == [closed]
    assert report.refused[0]["reason"].startswith(
        "the wallet would refuse it: WL04 wallet tier 1 ceiling 200.00 MAD")
    with pg_svc.uow() as session:
        opened, _ = exceptions.list_exceptions(session, type="not_reissuable")
    assert [e.reference for e in opened] == [closed]
