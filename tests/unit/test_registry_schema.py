"""Row validation: every rule with the exact message the agent will read."""
from __future__ import annotations

import io
from decimal import Decimal
from types import MappingProxyType

import pytest
from hypothesis import given
from hypothesis import strategies as st

from disbursement.configuration.errors import ConfigError
from disbursement.configuration.regions import load_regions
from disbursement.domain.rib import is_valid_rib, rib_key
from disbursement.services.registry.reader import RawRowError
from disbursement.services.registry.schema import (
    COLUMNS,
    ERROR_REPORT_HEADER,
    MOBILE_FORMS,
    ROW_FIELD,
    Channel,
    HouseholdSchema,
    Region,
    RowError,
    RowOk,
    format_error,
    validate_row,
    validate_rows,
    write_error_report,
)

REGIONS = {
    "02": Region("02", "Oriental", "الشرق", 400,
                 MappingProxyType({"021": "Oujda-Angad", "022": "Nador"})),
    "06": Region("06", "Casablanca-Settat", "الدار البيضاء - سطات", 600,
                 MappingProxyType({"061": "Casablanca", "068": "Settat"})),
}
GOOD_RIB = "007780" + "0001234567890123"
GOOD_RIB += rib_key(GOOD_RIB)


def a_row(**overrides: object) -> dict[str, object]:
    row: dict[str, object] = {
        "household_id": "RSU-00000001", "cin": "AB123456", "head_name": "Fatima El Amrani",
        "phone": "0612345678", "region_code": "06", "province_code": "061", "commune_code": "61001",
        "score": "9.5", "children_0_5": "1", "children_schooled_6_20": "2",
        "children_unschooled_6_20": "0", "disabled_children": "0", "orphan": "0", "flat_rate": "0",
        "channel": "cash", "partner_code": "", "account": "", "wallet_phone": "", "wallet_tier": "",
    }
    row.update(overrides)
    return row


def errors_of(**overrides: object) -> list[str]:
    outcome = validate_row(HouseholdSchema(REGIONS), 7, a_row(**overrides))
    assert isinstance(outcome, RowError), outcome
    return [format_error(field, message) for field, message in outcome.errors]


def record_of(**overrides: object):
    outcome = validate_row(HouseholdSchema(REGIONS), 7, a_row(**overrides))
    assert isinstance(outcome, RowOk), outcome
    return outcome.record


def test_a_valid_row_becomes_a_typed_record() -> None:
    record = record_of(cin=" k98765 ", head_name="  محمد   العلوي ",
                       orphan="Yes", flat_rate="false",
                       channel="Wallet", wallet_phone="+212 7 12 34 56 78", partner_code="cashplus")
    assert record.cin == "K98765"
    assert record.head_name == "محمد العلوي"
    assert record.phone == "+212612345678"
    assert record.score_micro == 9_500_000
    assert (record.children_0_5, record.children_schooled_6_20,
            record.children_unschooled_6_20) == (1, 2, 0)
    assert record.children == 3
    assert record.orphan is True and record.flat_rate is False
    assert record.channel is Channel.WALLET and record.wallet_phone == "+212712345678"
    assert record.partner_code == "CASHPLUS"
    assert record.account is None


def test_optional_fields_may_be_empty_or_absent() -> None:
    row = a_row(phone="")
    for optional in ("partner_code", "account", "wallet_phone"):
        del row[optional]
    outcome = validate_row(HouseholdSchema(REGIONS), 2, row)
    assert isinstance(outcome, RowOk)
    assert outcome.record.phone is None and outcome.record.partner_code is None


def test_a_bank_household_keeps_its_rib_without_spaces() -> None:
    spaced = f"{GOOD_RIB[:3]} {GOOD_RIB[3:6]} {GOOD_RIB[6:22]} {GOOD_RIB[22:]}"
    assert record_of(channel="bank", account=spaced).account == GOOD_RIB


@pytest.mark.parametrize(("overrides", "message"), [
    ({"household_id": "RSU 1"},
     'household_id: "RSU 1" is not a household id (1-32 letters, digits or "-")'),
    ({"household_id": "X" * 33},
     'household_id: "' + "X" * 33 + '" is not a household id (1-32 letters, digits or "-")'),
    ({"cin": "12AB"}, 'cin: "12AB" is not a national ID card number (1-2 letters then 1-6 digits)'),
    ({"cin": "ABC123"},
     'cin: "ABC123" is not a national ID card number (1-2 letters then 1-6 digits)'),
    ({"cin": "A1234567"},
     'cin: "A1234567" is not a national ID card number (1-2 letters then 1-6 digits)'),
    ({"cin": "A١٢٣"}, 'cin: "A١٢٣" is not a national ID card number (1-2 letters then 1-6 digits)'),
    ({"head_name": "x" * 121}, "head_name: must be at most 120 characters, got 121"),
    ({"head_name": "1234"}, 'head_name: "1234" contains no letter'),
    ({"head_name": "Ali\x00"}, 'head_name: "Ali\\u0000" contains a control character'),
    ({"phone": "0512345678"}, 'phone: "0512345678" is not a Moroccan mobile number '
                              + MOBILE_FORMS),
    ({"phone": "061234567"}, 'phone: "061234567" is not a Moroccan mobile number '
                             + MOBILE_FORMS),
    # 06/07 and 8 digits, but outside the ranges given to mobiles: the wallet refuses them.
    ({"phone": "0790123456"}, 'phone: "0790123456" is not a Moroccan mobile number '
                              + MOBILE_FORMS),
    ({"phone": "+212 683 123456"}, 'phone: "+212 683 123456" is not a Moroccan mobile number '
                                   + MOBILE_FORMS),
    ({"phone": "06١٢٣٤٥٦٧٨"}, 'phone: "06١٢٣٤٥٦٧٨" is not a Moroccan mobile number '
                              + MOBILE_FORMS),
    ({"region_code": "13"}, 'region_code: unknown region "13"'),
    ({"province_code": "61"}, 'province_code: "61" is not a province code (3 digits)'),
    ({"province_code": "021"},
     'province_code: province "021" is not in region "06" (Casablanca-Settat)'),
    ({"commune_code": "12a"}, 'commune_code: "12a" is not a commune code (1-10 digits)'),
    ({"commune_code": "12345678901"},
     'commune_code: "12345678901" is not a commune code (1-10 digits)'),
    ({"score": "abc"}, 'score: "abc" is not a decimal number'),
    ({"score": "9,5"}, 'score: "9,5" is not a decimal number (use "." as the decimal separator)'),
    ({"score": "1e1"}, 'score: "1e1" is not a decimal number'),
    ({"score": "9.1234567"}, 'score: "9.1234567" has more than 6 decimals'),
    ({"score": "100"}, 'score: "100" is out of range (0 <= score < 100)'),
    ({"score": "-0.5"}, 'score: "-0.5" is out of range (0 <= score < 100)'),
    ({"children_0_5": "-1"}, 'children_0_5: must be a non-negative integer, got "-1"'),
    ({"children_schooled_6_20": "2.0"},
     'children_schooled_6_20: must be a non-negative integer, got "2.0"'),
    ({"children_unschooled_6_20": "31"}, 'children_unschooled_6_20: must be at most 30, got "31"'),
    ({"disabled_children": "4"}, "disabled_children: 4 exceeds the number of children (3)"),
    ({"orphan": "maybe"}, 'orphan: must be one of 0/1/true/false/yes/no, got "maybe"'),
    ({"flat_rate": "2"}, 'flat_rate: must be one of 0/1/true/false/yes/no, got "2"'),
    ({"channel": "mobile"}, 'channel: must be one of cash, wallet, bank, got "mobile"'),
    ({"partner_code": "ba rid"}, 'partner_code: "ba rid" is not a partner code '
                                 '(2-16 letters, digits or "_", starting with a letter)'),
    ({"channel": "bank"}, "account: is required when channel is bank"),
    ({"channel": "bank", "account": "123"},
     'account: "123" is not a RIB (24 digits: bank, city, account, key)'),
    ({"channel": "bank", "account": GOOD_RIB[:22] + "00"},
     "account: RIB check digits do not match"),
    ({"channel": "wallet"}, "wallet_phone: is required when channel is wallet"),
    ({"channel": "wallet", "wallet_phone": "0812345678"},
     'wallet_phone: "0812345678" is not a Moroccan mobile number '
     + MOBILE_FORMS),
    ({"cin": ""}, "cin: is required"),
    ({"nickname": "Fafa"}, 'nickname: unknown column "nickname"'),
])
def test_each_rule_refuses_with_an_exact_message(overrides: dict[str, object],
                                                 message: str) -> None:
    assert errors_of(**overrides) == [message]


def test_a_missing_column_is_required() -> None:
    row = a_row()
    del row["score"]
    outcome = validate_row(HouseholdSchema(REGIONS), 3, row)
    assert isinstance(outcome, RowError)
    assert outcome.errors == [("score", "is required")]


def test_every_problem_of_a_row_is_reported_in_column_order() -> None:
    assert errors_of(zzz="1", cin="12AB", children_0_5="-1", region_code="13", channel="bank") == [
        'cin: "12AB" is not a national ID card number (1-2 letters then 1-6 digits)',
        'region_code: unknown region "13"',
        'children_0_5: must be a non-negative integer, got "-1"',
        "account: is required when channel is bank",
        'zzz: unknown column "zzz"',
    ]


def test_the_error_keeps_the_household_id_only_when_it_is_valid() -> None:
    schema = HouseholdSchema(REGIONS)
    assert validate_row(schema, 4, a_row(cin="?")).household_id == "RSU-00000001"
    assert validate_row(schema, 4, a_row(household_id="bad id")).household_id is None


def test_json_typed_values_are_accepted() -> None:
    record = record_of(score=Decimal("12.25"), children_0_5=2, orphan=True,
                       flat_rate=0, commune_code=61001)
    assert (record.score_micro, record.children_0_5, record.orphan,
            record.flat_rate) == (12_250_000, 2, True, False)
    assert record.commune_code == "61001"


def test_json_values_of_the_wrong_type_are_refused() -> None:
    assert errors_of(children_0_5=True, head_name=["a"], orphan=None) == [
        'head_name: must be text, got a JSON array',
        "children_0_5: must be a non-negative integer, got true",
        "orphan: is required",
    ]


def test_raw_row_errors_pass_through_as_row_errors() -> None:
    outcomes = list(
        validate_rows([(5, RawRowError("is not valid JSON: Expecting value (column 1)"))], REGIONS))
    assert outcomes == [RowError(5, None,
                                 [(ROW_FIELD, "is not valid JSON: Expecting value (column 1)")])]


def test_a_repeated_household_id_is_refused_with_its_first_line() -> None:
    rows = [(2, a_row()), (3, a_row(household_id="RSU-2")), (4, a_row()), (9, a_row(cin="12AB"))]
    outcomes = list(validate_rows(rows, REGIONS))
    assert [type(outcome) for outcome in outcomes] == [RowOk, RowOk, RowError, RowError]
    assert outcomes[2] == RowError(4, "RSU-00000001", [
        ("household_id", 'duplicate household id "RSU-00000001", first seen on line 2')])
    assert outcomes[3].errors[0] == ("household_id",
                                     'duplicate household id "RSU-00000001", first seen on line 2')
    assert outcomes[3].errors[1][0] == "cin"


def test_an_invalid_first_row_still_counts_for_duplicates() -> None:
    rows = [(2, a_row(cin="12AB")), (3, a_row())]
    outcomes = list(validate_rows(rows, REGIONS))
    assert outcomes[1].errors == [("household_id",
                                   'duplicate household id "RSU-00000001", first seen on line 2')]


def test_the_error_report_has_one_line_per_field_error() -> None:
    rows = [(2, a_row()), (3, a_row(household_id="RSU-3", cin="12AB", score="100")),
            (4, RawRowError("broken"))]
    stream = io.StringIO()
    refused = write_error_report(validate_rows(rows, REGIONS), stream)
    assert refused == 2
    assert stream.getvalue().splitlines() == [
        ",".join(ERROR_REPORT_HEADER),
        '3,RSU-3,cin,"""12AB"" is not a national ID card number (1-2 letters then 1-6 digits)"',
        '3,RSU-3,score,"""100"" is out of range (0 <= score < 100)"',
        "4,,_row,broken",
    ]


def test_the_error_report_defuses_spreadsheet_formulas() -> None:
    stream = io.StringIO()
    write_error_report(validate_rows([(2, a_row(**{"=HYPERLINK(1)": "x"}))], REGIONS), stream)
    assert stream.getvalue().splitlines()[1] == (
        "2,RSU-00000001,'=HYPERLINK(1),\"unknown column \"\"=HYPERLINK(1)\"\"\"")


def test_columns_are_the_documented_ones() -> None:
    assert set(a_row()) == set(COLUMNS)


# --- regions.toml --------------------------------------------------------------

def test_the_shipped_regions_are_consistent() -> None:
    regions = load_regions()
    assert sorted(regions) == [f"{code:02d}" for code in range(1, 13)]
    assert sum(region.population_permille for region in regions.values()) == 1000
    assert regions["06"].name_fr == "Casablanca-Settat"
    assert regions["12"].name_ar == "الداخلة - وادي الذهب"
    provinces = [province for region in regions.values() for province in region.provinces]
    assert provinces and len(provinces) == len(set(provinces))
    assert all(len(province) == 3 and province.isdigit() for province in provinces)


def _regions_file(tmp_path, body: str):
    path = tmp_path / "regions.toml"
    path.write_text(body, encoding="utf-8")
    return path


def test_regions_must_add_up_to_one_thousand_per_mille(tmp_path) -> None:
    path = _regions_file(tmp_path, '[regions."01"]\nname_fr = "A"\nname_ar = "ا"\n'
                                   'population_permille = 999\nprovinces = { "011" = "X" }\n')
    with pytest.raises(ConfigError, match="add up to 999 per mille, not 1000"):
        load_regions(path)


def test_a_province_may_belong_to_one_region_only(tmp_path) -> None:
    body = "".join(f'[regions."0{n}"]\nname_fr = "R"\nname_ar = "ر"\npopulation_permille = 500\n'
                   f'provinces = {{ "011" = "X" }}\n' for n in (1, 2))
    with pytest.raises(ConfigError, match="province '011' is listed in regions '01' and '02'"):
        load_regions(_regions_file(tmp_path, body))


# --- properties ----------------------------------------------------------------

@given(st.integers(min_value=0, max_value=99_999_999), st.booleans())
def test_score_strings_convert_to_exact_micro_units(micro: int, strip_zeros: bool) -> None:
    units, fraction = divmod(micro, 1_000_000)
    text = f"{units}.{fraction:06d}"
    if strip_zeros:
        text = text.rstrip("0").rstrip(".")
    assert record_of(score=text).score_micro == micro


@given(st.text(alphabet="0123456789", min_size=22, max_size=22))
def test_a_generated_rib_key_always_checks_and_a_wrong_one_never(body: str) -> None:
    key = rib_key(body)
    assert len(key) == 2 and is_valid_rib(body + key)
    wrong = f"{(int(key) + 1) % 100:02d}"
    assert not is_valid_rib(body + wrong)
