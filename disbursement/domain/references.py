"""Transfer references: at most 16 characters so they survive an MT940 `:61:`
field, upper-case alphanumeric, with an ISO 7064 MOD 37-36 check character,
unique forever (the database holds a unique index; randomness makes clashes
vanishingly rare and the planner retries if one happens)."""
from __future__ import annotations

import base64
import os

from stdnum.iso7064 import mod_37_36

PREFIX = "D"
RANDOM_CHARS = 13          # 65 random bits
RANDOM_BYTES = 9           # base32 of 9 bytes gives 15 characters; 13 are kept
# RFC 4648 base32 mapped onto Crockford's alphabet: no I, L, O, U to misread.
_TO_CROCKFORD = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567",
                              "0123456789ABCDEFGHJKMNPQRSTVWXYZ")


def new_reference() -> str:
    random_part = base64.b32encode(os.urandom(RANDOM_BYTES)).decode()[:RANDOM_CHARS]
    body = PREFIX + random_part.translate(_TO_CROCKFORD)
    return body + mod_37_36.calc_check_digit(body)


def is_valid_reference(text: str) -> bool:
    return (len(text) <= 16 and text.isalnum() and text.isupper()
            and mod_37_36.is_valid(text))
