"""Each configuration file is read by one loader, and a broken file is refused
with a message naming the file, the key and what was expected there."""
from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from disbursement.configuration import ConfigError, load_configuration
from disbursement.configuration.communes import load_communes
from disbursement.configuration.partners import load_partners
from disbursement.configuration.programs import load_programs
from disbursement.configuration.regions import load_regions
from disbursement.configuration.sms_templates import load_sms_templates
from disbursement.configuration.wallet import load_wallet_rules

SHIPPED = Path(__file__).resolve().parents[2] / "config"
CONFIG_FILES = ("partners.toml", "regions.toml", "wallet.toml", "sms_templates.toml",
                "communes.csv")


@pytest.fixture
def config(tmp_path: Path) -> Path:
    """A copy of the shipped configuration files, to break one at a time."""
    target = tmp_path / "config"
    shutil.copytree(SHIPPED / "programs", target / "programs")
    for name in CONFIG_FILES:
        shutil.copy(SHIPPED / name, target / name)
    return target


def rewrite(path: Path, old: str, new: str, count: int = 1) -> None:
    """Replaces `old` (a regular expression, which must occur) in the file."""
    text = path.read_text(encoding="utf-8")
    changed, n = re.subn(old, new, text, count=count, flags=re.MULTILINE)
    assert n, f"{old!r} not in {path.name}"
    path.write_text(changed, encoding="utf-8")


def refusal(load, *args) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        load(*args)
    return caught.value


def assert_names(error: ConfigError, file: str, key: str, expected: str) -> None:
    message = str(error)
    assert error.file.endswith(file) and file in message
    assert error.key == key and f": {key}: " in message
    assert "expected " in message and expected in error.expected and expected in message


# --- the shipped files ------------------------------------------------------------

def test_the_shipped_configuration_loads_into_typed_values() -> None:
    configuration = load_configuration(SHIPPED)

    asd = configuration.programs["asd"]
    assert (asd.reissue_on_rejection, asd.expiry_days, asd.pay_arrears) == (True, 30, True)
    assert asd.reissue_reasons == {"AC01", "AC03", "AC04", "AC06", "AG01", "AM04", "MS03"}
    bank = configuration.partners["CIHBANK"]
    assert bank.funding_account is not None
    assert bank.funding_account.rib == "230780000123450000001772"
    assert configuration.partners["BARID"].statement_sla_days == 3
    assert configuration.partners["BARID"].funding_account is None
    assert sorted(configuration.regions) == [f"{n:02d}" for n in range(1, 13)]
    assert len(configuration.communes) == 3000
    assert dict(configuration.wallet.ceilings) == {1: 20_000, 2: 500_000, 3: 2_000_000}
    assert configuration.sms_templates.languages == ("ar", "fr")


def test_a_broken_file_stops_the_whole_load(config: Path) -> None:
    rewrite(config / "wallet.toml", r"^default_tier = 1$", "default_tier = 7")

    error = refusal(load_configuration, config)

    assert_names(error, "wallet.toml", "default_tier", "one of the tiers (1, 2, 3)")


def test_a_config_error_is_a_value_error() -> None:
    assert issubclass(ConfigError, ValueError)


# --- programs ----------------------------------------------------------------------

def test_program_missing_a_key(config: Path) -> None:
    rewrite(config / "programs" / "asd.toml", r"^max_children = 6\n", "")

    error = refusal(load_programs, config)

    assert_names(error, "programs/asd.toml", "max_children", "a non-negative integer")
    assert "found nothing (missing)" in str(error)


def test_program_amount_of_the_wrong_type(config: Path) -> None:
    rewrite(config / "programs" / "asd.toml", r"^floor = 50000$", 'floor = "500 MAD"')

    error = refusal(load_programs, config)

    assert_names(error, "programs/asd.toml", "years.2024.floor", "an integer number of centimes")
    assert "'500 MAD'" in str(error)


def test_program_rank_amounts_must_be_two_integers(config: Path) -> None:
    rewrite(config / "programs" / "asd.toml", r"^unschooled = \[17500, 2400\]$",
            "unschooled = [17500]")

    error = refusal(load_programs, config)

    assert_names(error, "programs/asd.toml", "years.2025.unschooled", "two integers")


def test_program_score_threshold_with_too_many_decimals(config: Path) -> None:
    rewrite(config / "programs" / "asd.toml", r'^eligibility_score_max = .*$',
            'eligibility_score_max = "9.7430012"')

    error = refusal(load_programs, config)

    assert_names(error, "programs/asd.toml", "eligibility_score_max", "at most 6 decimals")


def test_program_flag_must_be_a_boolean(config: Path) -> None:
    rewrite(config / "programs" / "asd.toml", r"^reissue_on_rejection = true$",
            'reissue_on_rejection = "yes"')

    error = refusal(load_programs, config)

    assert_names(error, "programs/asd.toml", "reissue_on_rejection", "true or false")


@pytest.mark.parametrize("codes, expected", [
    ('["AC04", "R03"]', "R03 beneficiary deceased"),
    ('["MD07"]', "MD07 beneficiary deceased"),
    ('["R04", "BE01"]', "R04 duplicate beneficiary, BE01 beneficiary identity"),
    ('["WL04"]', "WL04 wallet rule: above the wallet tier's ceiling"),
    ('["AC04", "closed"]', "a list of rejection reason codes"),
    ('"AC04"', "a list of rejection reason codes"),
])
def test_program_reissue_reasons_never_open_what_an_officer_decides(
        config: Path, codes: str, expected: str) -> None:
    rewrite(config / "programs" / "asd.toml", r"^reissue_reasons = \[[^\]]*\]$",
            f"reissue_reasons = {codes}")

    error = refusal(load_programs, config)

    assert_names(error, "programs/asd.toml", "reissue_reasons", expected)


def test_program_that_reissues_must_list_its_reasons(config: Path) -> None:
    rewrite(config / "programs" / "asd.toml", r"^reissue_reasons = \[[^\]]*\]$", "")

    error = refusal(load_programs, config)

    assert_names(error, "programs/asd.toml", "reissue_reasons", "rejection reason codes")


def test_two_program_files_with_one_code(config: Path) -> None:
    shutil.copy(config / "programs" / "asd.toml", config / "programs" / "copy.toml")

    error = refusal(load_programs, config)

    assert_names(error, "programs/copy.toml", "code", "a code no other program file uses")


def test_program_file_that_is_not_toml(config: Path) -> None:
    rewrite(config / "programs" / "asd.toml", r"^max_children = 6$", "max_children = ")

    error = refusal(load_programs, config)

    assert_names(error, "programs/asd.toml", "(syntax)", "valid TOML")


def test_program_defaults_when_optional_keys_are_absent(config: Path) -> None:
    for key in ("reissue_on_rejection", "expiry_days", "pay_arrears", "pickup_window_days"):
        rewrite(config / "programs" / "asd.toml", rf"^{key} = .*\n", "")

    asd = load_programs(config)["asd"]

    assert (asd.reissue_on_rejection, asd.expiry_days, asd.pay_arrears,
            asd.pickup_window_days) == (False, 30, False, 1)


# --- partners ----------------------------------------------------------------------

# The line changed in partners.toml, what it becomes, the key the refusal names and what it
# says was expected; the id names the case.
PARTNER_REFUSALS = [
    pytest.param(r'^protocol = "rest"$',
                 'protocol = "ftp"',
                 "partners.BARID.protocol", "one of rest, wallet, sftp_csv, iso20022",
                 id="partner_with_an_unknown_protocol"),
    pytest.param(r"^fees\.cash = \[\[50000, 800\]",
                 'fees.cash = [[50000, "8"]',
                 "partners.BARID.fees.cash",
                 "[up_to_centimes, fee_centimes], two non-negative integers",
                 id="partner_fee_tier_of_the_wrong_type"),
    pytest.param(r'^regions = \["01", "03", "04", "06", "07", "09"\]\n',
                 "",
                 "partners.CASHPLUS.regions", "a list of strings",
                 id="partner_missing_its_regions"),
    pytest.param(r"^daily_capacity_transfers = 200000$",
                 "daily_capacity_transfers = -1",
                 "partners.WAFACASH.daily_capacity_transfers", "a non-negative integer",
                 id="partner_with_a_negative_capacity"),
    pytest.param(r'^channels = \["cash", "wallet"\]$',
                 'channels = ["cash", "pigeon"]',
                 "partners.CASHPLUS.channels", "a list of bank, cash, wallet",
                 id="partner_with_an_unknown_channel"),
    pytest.param(r'^debtor_rib = "230780000123450000001772"$',
                 'debtor_rib = "230780000123450000001773"',
                 "partners.CIHBANK.debtor_rib",
                 "a valid 24-digit RIB (RIB check digits do not match)",
                 id="bank_with_a_bad_rib"),
    pytest.param(r'^debtor_name = .*\n',
                 "",
                 "partners.CIHBANK.debtor_name", "a string",
                 id="bank_without_a_funding_account"),
    pytest.param(r'"041", "042"',
                 '"011", "042"',
                 "partners.WAFACASH.provinces", "provinces inside the partner's regions",
                 id="partner_provinces_outside_its_regions"),
]


@pytest.mark.parametrize(("old", "new", "key", "expected"), PARTNER_REFUSALS)
def test_a_broken_partner_file_is_refused_naming_the_key(config: Path, old: str, new: str,
                                                         key: str, expected: str) -> None:
    rewrite(config / "partners.toml", old, new)

    error = refusal(load_partners, config)

    assert_names(error, "partners.toml", key, expected)


# --- regions -----------------------------------------------------------------------

def test_region_share_of_the_wrong_type(config: Path) -> None:
    rewrite(config / "regions.toml", r"^population_permille = 105$", 'population_permille = "105"')

    error = refusal(load_regions, config / "regions.toml")

    assert_names(error, "regions.toml", "regions.01.population_permille",
                 "a non-negative integer")


def test_region_missing_its_arabic_name(config: Path) -> None:
    rewrite(config / "regions.toml", r'^name_ar = "الشرق"\n', "")

    error = refusal(load_regions, config / "regions.toml")

    assert_names(error, "regions.toml", "regions.02.name_ar", "a string")


def test_province_code_that_is_not_three_digits(config: Path) -> None:
    rewrite(config / "regions.toml", r'"121" = "Oued Ed-Dahab"', '"12A" = "Oued Ed-Dahab"')

    error = refusal(load_regions, config / "regions.toml")

    assert_names(error, "regions.toml", "regions.12.provinces.12A", "a three-digit province code")


# --- communes ----------------------------------------------------------------------

def test_commune_with_a_latitude_out_of_range(config: Path) -> None:
    rewrite(config / "communes.csv", r"^(011002,011,01,Tanger-Assilah commune 2),35\.343481,",
            r"\1,95.5,")

    error = refusal(load_communes, config / "communes.csv")

    assert_names(error, "communes.csv", "line 3, latitude", "decimal degrees within -90..90")
    assert "'95.5'" in str(error)


def test_communes_file_without_its_header(config: Path) -> None:
    rewrite(config / "communes.csv", r"^commune_code,", "code,")

    error = refusal(load_communes, config / "communes.csv")

    assert_names(error, "communes.csv", "line 1 (header)", "the columns commune_code")


def test_without_a_gazetteer_there_are_no_communes(tmp_path: Path) -> None:
    assert load_communes(tmp_path / "communes.csv") == {}


# --- wallet ------------------------------------------------------------------------

def test_wallet_missing_a_tier(config: Path) -> None:
    rewrite(config / "wallet.toml", r"^3 = 2000000 .*\n", "")

    error = refusal(load_wallet_rules, config)

    assert_names(error, "wallet.toml", "tiers", "tiers 1, 2, 3 exactly")


def test_wallet_ceiling_of_the_wrong_type(config: Path) -> None:
    rewrite(config / "wallet.toml", r"^2 = 500000 ", "2 = 5000.00 ")

    error = refusal(load_wallet_rules, config)

    assert_names(error, "wallet.toml", "tiers.2", "an integer number of centimes")


# --- SMS templates -----------------------------------------------------------------

def test_sms_mode_that_is_not_a_language(config: Path) -> None:
    rewrite(config / "sms_templates.toml", r'^mode = "both"$', 'mode = "en"')

    error = refusal(load_sms_templates, config)

    assert_names(error, "sms_templates.toml", "mode", "one of both, ar, fr")


def test_sms_template_with_an_unknown_placeholder(config: Path) -> None:
    rewrite(config / "sms_templates.toml", r"\{amount\} MAD", "{amont} MAD")

    error = refusal(load_sms_templates, config)

    assert_names(error, "sms_templates.toml", "templates.fr", "placeholders among {amount}")
    assert "unknown: ['amont']" in str(error)


def test_sms_template_missing_for_a_language_of_the_mode(config: Path) -> None:
    rewrite(config / "sms_templates.toml", r"^ar = .*\n", "")

    error = refusal(load_sms_templates, config)

    assert_names(error, "sms_templates.toml", "templates.ar", "a string")


def test_sms_one_language_needs_only_its_template(config: Path) -> None:
    rewrite(config / "sms_templates.toml", r'^mode = "both"$', 'mode = "fr"')
    rewrite(config / "sms_templates.toml", r"^ar = .*\n", "")

    templates = load_sms_templates(config)

    assert templates.languages == ("fr",)
    assert templates.render({"amount": "500.00", "pickup_from": "2026-06-01", "point_name": "P",
                             "point_address": "A", "code": "123456", "reference": "R"}) \
        .startswith("Aide sociale directe: 500.00 MAD")


def test_missing_file_is_named(config: Path) -> None:
    (config / "sms_templates.toml").unlink()

    error = refusal(load_sms_templates, config)

    assert_names(error, "sms_templates.toml", "(file)", "an existing file")
