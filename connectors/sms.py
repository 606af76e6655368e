"""SMS gateway connector: our own small JSON protocol over HTTP, signed like
the partner API (`connectors.signing`: method, path, timestamp, nonce, body).

    POST /v1/messages  {"messages": [{"key", "to", "text"}]}
    -> {"results": [{"key", "id", "status": "accepted" | "duplicate"}]}

`key` is our idempotency key (the transfer reference): the gateway delivers a
key once, so resending a chunk after an ambiguous failure never texts twice.
Message texts carry withdrawal codes: nothing here logs or repeats a body.
"""
from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

import httpx

from connectors import signing
from connectors.base import AmbiguousOutcome, RetryableError, TerminalError

MESSAGES_PATH = "/v1/messages"


@dataclass(frozen=True, slots=True)
class SmsMessage:
    key: str
    to: str
    text: str

    def __repr__(self) -> str:  # the text holds a withdrawal code
        return f"SmsMessage(key={self.key!r})"


class SmsGateway:
    def __init__(self, base_url: str, key: bytes, timeout_seconds: float = 10.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.key = key
        self.client = httpx.Client(timeout=timeout_seconds)

    def send(self, messages: Sequence[SmsMessage]) -> dict[str, str]:
        """Message key -> gateway id, for every message the gateway holds.
        Raises RetryableError (not taken), AmbiguousOutcome (maybe taken: resend,
        the key protects), TerminalError (refused as sent)."""
        if not messages:
            return {}
        body = json.dumps({"messages": [{"key": m.key, "to": m.to, "text": m.text}
                                        for m in messages]}, ensure_ascii=False).encode()
        headers = {"Content-Type": "application/json",
                   **signing.sign(self.key, body, method="POST", target=MESSAGES_PATH)}
        try:
            response = self.client.post(f"{self.base_url}{MESSAGES_PATH}", content=body,
                                        headers=headers)
        except httpx.TimeoutException as exc:
            raise AmbiguousOutcome(f"SMS gateway: no answer ({type(exc).__name__})") from None
        except httpx.TransportError as exc:
            raise RetryableError(f"SMS gateway unreachable ({type(exc).__name__})") from None
        if response.status_code >= 500 or response.status_code == 429:
            raise RetryableError(f"SMS gateway answered {response.status_code}")
        if response.status_code >= 400:
            raise TerminalError(f"SMS gateway refused the request: {response.status_code}")
        try:
            return {r["key"]: str(r["id"]) for r in response.json()["results"]}
        except (ValueError, KeyError, TypeError):
            raise AmbiguousOutcome("SMS gateway answer is malformed") from None

    def close(self) -> None:
        self.client.close()
