"""Money is integer centimes beside a currency: text in and out without float,
no mixing of currencies; a ledger posting whose legs do not balance is refused
before the database is touched."""
from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from disbursement.domain.money import CurrencyMismatch, Money, format_units, parse_units
from disbursement.services.ledger.postings import UnbalancedPosting, post

CENTIMES = st.integers(min_value=-10**15, max_value=10**15)
CURRENCIES = st.sampled_from(["MAD", "EUR", "USD", "XOF"])


@given(centimes=CENTIMES)
def test_format_then_parse_gives_back_the_same_centimes(centimes: int) -> None:
    text = format_units(centimes)

    back = parse_units(text)

    assert back == centimes
    assert type(back) is int


@given(units=st.integers(min_value=0, max_value=10**12), cents=st.integers(min_value=0, max_value=99),
       negative=st.booleans())
def test_formatted_amount_has_units_a_point_and_two_decimals(units: int, cents: int,
                                                              negative: bool) -> None:
    centimes = (units * 100 + cents) * (-1 if negative and (units or cents) else 1)
    sign = "-" if centimes < 0 else ""

    assert format_units(centimes) == f"{sign}{units}.{cents:02d}"


@given(units=st.integers(min_value=0, max_value=10**12), cents=st.integers(min_value=0, max_value=99))
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


@given(a=CENTIMES, b=CENTIMES, currency=CURRENCIES)
def test_adding_money_in_one_currency_adds_the_centimes(a: int, b: int, currency: str) -> None:
    assert Money(a, currency) + Money(b, currency) == Money(a + b, currency)


@given(a=CENTIMES, b=CENTIMES, currencies=st.lists(CURRENCIES, min_size=2, max_size=2, unique=True))
def test_adding_money_in_two_currencies_is_refused(a: int, b: int, currencies: list[str]) -> None:
    with pytest.raises(CurrencyMismatch, match=f"{currencies[0]} \\+ {currencies[1]}"):
        Money(a, currencies[0]) + Money(b, currencies[1])


@pytest.mark.parametrize("compare", [
    lambda x, y: x < y, lambda x, y: x <= y, lambda x, y: x > y, lambda x, y: x >= y,
])
def test_comparing_money_in_two_currencies_is_refused(compare) -> None:
    with pytest.raises(CurrencyMismatch):
        compare(Money(100, "MAD"), Money(200, "EUR"))


@given(a=CENTIMES, b=CENTIMES)
def test_money_in_one_currency_orders_by_centimes(a: int, b: int) -> None:
    x, y = Money(a), Money(b)

    assert (x < y, x <= y, x > y, x >= y, x == y) == (a < b, a <= b, a > b, a >= b, a == b)


def test_money_in_two_currencies_is_never_equal() -> None:
    assert Money(100, "MAD") != Money(100, "EUR")


@pytest.mark.parametrize("centimes", [1.0, 0.5, True, False, "100", None])
def test_money_refuses_anything_but_int_centimes(centimes) -> None:
    with pytest.raises(TypeError, match="must be an int"):
        Money(centimes)


def test_money_defaults_to_mad_and_prints_in_units() -> None:
    assert str(Money(12345)) == "123.45 MAD"
    assert str(Money(-5, "EUR")) == "-0.05 EUR"


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
    balanced = legs + [("budget:asd", -sum(a for _, a in legs))]

    with pytest.raises(_DatabaseReached):
        post(_NoDatabase(), "release", "asd", "2026-01", "BARID", "memo", balanced)
