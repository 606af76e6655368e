"""Pure rules of issue 10, item 11: which rejections a re-issue may follow, and
the wallet rule as import, planning, dispatch and the wallet partner apply it
(planning accepts => dispatch accepts => the wallet takes the number)."""
from __future__ import annotations

import re
from pathlib import Path

import phonenumbers
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from phonenumbers import PhoneNumberType

from connectors.base import OutboundTransfer
from connectors.simulators.wallet import _to_book_item
from connectors.wallet import _item
from disbursement.configuration.regions import load_regions
from disbursement.configuration.wallet import load_wallet_rules
from disbursement.domain.reissue import NEVER_REISSUABLE, ReissuePolicy, reason_code
from disbursement.domain.wallet import normalise_mobile, wallet_number
from disbursement.services.registry.schema import HouseholdSchema, RowOk, validate_row

CONFIG = Path(__file__).resolve().parents[2] / "config"
WALLET = load_wallet_rules(CONFIG)
SCHEMA = HouseholdSchema(load_regions(CONFIG / "regions.toml"))
POLICY = ReissuePolicy("asd", frozenset({"AC01", "AC04", "AM04"}))


@pytest.mark.parametrize("status_reason, code", [
    ("R03 beneficiary deceased", "R03"), ("AC04 closed account", "AC04"),
    ("WL04 wallet tier 1 ceiling 200.00 MAD below 900.00 MAD", "WL04"), ("MD07", "MD07"),
    ("wallet number is not valid", None), ("", None), (None, None), ("  ", None),
    ("ac04 closed", None), ("A1 x", None), ("3D01 x", None), ("ACCOUNT closed", None)])
def test_the_reason_code_is_the_first_word_when_it_is_one(status_reason, code) -> None:
    assert reason_code(status_reason) == code


@pytest.mark.parametrize("status, reason, refused, for_officer", [
    ("rejected", "AC04 closed account", None, False),
    ("rejected", "AM04 insufficient funds", None, False),
    ("failed", None, None, False),                     # technical: the partner never took it
    ("rejected", "R03 beneficiary deceased", "R03 (beneficiary deceased) is never", True),
    ("rejected", "MD07 end customer deceased", "MD07 (beneficiary deceased) is never", True),
    ("rejected", "R04 duplicate beneficiary", "R04 (duplicate beneficiary) is never", True),
    ("rejected", "AM05 duplication", "AM05 (duplicate payment) is never", True),
    ("rejected", "RR01 identity mismatch", "RR01 (beneficiary identity mismatch) is never", True),
    ("rejected", "WL04 wallet tier 1 ceiling 200.00 MAD below 900.00 MAD",
     "WL04 (wallet rule: above the wallet tier's ceiling) is never", True),
    ("rejected", "AC06 blocked account", "AC06 is not re-issued under program asd", True),
    ("rejected", "rejected by the partner", "carries no reason code", True),
    ("rejected", None, "'no reason given' carries no reason code", True),
    ("paid", None, "transfer is paid: only rejected or failed", False),
    ("sent", "AC04 closed account", "transfer is sent: only rejected or failed", False),
])
def test_which_rejections_are_reissued(status, reason, refused, for_officer) -> None:
    refusal = POLICY.refusal(status, reason)
    if refused is None:
        assert refusal is None
    else:
        assert refusal is not None and refused in refusal.reason
        assert refusal.for_officer is for_officer


def test_a_program_cannot_open_what_is_never_reissued() -> None:
    # Even a policy built by hand listing R03 refuses it: the never-list wins.
    anything = ReissuePolicy("x", frozenset(NEVER_REISSUABLE))
    assert all(anything.refusal("rejected", f"{code} text") is not None
               for code in NEVER_REISSUABLE)


def _registry_row(phone: str) -> dict[str, str]:
    return {"household_id": "RSU-1", "cin": "BE123456", "head_name": "Fatima Zahra",
            "region_code": "06", "province_code": "061", "commune_code": "061001",
            "score": "5.1", "children_0_5": "1", "children_schooled_6_20": "0",
            "children_unschooled_6_20": "0", "disabled_children": "0", "orphan": "0",
            "flat_rate": "0", "channel": "wallet", "wallet_phone": phone}


# Typed numbers as agents type them, near misses of every kind, and noise.
PHONES = st.one_of(
    st.from_regex(r"\A(\+212|0|00212|\+212 )[5-8][0-9]{8}\Z"),
    st.from_regex(r"\A0[67]( ?[0-9]{2}){4}\Z"),
    st.from_regex(r"\A\+?[0-9 ().-]{6,16}\Z"),
    st.text(max_size=16))


@given(phone=PHONES, amount=st.integers(1, 3_000_000), tier=st.none() | st.integers(0, 4))
def test_planning_accepts_only_what_dispatch_and_the_wallet_accept(phone, amount, tier) -> None:
    imported = validate_row(SCHEMA, 2, _registry_row(phone))
    if not isinstance(imported, RowOk):
        return                                         # the import refused the row
    pii = {"phone": None, "wallet_phone": imported.record.wallet_phone}
    # Planning's judgement, which dispatch repeats as its last guard (one function) ...
    number = wallet_number(pii)
    if WALLET.refusal(amount, "MAD", number, tier) is not None:
        return                                         # held at planning: never approved
    # ... then what dispatch sends (services/dispatch/chunks.py, connectors/wallet.py) ...
    sent = _item(OutboundTransfer(
        reference="D1", amount_centimes=amount, currency="MAD", channel="wallet",
        beneficiary_name="Fatima Zahra", national_id="BE123456",
        phone=normalise_mobile(number) or number, account=None, region_code="06",
        wallet_tier=tier))
    # ... which the wallet partner takes.
    assert _to_book_item(sent) == ({"reference": "D1", "amount_centimes": amount,
                                    "currency": "MAD"}, None)


@given(phone=PHONES)
def test_the_import_accepts_a_number_exactly_when_the_wallet_does(phone) -> None:
    imported = validate_row(SCHEMA, 2, _registry_row(phone))
    assert isinstance(imported, RowOk) == (normalise_mobile(phone.strip()) is not None)


def _normalise_by_parse(phone: str) -> str | None:
    """The judge as phonenumbers states it, without normalise_mobile's shortcuts."""
    try:
        parsed = phonenumbers.parse(phone, "MA")
    except phonenumbers.NumberParseException:
        return None
    if (phonenumbers.region_code_for_number(parsed) != "MA"
            or not phonenumbers.is_valid_number(parsed)
            or phonenumbers.number_type(parsed) not in (PhoneNumberType.MOBILE,
                                                        PhoneNumberType.FIXED_LINE_OR_MOBILE)):
        return None
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


@settings(max_examples=2_000)
@given(phone=PHONES | st.from_regex(r"\A(0|\+212)[0-9]{9}\Z"))
def test_the_shortcut_judges_as_phonenumbers_does(phone) -> None:
    # Only ASCII digits and typed separators reach phonenumbers at all.
    if re.fullmatch(r"\+?[0-9 ()./-]+", phone, re.ASCII):
        assert normalise_mobile(phone) == _normalise_by_parse(phone)
    else:
        assert normalise_mobile(phone) is None
