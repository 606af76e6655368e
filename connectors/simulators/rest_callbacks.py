"""Delivery of the simulated partner's confirmations to our callback URL.

Confirmations leave in order, in batches, signed like a real partner's. A
batch the receiver did not acknowledge with a 2xx stays at the head of the
queue and is offered again on the next delivery: nothing is ever dropped.
"""
from __future__ import annotations

import json
import sys
import threading
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import urlsplit

import httpx

from connectors import signing
from connectors.simulators.rest_book import PartnerBook

CALLBACK_TIMEOUT_SECONDS = 10.0
ERROR_TEXT_MAX_CHARS = 200


class KeyRing:
    """The partner's active HMAC keys: it signs with the first and accepts any
    (two during a rotation). Replaced at runtime through /_sim/keys."""

    def __init__(self, keys: Sequence[bytes]) -> None:
        self._lock = threading.Lock()
        self.replace(keys)

    def replace(self, keys: Sequence[bytes]) -> None:
        if not keys or not all(keys):
            raise ValueError("at least one non-empty key is needed")
        with self._lock:
            self._keys = tuple(keys)

    @property
    def signing_key(self) -> bytes:
        with self._lock:
            return self._keys[0]

    @property
    def active(self) -> tuple[bytes, ...]:
        with self._lock:
            return self._keys


def parse_keys(text: str) -> list[bytes]:
    """`new,old` as in PARTNER_<CODE>_HMAC_KEYS."""
    return [k.strip().encode("utf-8") for k in text.split(",") if k.strip()]


def json_list(batch: list[dict[str, Any]]) -> bytes:
    return json.dumps(batch, separators=(",", ":")).encode()


class CallbackSender:
    """Posts pending confirmations; one delivery runs at a time to keep order.

    `render` turns a batch of the book's events into the protocol's body."""

    def __init__(self, book: PartnerBook, url: str, keys: KeyRing, batch_size: int,
                 render: Callable[[list[dict[str, Any]]], bytes] = json_list) -> None:
        self._book = book
        self._url = url
        self._target = signing.request_target(urlsplit(url).path or "/", urlsplit(url).query)
        self._keys = keys
        self._render = render
        self._batch_size = batch_size
        # Not the book's lock: our service may query the partner while it
        # handles a callback, and must not wait for the callback to finish.
        self._delivery_lock = threading.Lock()
        self._client = httpx.Client(timeout=CALLBACK_TIMEOUT_SECONDS)

    def close(self) -> None:
        self._client.close()

    def deliver_pending(self) -> int:
        """Post every pending confirmation; return how many were acknowledged.

        Stops at the first failed request, leaving it and the rest pending.
        """
        delivered = 0
        with self._delivery_lock:
            while batch := self._book.pending_batch(self._batch_size):
                copies = 2 if self._book.faults().duplicate_callbacks else 1
                error = self._post(batch)
                if error is None and copies == 2:
                    # The receiver already has the batch: a failed copy is
                    # reported but does not make the batch pending again.
                    copy_error = self._post(batch)
                    self._book.record_delivery(len(batch), 2, copy_error)
                else:
                    self._book.record_delivery(0 if error else len(batch), 1, error)
                if error is not None:
                    print(f"callback delivery failed, kept pending: {error}",
                          file=sys.stderr, flush=True)
                    return delivered
                delivered += len(batch)
        return delivered

    def _post(self, batch: list[dict[str, Any]]) -> str | None:
        """None when the receiver acknowledged `batch`, else why it did not."""
        body = self._render(batch)
        # Each delivery is signed afresh: a new nonce, so a retry is no replay.
        headers = {"Content-Type": "application/json",
                   **signing.sign(self._keys.signing_key, body, method="POST",
                                  target=self._target)}
        try:
            response = self._client.post(self._url, content=body, headers=headers)
        except httpx.TransportError as exc:
            return f"{type(exc).__name__}: {exc}"
        if not response.is_success:
            return f"HTTP {response.status_code}: {response.text[:ERROR_TEXT_MAX_CHARS]}"
        return None
