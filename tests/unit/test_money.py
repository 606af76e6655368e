"""Money is integer centimes: text in and out without float, one parser for
every reader; a ledger posting whose legs do not balance is refused
before the database is touched."""
from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from disbursement.domain.money import TooManyDecimals, centimes_of, format_units, parse_units
from disbursement.services.ledger.postings import UnbalancedPosting, post

CENTIMES = st.integers(min_value=-10**15, max_value=10**15)


@given(centimes=CENTIMES)
def test_format_then_parse_gives_back_the_same_centimes(centimes: int) -> None:
    text = format_units(centimes)

    back = parse_units(text)

    assert back == centimes
    assert type(back) is int


@given(units=st.integers(min_value=0, max_value=10**12),
       cents=st.integers(min_value=0, max_value=99),
       negative=st.booleans())
def test_formatted_amount_has_units_a_point_and_two_decimals(units: int, cents: int,
                                                              negative: bool) -> None:
    centimes = (units * 100 + cents) * (-1 if negative and (units or cents) else 1)
    sign = "-" if centimes < 0 else ""

    assert format_units(centimes) == f"{sign}{units}.{cents:02d}"


@given(units=st.integers(min_value=0, max_value=10**12),
       cents=st.integers(min_value=0, max_value=99))
def test_parse_reads_units_and_two_decimals_as_centimes(units: int, cents: int) -> None:
    assert parse_units(f"{units}.{cents:02d}") == units * 100 + cents
    assert parse_units(f" -{units}.{cents:02d} ") == -(units * 100 + cents)


@pytest.mark.parametrize("text, centimes", [
    ("0", 0), ("7", 700), ("7.5", 750), ("7.50", 750), ("0.01", 1), ("-0.01", -1),
    ("123.45", 12345), ("500.00", 50000),
])
def test_parse_known_amounts(text: str, centimes: int) -> None:
    assert parse_units(text) == centimes


@pytest.mark.parametrize("text", ["1.005", "0.001", "12.345", "-1.005"])
def test_more_than_two_decimals_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="more than two decimals"):
        parse_units(text)


@pytest.mark.parametrize("text", ["", "  ", "abc", "1,50", "12.3.4", "MAD 5"])
def test_text_that_is_not_an_amount_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="not an amount"):
        parse_units(text)


@pytest.mark.parametrize("text", ["Infinity", "-Infinity", "inf", "NaN", "sNaN"])
def test_non_finite_amounts_are_refused_as_values(text: str) -> None:
    with pytest.raises(ValueError, match="not an amount"):
        parse_units(text)


@pytest.mark.parametrize(("units", "centimes"), [
    (Decimal("100.00"), 10000), (Decimal("0.5"), 50), (Decimal("7.10000"), 710),
    (Decimal("-3"), -300),
])
def test_a_decimal_of_units_becomes_exact_centimes(units: Decimal, centimes: int) -> None:
    assert centimes_of(units) == centimes


def test_a_decimal_with_a_fraction_of_a_centime_is_refused() -> None:
    with pytest.raises(TooManyDecimals, match="more than two decimals"):
        centimes_of(Decimal("100.005"))


# --- ledger: the one rule of `post` that needs no database -------------------

class _DatabaseReached(Exception):
    """Raised by the stand-in session: the posting got past the balance rule."""


class _NoDatabase:
    def execute(self, *args, **kwargs):
        raise _DatabaseReached


LEG = st.tuples(st.sampled_from(["budget:asd", "clearing:BARID", "paid:asd", "returned:asd"]),
                st.integers(min_value=-10**12, max_value=10**12))


@given(legs=st.lists(LEG, max_size=6).filter(lambda legs: sum(a for _, a in legs) != 0))
def test_posting_whose_legs_do_not_sum_to_zero_is_refused(legs: list[tuple[str, int]]) -> None:
    with pytest.raises(UnbalancedPosting, match=f"legs sum to {sum(a for _, a in legs)}"):
        post(_NoDatabase(), "release", "asd", "2026-01", "BARID", "memo", legs)


@given(legs=st.lists(LEG, min_size=1, max_size=5))
def test_posting_whose_legs_balance_goes_on_to_the_database(legs: list[tuple[str, int]]) -> None:
    balanced = [*legs, ("budget:asd", -sum(a for _, a in legs))]

    with pytest.raises(_DatabaseReached):
        post(_NoDatabase(), "release", "asd", "2026-01", "BARID", "memo", balanced)
