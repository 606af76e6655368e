"""Money as integer centimes beside an ISO 4217 code. Never float."""
from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

CENTIMES_PER_UNIT = 100


class CurrencyMismatch(ValueError):
    """Raised when amounts in two currencies are added or compared."""


@dataclass(frozen=True, slots=True)
class Money:
    centimes: int
    currency: str = "MAD"

    def __post_init__(self) -> None:
        if not isinstance(self.centimes, int) or isinstance(self.centimes, bool):
            raise TypeError("Money.centimes must be an int")

    def __add__(self, other: "Money") -> "Money":
        if other.currency != self.currency:
            raise CurrencyMismatch(f"{self.currency} + {other.currency}")
        return Money(self.centimes + other.centimes, self.currency)

    # Ordering compares centimes only within one currency (a generated
    # `order=True` would silently compare 100 MAD with 200 EUR).
    def _same_currency(self, other: "Money") -> "Money":
        if other.currency != self.currency:
            raise CurrencyMismatch(f"{self.currency} vs {other.currency}")
        return other

    def __lt__(self, other: "Money") -> bool:
        return self.centimes < self._same_currency(other).centimes

    def __le__(self, other: "Money") -> bool:
        return self.centimes <= self._same_currency(other).centimes

    def __gt__(self, other: "Money") -> bool:
        return self.centimes > self._same_currency(other).centimes

    def __ge__(self, other: "Money") -> bool:
        return self.centimes >= self._same_currency(other).centimes

    def __str__(self) -> str:
        return f"{format_units(self.centimes)} {self.currency}"


def format_units(centimes: int) -> str:
    """12345 -> '123.45' (two decimals, no float on the way)."""
    sign = "-" if centimes < 0 else ""
    units, cents = divmod(abs(centimes), CENTIMES_PER_UNIT)
    return f"{sign}{units}.{cents:02d}"


def parse_units(text: str) -> int:
    """'123.45' -> 12345 centimes; refuses more than two decimals."""
    try:
        value = Decimal(text.strip())
    except InvalidOperation as exc:
        raise ValueError(f"not an amount: {text!r}") from exc
    if not value.is_finite():  # 'Infinity', 'NaN' parse as Decimals but are no amounts
        raise ValueError(f"not an amount: {text!r}")
    centimes = value * CENTIMES_PER_UNIT
    if centimes != centimes.to_integral_value():
        raise ValueError(f"more than two decimals: {text!r}")
    return int(centimes)
