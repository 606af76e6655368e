"""Mobile wallet rules: a Moroccan mobile number, and the Bank Al-Maghrib tier
ceiling of the beneficiary's wallet. Plain Python (phonenumbers is a pure
library), judged before a transfer leaves for any partner. The tiers come from
`config/wallet.toml`, read by `disbursement.configuration.wallet`."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import phonenumbers
from phonenumbers import PhoneNumberType

from disbursement.domain.money import format_units

REGION = "MA"
MOBILE_TYPES = (PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE_OR_MOBILE)
TIERS = (1, 2, 3)  # Bank Al-Maghrib's wallet account tiers


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
