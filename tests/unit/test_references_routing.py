"""Transfer references (short, upper-case, self-checking, unique) and the
routing rule: chosen partner if it covers, else the program default."""
from __future__ import annotations

import string
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from disbursement.configuration.partners import load_partners
from disbursement.configuration.programs import load_program
from disbursement.domain.references import is_valid_reference, new_reference
from disbursement.domain.routing import Partner, Request, Router

CONFIG = Path(__file__).resolve().parents[2] / "config"
ISO7064_ALPHABET = string.digits + string.ascii_uppercase  # MOD 37-36 works on these 36


def iso7064_mod_37_36_valid(text: str) -> bool:
    """ISO 7064 hybrid system M=36: fold each character in; the string carrying
    its check character leaves a running sum of 1."""
    modulus, product, total = 36, 36, None
    for char in text:
        total = (product + ISO7064_ALPHABET.index(char)) % modulus
        product = ((total or modulus) * 2) % (modulus + 1)
    return total == 1


REFERENCES = st.builds(lambda _: new_reference(), st.integers())


# --- references -------------------------------------------------------------------

@given(reference=REFERENCES)
def test_new_reference_fits_an_mt940_field_and_is_upper_case_alphanumeric(reference: str) -> None:
    assert len(reference) <= 16
    assert reference.isascii() and reference.isalnum()
    assert reference == reference.upper()


@given(reference=REFERENCES)
def test_new_reference_carries_a_valid_check_character(reference: str) -> None:
    assert iso7064_mod_37_36_valid(reference)
    assert is_valid_reference(reference)


@given(reference=REFERENCES, data=st.data())
def test_one_changed_character_is_detected(reference: str, data) -> None:
    position = data.draw(st.integers(0, len(reference) - 1))
    replacement = data.draw(st.sampled_from(ISO7064_ALPHABET).filter(
        lambda c: c != reference[position]))
    changed = reference[:position] + replacement + reference[position + 1:]

    assert not is_valid_reference(changed)


@given(reference=REFERENCES)
def test_lower_case_reference_is_refused(reference: str) -> None:
    assert not is_valid_reference(reference.lower())


@given(reference=REFERENCES)
def test_reference_longer_than_sixteen_characters_is_refused(reference: str) -> None:
    # A 17-character string with a correct check character: only the length
    # rule can refuse it.
    body = reference[:-1] + "0" * (17 - len(reference))
    longer = next(body + c for c in ISO7064_ALPHABET if iso7064_mod_37_36_valid(body + c))
    assert len(longer) == 17

    assert not is_valid_reference(longer)


@pytest.mark.parametrize("text", ["", "D-12345", "D 12345", "Ä12345", "D١٢٣"])
def test_text_outside_the_alphabet_is_refused(text: str) -> None:
    assert not is_valid_reference(text)


@given(text=st.text(max_size=20))
def test_validation_of_any_text_answers_without_raising(text: str) -> None:
    assert is_valid_reference(text) in (True, False)


def test_ten_thousand_references_are_all_different() -> None:
    references = [new_reference() for _ in range(10_000)]

    assert len(set(references)) == len(references)


# --- routing ------------------------------------------------------------------------

def partner(code: str, regions: set[str], channels: set[str]) -> Partner:
    return Partner(code=code, name=code.title(), protocol="rest", base_url="http://partner.invalid",
                   channels=frozenset(channels), regions=frozenset(regions))


PARTNERS = {p.code: p for p in [
    partner("ALPHA", {"01", "02"}, {"cash", "wallet"}),
    partner("BRAVO", {"01", "02", "03"}, {"cash", "bank"}),
    partner("CHARLIE", {"03", "04"}, {"cash"}),
]}
DEFAULTS = {"01": "BRAVO", "02": "BRAVO", "03": "CHARLIE", "04": "ALPHA"}


def route(partners, defaults, region: str, channel: str,
          chosen: str | None) -> tuple[str | None, str]:
    """The static rules alone: (partner, reason) from a router with no capacity,
    service points, breakers or province (services always route the whole request)."""
    decision = Router(partners, defaults).route(Request(region, "", "", channel, chosen, 1))
    return decision.partner_code, decision.reason


def test_chosen_partner_that_covers_region_and_channel_wins() -> None:
    assert route(PARTNERS, DEFAULTS, "01", "wallet", "ALPHA") == \
        ("ALPHA", "chosen partner covers the region")


def test_chosen_partner_outside_the_region_gives_way_to_the_program_default() -> None:
    assert route(PARTNERS, DEFAULTS, "03", "cash", "ALPHA") == \
        ("CHARLIE", "program default for region 03 (chosen partner does not cover the region)")


def test_chosen_partner_without_the_channel_gives_way_to_the_program_default() -> None:
    assert route(PARTNERS, DEFAULTS, "01", "bank", "ALPHA") == \
        ("BRAVO", "program default for region 01 (chosen partner does not cover the region)")


def test_unknown_chosen_partner_gives_way_to_the_program_default() -> None:
    assert route(PARTNERS, DEFAULTS, "02", "cash", "NOSUCH") == \
        ("BRAVO", "program default for region 02 (chosen partner does not cover the region)")


@pytest.mark.parametrize("chosen", [None, ""])
def test_no_chosen_partner_goes_to_the_program_default(chosen: str | None) -> None:
    assert route(PARTNERS, DEFAULTS, "03", "cash", chosen) == \
        ("CHARLIE", "program default for region 03 (no chosen partner)")


def test_default_that_does_not_cover_falls_to_the_first_partner_covering() -> None:
    # Region 04's default ALPHA is not there; CHARLIE is, for cash.
    assert route(PARTNERS, DEFAULTS, "04", "cash", None) == \
        ("CHARLIE", "first partner covering region 04 for cash")


def test_nobody_covering_gives_no_partner_and_says_why() -> None:
    assert route(PARTNERS, DEFAULTS, "04", "bank", "CHARLIE") == \
        (None, "no partner covers region 04 for bank")
    assert route(PARTNERS, DEFAULTS, "99", "cash", None) == \
        (None, "no partner covers region 99 for cash")


REAL_PARTNERS = load_partners(CONFIG)
REAL_DEFAULTS = load_program(CONFIG / "programs" / "asd.toml").default_partner_by_region
REGIONS = [f"{n:02d}" for n in range(1, 14)]
CHANNELS = ["cash", "wallet", "bank", "card"]


def test_configured_partners_and_program_defaults() -> None:
    assert set(REAL_PARTNERS) == {"BARID", "CASHPLUS", "WAFACASH", "DAMANE", "CIHBANK", "MWALLET"}
    assert set(REAL_DEFAULTS) == set(REGIONS[:12])
    for region, code in REAL_DEFAULTS.items():
        assert REAL_PARTNERS[code].covers(region, "cash"), (region, code)


def test_configured_chosen_partner_outside_its_regions_falls_back_to_the_default() -> None:
    assert route(REAL_PARTNERS, REAL_DEFAULTS, "02", "cash", "CASHPLUS") == \
        ("BARID", "program default for region 02 (chosen partner does not cover the region)")


@given(region=st.sampled_from(REGIONS), channel=st.sampled_from(CHANNELS),
       chosen=st.sampled_from([None, "BARID", "CASHPLUS", "WAFACASH", "NOSUCH"]))
def test_route_is_a_partner_covering_the_household_or_none_only_if_nobody_does(
        region: str, channel: str, chosen: str | None) -> None:
    covering = {code for code, p in REAL_PARTNERS.items() if p.covers(region, channel)}

    result = route(REAL_PARTNERS, REAL_DEFAULTS, region, channel, chosen)

    if chosen in covering:
        assert result[0] == chosen
    elif REAL_DEFAULTS.get(region) in covering:
        assert result[0] == REAL_DEFAULTS[region]
    elif covering:
        assert result[0] in covering
    else:
        assert result[0] is None
    assert result[1]
