"""Money is integer centimes beside an ISO 4217 code, never float. This module
is the one place that turns amounts written in units ("123.45") into centimes
and back, so every reader (console input, ISO 20022 files, MT940 statements)
rounds nothing and refuses the same things."""
from __future__ import annotations

from decimal import Decimal, InvalidOperation

CENTIMES_PER_UNIT = 100


class NotAnAmount(ValueError):
    """Raised when text is not a finite decimal number of units."""


class TooManyDecimals(ValueError):
    """Raised when an amount has more than two decimals: a fraction of a centime."""


def format_units(centimes: int) -> str:
    """12345 -> '123.45' (two decimals, no float on the way)."""
    sign = "-" if centimes < 0 else ""
    units, cents = divmod(abs(centimes), CENTIMES_PER_UNIT)
    return f"{sign}{units}.{cents:02d}"


def parse_units(text: str) -> int:
    """'123.45' -> 12345 centimes; refuses more than two decimals. Callers that
    read a file turn the error into their own, naming the line or element."""
    try:
        value = Decimal(text.strip())
    except InvalidOperation as exc:
        raise NotAnAmount(f"not an amount: {text!r}") from exc
    if not value.is_finite():  # 'Infinity', 'NaN' parse as Decimals but are no amounts
        raise NotAnAmount(f"not an amount: {text!r}")
    return centimes_of(value, text)


def centimes_of(units: Decimal, text: str | None = None) -> int:
    """Exact centimes of an amount in units (a reader that already holds a
    Decimal, like MT940's, starts here)."""
    centimes = units * CENTIMES_PER_UNIT
    if centimes != centimes.to_integral_value():
        raise TooManyDecimals(f"more than two decimals: {text if text is not None else units!r}")
    return int(centimes)
