"""Mobile wallet rules: a Moroccan mobile number, and the Bank Al-Maghrib tier
ceiling of the beneficiary's wallet. Plain Python (phonenumbers is a pure
library), judged before a transfer leaves for any partner. The tiers come from
`config/wallet.toml`, read by `disbursement.configuration.wallet`."""
from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

import phonenumbers
from phonenumbers import PhoneNumberType

from disbursement.domain.money import format_units

REGION = "MA"
MOBILE_TYPES = (PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE_OR_MOBILE)
TIERS = (1, 2, 3)  # Bank Al-Maghrib's wallet account tiers
# What a typed number may hold before phonenumbers reads it: ASCII digits and
# the separators agents type. phonenumbers alone would also read letters
# ("06-CALL-NOW") and Arabic-Indic digits as digits.
_TYPED_NUMBER = re.compile(r"\+?[0-9 ()./-]+", re.ASCII)
COUNTRY_CODE = 212
# "0" or "+212" then nine digits not starting with 0 (separators removed).
_PLAIN_FORM = re.compile(r"(?:0|\+212)([1-9][0-9]{8})", re.ASCII)
_SEPARATORS = str.maketrans("", "", " .-")

# Each refusal starts with its code, like a partner's rejection reason, so that
# a refused transfer's `status_reason` says which rule spoke (and re-issue can
# tell a wallet-rule refusal from a partner's). Our own codes: no ISO 20022
# status reason starts with "WL".
NUMBER_REFUSED = "WL01"
TIER_REFUSED = "WL02"
CURRENCY_REFUSED = "WL03"
CEILING_REFUSED = "WL04"
REFUSAL_CODES = frozenset({NUMBER_REFUSED, TIER_REFUSED, CURRENCY_REFUSED, CEILING_REFUSED})


@dataclass(frozen=True)
class WalletRules:
    currency: str
    default_tier: int
    ceilings: Mapping[int, int]          # tier -> centimes per transfer

    def refusal(self, amount_centimes: int, currency: str, phone: str | None,
                tier: int | None) -> str | None:
        """Why this wallet transfer must not be sent, or None when it may: the
        one check planning, re-issue and dispatch all apply. The reason starts
        with its code (`REFUSAL_CODES`)."""
        number = normalise_mobile(phone)
        if number is None:
            return f"{NUMBER_REFUSED} wallet number is not a valid Moroccan mobile number"
        tier = self.default_tier if tier is None else tier
        ceiling = self.ceilings.get(tier)
        if ceiling is None:
            return f"{TIER_REFUSED} wallet tier {tier} is not a Bank Al-Maghrib tier"
        if currency != self.currency:
            return f"{CURRENCY_REFUSED} wallet transfers are in {self.currency}, not {currency}"
        if amount_centimes > ceiling:
            return (f"{CEILING_REFUSED} wallet tier {tier} ceiling {format_units(ceiling)} "
                    f"{self.currency} below {format_units(amount_centimes)} {currency}")
        return None


def wallet_number(pii: Mapping[str, str | None]) -> str | None:
    """The number a wallet transfer credits: the registry's wallet number, else
    the household's phone (read from the household's opened personal data)."""
    return pii.get("wallet_phone") or pii.get("phone")


def normalise_mobile(phone: str | None) -> str | None:
    """The number in E.164 when it is a valid Moroccan mobile, else None. The
    one judge of a wallet number: the registry import, planning, dispatch and
    the wallet simulator all call it, so a number the import accepts the wallet
    takes."""
    if not phone or _TYPED_NUMBER.fullmatch(phone) is None:
        return None
    plain = _PLAIN_FORM.fullmatch(phone.translate(_SEPARATORS))
    if plain is not None:
        # The forms agents type most ("06...", "+2126..."): what parse() would
        # make of them, without its cost (it is most of a call's 0.4 ms).
        parsed = phonenumbers.PhoneNumber(country_code=COUNTRY_CODE,
                                          national_number=int(plain.group(1)))
    else:
        try:
            parsed = phonenumbers.parse(phone, REGION)
        except phonenumbers.NumberParseException:
            return None
    # number_type() is UNKNOWN for a number is_valid_number() refuses: one
    # metadata walk says both.
    if (phonenumbers.region_code_for_number(parsed) != REGION
            or phonenumbers.number_type(parsed) not in MOBILE_TYPES):
        return None
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
