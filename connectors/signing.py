"""HMAC signatures over the whole request, both directions, with replay protection.

Headers:

    X-Disburse-Timestamp  Unix seconds
    X-Disburse-Nonce      16-64 characters [A-Za-z0-9_-], never reused by the signer
    X-Disburse-Signature  v2=<hex>

where hex is HMAC-SHA256(key, canonical) and canonical is

    <METHOD>\\n<target>\\n<timestamp>\\n<nonce>\\n<raw body>

`target` is the request path plus `?query` when there is one. Covering the
method and the path means a captured signed message cannot be replayed against
another endpoint; the timestamp window plus a nonce seen once means it cannot be
replayed at all. During a key rotation several keys are active: any one of them
verifies, and the signer uses the first.
"""
from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from disbursement.domain.errors import Unauthenticated

TIMESTAMP_HEADER = "X-Disburse-Timestamp"
NONCE_HEADER = "X-Disburse-Nonce"
SIGNATURE_HEADER = "X-Disburse-Signature"
SCHEME = "v2"
MAX_CLOCK_SKEW_SECONDS = 300
# A nonce must be remembered as long as its timestamp can pass the window check:
# a message stamped up to MAX_CLOCK_SKEW_SECONDS ahead stays acceptable for
# twice the skew after it was first seen.
NONCE_TTL_SECONDS = 2 * MAX_CLOCK_SKEW_SECONDS
NONCE_PATTERN = re.compile(r"[A-Za-z0-9_-]{16,64}", re.ASCII)
NONCE_BYTES = 16


class SignatureError(Unauthenticated):
    """Raised when a message's signature is missing, malformed, stale or wrong.
    The message must then be refused without being parsed."""


class ReplayError(SignatureError):
    """Raised when a correctly signed message carries a nonce already seen
    within the window: it is a replay and is refused."""


@dataclass(frozen=True, slots=True)
class Verified:
    """What a valid signature established: the nonce to remember and which of
    the active keys signed (0 = the newest)."""
    nonce: str
    timestamp: int
    key_index: int


class NonceStore(Protocol):
    def remember(self, nonce: str, timestamp: int) -> bool:
        """Record the nonce; False when it was already seen (a replay)."""


def request_target(path: str, query: str | bytes | None = None) -> str:
    """The signed target of a request: its path, plus `?query` when non-empty."""
    if isinstance(query, bytes):
        query = query.decode("latin-1")
    return f"{path}?{query}" if query else path


def _canonical(method: str, target: str, timestamp: str, nonce: str, body: bytes) -> bytes:
    return "\n".join((method.upper(), target, timestamp, nonce, "")).encode() + body


def _digest(key: bytes, canonical: bytes) -> str:
    return hmac.new(key, canonical, hashlib.sha256).hexdigest()


def sign(key: bytes, body: bytes, *, method: str, target: str, now: float | None = None,
         nonce: str | None = None) -> dict[str, str]:
    """The three headers for a request `method target` carrying `body`."""
    timestamp = str(int(time.time() if now is None else now))
    nonce = nonce or secrets.token_urlsafe(NONCE_BYTES)
    digest = _digest(key, _canonical(method, target, timestamp, nonce, body))
    return {TIMESTAMP_HEADER: timestamp, NONCE_HEADER: nonce,
            SIGNATURE_HEADER: f"{SCHEME}={digest}"}


class HeaderLookup(Protocol):
    """What `verify` reads headers through: a dict, or a web framework's case-insensitive
    headers (werkzeug's `Headers` is no `Mapping`)."""

    def get(self, key: str) -> str | None: ...


def verify(keys: Sequence[bytes], headers: HeaderLookup, body: bytes, *, method: str,
           target: str, now: float | None = None,
           nonces: NonceStore | None = None) -> Verified:
    """Check the signature of `method target` with `body`; with `nonces`, also
    refuse a nonce seen before (`ReplayError`). Raises `SignatureError`."""
    timestamp = headers.get(TIMESTAMP_HEADER)
    nonce = headers.get(NONCE_HEADER)
    signature = headers.get(SIGNATURE_HEADER)
    if not timestamp or not signature or not nonce:
        raise SignatureError(
            f"missing {TIMESTAMP_HEADER}, {NONCE_HEADER} or {SIGNATURE_HEADER} header")
    if not timestamp.isascii() or not timestamp.isdigit():
        raise SignatureError(f"{TIMESTAMP_HEADER} is not Unix seconds")
    if not NONCE_PATTERN.fullmatch(nonce):
        raise SignatureError(f"{NONCE_HEADER} must be 16-64 characters [A-Za-z0-9_-]")
    skew = abs((time.time() if now is None else now) - int(timestamp))
    if skew > MAX_CLOCK_SKEW_SECONDS:
        raise SignatureError(f"timestamp outside the {MAX_CLOCK_SKEW_SECONDS}s window")
    if not signature.startswith(SCHEME + "="):
        raise SignatureError(f"signature scheme is not {SCHEME}")
    given = signature[len(SCHEME) + 1:]
    canonical = _canonical(method, target, timestamp, nonce, body)
    for index, key in enumerate(keys):
        if hmac.compare_digest(_digest(key, canonical), given):
            verified = Verified(nonce, int(timestamp), index)
            if nonces is not None and not nonces.remember(nonce, verified.timestamp):
                raise ReplayError("nonce already used: replayed message refused")
            return verified
    raise SignatureError("signature does not match")


class MemoryNonces:
    """Nonces seen, in memory, pruned after NONCE_TTL_SECONDS (simulators and
    test receivers; our service keeps them in the database)."""

    def __init__(self, ttl_seconds: float = NONCE_TTL_SECONDS) -> None:
        self._ttl = ttl_seconds
        self._seen: dict[str, float] = {}
        self._lock = threading.Lock()

    def remember(self, nonce: str, timestamp: int) -> bool:
        now = time.time()
        with self._lock:
            if len(self._seen) > 1024:
                self._seen = {n: at for n, at in self._seen.items() if now - at < self._ttl}
            if nonce in self._seen:
                return False
            self._seen[nonce] = now
            return True
