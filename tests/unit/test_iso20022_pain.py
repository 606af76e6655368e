"""pain.001 out and pain.002 in: every file we write validates against the ISO
XSD, totals are exact, and each status level drives the right PartnerStatus."""
from __future__ import annotations

import io
import re
from dataclasses import replace
from datetime import UTC, date, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connectors.base import PartnerStatus
from connectors.iso20022.pain001 import (
    Debtor,
    InitiationError,
    InitiationHeader,
    InitiationSummary,
    read_pain001,
    write_pain001,
)
from connectors.iso20022.pain002 import (
    ISO_STATUSES,
    PaymentInformationStatus,
    StatusReport,
    TransactionStatus,
    partner_status,
    read_pain002,
    write_pain002,
)
from disbursement.iso20022 import schemas
from disbursement.iso20022.xml import PAIN_001, PAIN_002, MessageError
from tests.support.iso20022 import batches, rib, transfer

HEADER = InitiationHeader("MSG-2024-05-0001", "BATCH-17-BANKA",
                          datetime(2024, 5, 1, 9, 30, tzinfo=UTC),
                          date(2024, 5, 2), "Programme ASD",
                          Debtor("Tresorerie ASD", rib("011", "780")))


def _pain001(transfers, header=HEADER) -> bytes:
    out = io.BytesIO()
    write_pain001(out, header, transfers)
    return out.getvalue()


@settings(max_examples=40, deadline=None)
@given(batches())
def test_a_generated_pain001_validates_and_its_totals_are_exact(transfers) -> None:
    data = _pain001(transfers)
    assert schemas.validate(io.BytesIO(data)) == PAIN_001
    summary = InitiationSummary()
    read = list(read_pain001(io.BytesIO(data), summary))
    assert summary.declared_count == len(transfers)
    assert summary.declared_total_centimes == sum(t.amount_centimes for t in transfers)
    assert [(r.reference, r.amount_centimes, r.currency, r.creditor_account) for r in read] == \
        [(t.reference, t.amount_centimes, t.currency, t.account) for t in transfers]


def test_pain001_carries_reference_rib_and_bank_code_of_each_transfer() -> None:
    one = transfer("DABCDEFGHJKMNP7", 123_456, account=rib("190", "810"))
    text = _pain001([one]).decode()
    assert "<EndToEndId>DABCDEFGHJKMNP7</EndToEndId>" in text
    assert '<InstdAmt Ccy="MAD">1234.56</InstdAmt>' in text
    assert f"<Othr><Id>{one.account}</Id>" in text
    assert "<MmbId>190</MmbId>" in text
    assert "<PmtMtd>TRF</PmtMtd>" in text and "<CtrlSum>1234.56</CtrlSum>" in text


@pytest.mark.parametrize("account",
                         ["007780000123456789012300", "12345", None, "00778000012345678901239X"])
def test_an_invalid_rib_is_refused_naming_the_reference_before_anything_is_written(account) -> None:
    good = transfer()
    bad = replace(good, reference="DBADRIB00000001", account=account)
    out = io.BytesIO()
    with pytest.raises(InitiationError, match="transfer DBADRIB00000001: creditor account"):
        write_pain001(out, HEADER, [good, bad])
    assert out.getvalue() == b""


@pytest.mark.parametrize(("change", "message"), [
    ({"amount_centimes": 0}, "is not a positive number of centimes"),
    ({"currency": "EUR"}, "one file carries one currency"),
    ({"beneficiary_name": "  "}, "beneficiary name is empty"),
    ({"beneficiary_name": "A\x00B"}, "control character"),
])
def test_a_transfer_that_cannot_go_into_pain001_is_named(change, message) -> None:
    good = transfer()
    bad = replace(good, reference="DWRONG000000001", **change)
    with pytest.raises(InitiationError, match=f"transfer DWRONG000000001: .*{message}"):
        write_pain001(io.BytesIO(), HEADER, [good, bad])


def test_a_reference_twice_in_one_batch_is_refused() -> None:
    twin = transfer("DTWIN0000000001")
    with pytest.raises(InitiationError, match="DTWIN0000000001: appears twice"):
        write_pain001(io.BytesIO(), HEADER, [twin, twin])


def test_reading_a_pain001_whose_ctrlsum_disagrees_names_it() -> None:
    data = _pain001([transfer(amount_centimes=100), transfer(amount_centimes=250)])
    data = data.replace(b"<CtrlSum>3.50</CtrlSum>", b"<CtrlSum>3.51</CtrlSum>", 1)
    with pytest.raises(MessageError,
                       match=r"GrpHdr/CtrlSum: declares 3.51, the transactions add up to 3.50"):
        list(read_pain001(io.BytesIO(data), InitiationSummary()))


# --- pain.002 ---------------------------------------------------------------

def _report(**kwargs) -> bytes:
    out = io.BytesIO()
    write_pain002(out,
                  StatusReport("STS-1", datetime(2024, 5, 2, 8, 0, tzinfo=UTC), "MSG-1", **kwargs))
    data = out.getvalue()
    assert schemas.validate(io.BytesIO(data)) == PAIN_002
    return data


def _statuses(data: bytes) -> dict[str | None, tuple[PartnerStatus | None, str | None]]:
    return {r.reference: (r.partner_status, r.reason_code) for r in read_pain002(io.BytesIO(data))}


def test_transaction_level_statuses_drive_each_reference() -> None:
    data = _report(group_status="PART",
                   payment_informations=[PaymentInformationStatus("B1", transactions=[
        TransactionStatus("D1", "ACSC"), TransactionStatus("D2", "RJCT", "AC01"),
        TransactionStatus("D3", "RJCT", "AC04"), TransactionStatus("D4", "RJCT", "AM04"),
        TransactionStatus("D5", "RJCT", "BE01"), TransactionStatus("D6", "PDNG"),
        TransactionStatus("D7", "CANC"), TransactionStatus("D8", "ACCC")])])
    assert _statuses(data) == {
        "D1": (PartnerStatus.PAID, None), "D2": (PartnerStatus.REJECTED, "AC01"),
        "D3": (PartnerStatus.REJECTED, "AC04"), "D4": (PartnerStatus.REJECTED, "AM04"),
        "D5": (PartnerStatus.REJECTED, "BE01"), "D6": (PartnerStatus.RECEIVED, None),
        "D7": (PartnerStatus.CANCELLED, None), "D8": (PartnerStatus.PAID, None)}


def test_a_group_rejection_applies_to_every_transaction_without_its_own_status() -> None:
    data = _report(group_status="RJCT", group_reason_code="AM04", payment_informations=[
        PaymentInformationStatus("B1", transactions=[TransactionStatus("D1", None),
                                                     TransactionStatus("D2", None)])])
    records = list(read_pain002(io.BytesIO(data)))
    assert [(r.reference, r.partner_status, r.reason_code, r.level) for r in records] == [
        ("D1", PartnerStatus.REJECTED, "AM04", "group"),
        ("D2", PartnerStatus.REJECTED, "AM04", "group")]
    assert records[0].reason_text == "insufficient funds"
    update = records[0].as_update()
    assert update is not None and update.status == PartnerStatus.REJECTED
    assert "AM04" in (update.reason or "")


def test_a_payment_information_status_applies_to_its_transactions_and_theirs_override_it() -> None:
    data = _report(group_status="PART", payment_informations=[
        PaymentInformationStatus("B1", "ACSC", transactions=[TransactionStatus("D1", None),
                                                             TransactionStatus("D2", "RJCT", "AC04",
                                                                               "compte clos")]),
        PaymentInformationStatus("B2", "RJCT", "BE01",
                                 transactions=[TransactionStatus("D3", None)])])
    records = {r.reference: r for r in read_pain002(io.BytesIO(data))}
    assert records["D1"].partner_status == PartnerStatus.PAID
    assert records["D1"].level == "payment_information"
    assert (records["D2"].partner_status,
            records["D2"].reason_text) == (PartnerStatus.REJECTED, "compte clos")
    assert (records["D3"].partner_status, records["D3"].reason_code,
            records["D3"].original_pmt_inf_id) == \
        (PartnerStatus.REJECTED, "BE01", "B2")


def test_a_group_status_with_no_transaction_listed_concerns_the_whole_message() -> None:
    records = list(read_pain002(io.BytesIO(_report(group_status="RJCT", group_reason_code="FF01"))))
    assert len(records) == 1
    record = records[0]
    assert (record.reference, record.partner_status, record.original_msg_id, record.level) == \
        (None, PartnerStatus.REJECTED, "MSG-1", "group")
    assert record.as_update() is None


def test_every_brief_status_maps_to_our_vocabulary() -> None:
    expected = {**dict.fromkeys(["ACTC", "ACCP", "ACSP", "ACWC", "PDNG", "RCVD"],
                                PartnerStatus.RECEIVED),
                "ACSC": PartnerStatus.PAID, "ACCC": PartnerStatus.PAID,
                "RJCT": PartnerStatus.REJECTED,
                "CANC": PartnerStatus.CANCELLED}
    assert {code: partner_status(code) for code in expected} == expected
    assert partner_status("PART") is None
    assert set(expected) <= set(ISO_STATUSES)


_codes = st.sampled_from(sorted(ISO_STATUSES))
_maybe_codes = st.none() | _codes


@settings(max_examples=40, deadline=None)
@given(st.data())
def test_any_generated_pain002_validates_and_each_reference_gets_the_nearest_status(data) -> None:
    group = data.draw(_codes)
    pmts = []
    expected = {}
    for p in range(data.draw(st.integers(1, 3))):
        pmt_status = data.draw(_maybe_codes)
        txs = [TransactionStatus(f"D{p}X{i}", data.draw(_maybe_codes))
               for i in range(data.draw(st.integers(1, 6)))]
        pmts.append(PaymentInformationStatus(f"B{p}", pmt_status, transactions=txs))
        expected.update({t.reference: partner_status(t.iso_status or pmt_status
                                                     or group) for t in txs})
    assert {r.reference: r.partner_status for r in read_pain002(io.BytesIO(
        _report(group_status=group, payment_informations=pmts)))} == expected


def test_a_transaction_with_no_status_at_any_level_is_named() -> None:
    data = _report(payment_informations=[
        PaymentInformationStatus("B1", transactions=[TransactionStatus("D1", None)])])
    with pytest.raises(MessageError,
                       match=r"OrgnlPmtInfAndSts\[1\]/TxInfAndSts\[1\]/TxSts: missing"):
        list(read_pain002(io.BytesIO(data)))


def test_a_pain001_given_as_a_status_report_is_refused_naming_both_messages() -> None:
    with pytest.raises(MessageError,
                       match=re.escape("message pain.001.001.10, expected pain.002.001.11")):
        list(read_pain002(io.BytesIO(_pain001([transfer()]))))


def test_a_bad_status_code_is_named() -> None:
    data = _report(group_status="ACSC").replace(b"<GrpSts>ACSC</GrpSts>", b"<GrpSts>paid</GrpSts>")
    with pytest.raises(MessageError,
                       match=r'OrgnlGrpInfAndSts\[1\]/GrpSts: "paid" is not an ISO status code'):
        list(read_pain002(io.BytesIO(data)))
