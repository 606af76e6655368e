"""Personal data at rest: AES-GCM with a key id, plus keyed hashes to search.

The national ID, phones and account of a household are sealed together in one
blob (one encryption per household, not per field). A keyed hash of the
national ID lets officers find a household without decrypting every row.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import os
from collections.abc import Mapping

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

KEY_ID = b"k1"
NONCE_BYTES = 12


class SealError(ValueError):
    """Raised when a sealed blob was made with an unknown key or was altered."""


def _derive(master: bytes, purpose: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=purpose).derive(master)


class PersonalDataVault:
    def __init__(self, master_key: bytes) -> None:
        if len(master_key) < 32:
            raise ValueError("the data key must be at least 32 bytes")
        self._aead = AESGCM(_derive(master_key, b"disburse/pii/" + KEY_ID))
        self._hash_key = _derive(master_key, b"disburse/search-hash")

    def seal(self, fields: dict[str, str | None]) -> bytes:
        nonce = os.urandom(NONCE_BYTES)
        plain = json.dumps(fields, separators=(",", ":")).encode()
        return KEY_ID + nonce + self._aead.encrypt(nonce, plain, KEY_ID)

    def open(self, blob: bytes) -> dict[str, str | None]:
        if blob[:2] != KEY_ID:
            raise SealError(f"unknown key id {blob[:2]!r}")
        nonce, body = blob[2:2 + NONCE_BYTES], blob[2 + NONCE_BYTES:]
        try:
            return json.loads(self._aead.decrypt(nonce, body, KEY_ID))
        except Exception as exc:  # cryptography raises InvalidTag
            raise SealError("sealed personal data failed authentication") from exc

    def search_hash(self, value: str) -> str:
        return hmac.new(self._hash_key, value.strip().upper().encode(), hashlib.sha256).hexdigest()


def required(fields: Mapping[str, str | None], name: str) -> str:
    """A field every sealed record of its kind carries (a household's national ID, an
    officer's TOTP secret). Raises SealError when it is missing or empty."""
    value = fields.get(name)
    if not value:
        raise SealError(f"sealed record has no {name}")
    return value


def mask(value: str | None, keep: int = 3) -> str:
    """'AB123456' -> '*****456': enough for a person to recognise, not to use."""
    if not value:
        return ""
    hidden = max(len(value) - keep, 0)
    return "*" * hidden + value[hidden:]
