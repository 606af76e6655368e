"""Mobile wallet rules: a Moroccan mobile number, and the Bank Al-Maghrib tier
ceiling of the beneficiary's wallet. Plain Python (phonenumbers is a pure
library), judged before a transfer leaves for any partner."""
from __future__ import annotations

import tomllib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from types import MappingProxyType
from typing import Mapping

import phonenumbers
from phonenumbers import PhoneNumberType

from disbursement.domain.money import format_units

REGION = "MA"
MOBILE_TYPES = (PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE_OR_MOBILE)


class WalletConfigError(ValueError):
    """Raised when config/wallet.toml is missing a tier or names a default
    tier it does not define."""


@dataclass(frozen=True)
class WalletRules:
    currency: str
    default_tier: int
    ceilings: Mapping[int, int]          # tier -> centimes per transfer

    def refusal(self, amount_centimes: int, currency: str, phone: str | None,
                tier: int | None) -> str | None:
        """Why this wallet transfer must not be sent, or None when it may."""
        number = normalise_mobile(phone)
        if number is None:
            return "wallet number is not a valid Moroccan mobile number"
        tier = self.default_tier if tier is None else tier
        ceiling = self.ceilings.get(tier)
        if ceiling is None:
            return f"wallet tier {tier} is not a Bank Al-Maghrib tier"
        if currency != self.currency:
            return f"wallet transfers are in {self.currency}, not {currency}"
        if amount_centimes > ceiling:
            return (f"wallet tier {tier} ceiling {format_units(ceiling)} {self.currency} "
                    f"below {format_units(amount_centimes)} {currency}")
        return None


def normalise_mobile(phone: str | None) -> str | None:
    """The number in E.164 when it is a valid Moroccan mobile, else None."""
    if not phone:
        return None
    try:
        parsed = phonenumbers.parse(phone, REGION)
    except phonenumbers.NumberParseException:
        return None
    if (phonenumbers.region_code_for_number(parsed) != REGION
            or not phonenumbers.is_valid_number(parsed)
            or phonenumbers.number_type(parsed) not in MOBILE_TYPES):
        return None
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


@lru_cache(maxsize=8)
def load_wallet_rules(config_dir: Path) -> WalletRules:
    data = tomllib.loads((config_dir / "wallet.toml").read_text(encoding="utf-8"))
    ceilings = {int(tier): int(centimes) for tier, centimes in data["tiers"].items()}
    if sorted(ceilings) != [1, 2, 3]:
        raise WalletConfigError("wallet.toml must define tiers 1, 2 and 3")
    if data["default_tier"] not in ceilings:
        raise WalletConfigError(f"default_tier {data['default_tier']} is not a defined tier")
    return WalletRules(data["currency"], int(data["default_tier"]),
                       MappingProxyType(ceilings))
