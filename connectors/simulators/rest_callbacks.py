"""Delivery of the simulated partner's confirmations to our callback URL.

Confirmations leave in order, in batches, signed like a real partner's. A
batch the receiver did not acknowledge with a 2xx stays at the head of the
queue and is offered again on the next delivery: nothing is ever dropped.
"""
from __future__ import annotations

import json
import sys
import threading
from typing import Any

import httpx

from connectors import signing
from connectors.simulators.rest_book import PartnerBook

CALLBACK_TIMEOUT_SECONDS = 10.0
ERROR_TEXT_MAX_CHARS = 200


class CallbackSender:
    """Posts pending confirmations; one delivery runs at a time to keep order."""

    def __init__(self, book: PartnerBook, url: str, key: bytes, batch_size: int) -> None:
        self._book = book
        self._url = url
        self._key = key
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
        body = json.dumps(batch, separators=(",", ":")).encode()
        headers = {"Content-Type": "application/json", **signing.sign(self._key, body)}
        try:
            response = self._client.post(self._url, content=body, headers=headers)
        except httpx.TransportError as exc:
            return f"{type(exc).__name__}: {exc}"
        if not response.is_success:
            return f"HTTP {response.status_code}: {response.text[:ERROR_TEXT_MAX_CHARS]}"
        return None
