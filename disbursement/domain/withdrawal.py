"""One-time withdrawal codes for cash transfers.

The code is derived, not stored: an HMAC of the transfer reference under a
secret key, cut to six digits. Dispatch (which hands it to the partner) and the
notification job (which texts it to the beneficiary) both compute it; our side
keeps only a keyed hash to verify a code someone presents. Never log either.
"""
from __future__ import annotations

import hashlib
import hmac

CODE_DIGITS = 6


class MissingCodeKey(RuntimeError):
    """Raised when a cash transfer needs a withdrawal code and DISBURSE_CODE_KEY is not set."""


def _check(key: bytes) -> None:
    if not key:
        raise MissingCodeKey("DISBURSE_CODE_KEY is not set (base64 of 32 random bytes): "
                             "cash transfers need a withdrawal code")


def withdrawal_code(key: bytes, reference: str) -> str:
    _check(key)
    digest = hmac.new(key, b"withdrawal-code:" + reference.encode(), hashlib.sha256).digest()
    return f"{int.from_bytes(digest[:8], 'big') % 10 ** CODE_DIGITS:0{CODE_DIGITS}d}"


def code_hash(key: bytes, reference: str, code: str) -> str:
    """What we store: six digits alone are guessable, so the hash is keyed."""
    _check(key)
    return hmac.new(key, f"verify:{reference}:{code}".encode(), hashlib.sha256).hexdigest()


def verify(key: bytes, reference: str, code: str, stored_hash: str) -> bool:
    return hmac.compare_digest(code_hash(key, reference, code), stored_hash)
