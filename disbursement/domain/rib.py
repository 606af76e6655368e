"""The Moroccan RIB (relevé d'identité bancaire): 24 digits = bank code (3),
city code (3), account number (16), key (2). The key is
97 - ((bank + city + account) * 100 mod 97). python-stdnum has no Moroccan RIB,
so the check lives here, shared by the registry import and the bank connector."""
from __future__ import annotations

import re

RIB_DIGITS = 24
_RIB = re.compile(r"[0-9]{24}", re.ASCII)  # ASCII: `\d` would accept Arabic-Indic digits


def rib_key(first_22_digits: str) -> str:
    """The two check digits of a Moroccan RIB (bank 3 + city 3 + account 16)."""
    return f"{97 - (int(first_22_digits) * 100) % 97:02d}"


def is_valid_rib(rib: str) -> bool:
    return _RIB.fullmatch(rib) is not None and rib_key(rib[:22]) == rib[22:]


def rib_problem(rib: str | None) -> str | None:
    """Why `rib` is not a RIB, in words, or None when it is one. The words never
    quote the digits: an account number is personal data."""
    if not rib:
        return "no RIB"
    if _RIB.fullmatch(rib) is None:
        return f"RIB is not {RIB_DIGITS} digits"
    if not is_valid_rib(rib):
        return "RIB check digits do not match"
    return None


def bank_code(rib: str) -> str:
    """The three-digit bank code at the head of a RIB (e.g. "007" Attijariwafa)."""
    return rib[:3]
