"""Transfer references: at most 16 characters so they survive an MT940 `:61:`
field, upper-case alphanumeric, with an ISO 7064 MOD 37-36 check character,
unique forever (the database holds a unique index; randomness makes clashes
vanishingly rare and the planner retries if one happens)."""
from __future__ import annotations

import secrets

from stdnum.iso7064 import mod_37_36

PREFIX = "D"
RANDOM_CHARS = 13
_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford: no I, L, O, U


def new_reference() -> str:
    body = PREFIX + "".join(secrets.choice(_ALPHABET) for _ in range(RANDOM_CHARS))
    return body + mod_37_36.calc_check_digit(body)


def is_valid_reference(text: str) -> bool:
    return (len(text) <= 16 and text.isalnum() and text.isupper()
            and mod_37_36.is_valid(text))
