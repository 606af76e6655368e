"""HMAC signatures over the raw body plus a timestamp, both directions.

Header `X-Disburse-Timestamp` carries Unix seconds; `X-Disburse-Signature`
carries `v1=<hex>` where hex is HMAC-SHA256(key, b"<timestamp>." + raw_body).
During a key rotation several keys are active: any one of them verifies.
"""
from __future__ import annotations

import hashlib
import hmac
import time
from typing import Mapping, Sequence

TIMESTAMP_HEADER = "X-Disburse-Timestamp"
SIGNATURE_HEADER = "X-Disburse-Signature"
MAX_CLOCK_SKEW_SECONDS = 300


class SignatureError(Exception):
    """Raised when a message's signature is missing, malformed, stale or wrong.
    The message must then be refused without being parsed."""


def _digest(key: bytes, timestamp: str, body: bytes) -> str:
    return hmac.new(key, timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


def sign(key: bytes, body: bytes, now: float | None = None) -> dict[str, str]:
    timestamp = str(int(time.time() if now is None else now))
    return {TIMESTAMP_HEADER: timestamp, SIGNATURE_HEADER: "v1=" + _digest(key, timestamp, body)}


def verify(keys: Sequence[bytes], headers: Mapping[str, str], body: bytes,
           now: float | None = None) -> None:
    timestamp = headers.get(TIMESTAMP_HEADER)
    signature = headers.get(SIGNATURE_HEADER)
    if not timestamp or not signature:
        raise SignatureError(f"missing {TIMESTAMP_HEADER} or {SIGNATURE_HEADER} header")
    if not timestamp.isdigit():
        raise SignatureError(f"{TIMESTAMP_HEADER} is not Unix seconds")
    skew = abs((time.time() if now is None else now) - int(timestamp))
    if skew > MAX_CLOCK_SKEW_SECONDS:
        raise SignatureError(f"timestamp outside the {MAX_CLOCK_SKEW_SECONDS}s window")
    if not signature.startswith("v1="):
        raise SignatureError("signature scheme is not v1")
    given = signature[3:]
    if not any(hmac.compare_digest(_digest(k, timestamp, body), given) for k in keys):
        raise SignatureError("signature does not match")
