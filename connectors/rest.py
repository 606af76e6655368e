"""REST JSON connector for payment institutions: signed requests over HTTPS.

Every httpx error and every HTTP status is translated here, at the edge, into
the three errors of `connectors.base`, so the dispatch job never reasons about
sockets. The rule is "could the partner have acted on what we sent?":

- nothing reached the partner (refused, connect timeout) or it said "not now"
  (5xx, 429): `RetryableError`;
- the request was written but no answer came back (read timeout, connection
  dropped): `AmbiguousOutcome` for calls that change state (send, cancel);
  for queries (status, statement) nothing can have changed, so retrying is
  safe and they raise `RetryableError` instead;
- the partner refused the request itself (other 4xx): `TerminalError`.
"""
from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any
from urllib.parse import quote, urlencode

import httpx

from connectors import signing
from connectors.base import (
    JSON_MEDIA_TYPE,
    AmbiguousOutcome,
    BadInboundMessage,
    InboundUpdate,
    OutboundTransfer,
    PartnerStatus,
    RetryableError,
    SendResult,
    TerminalError,
)

# Enough of the partner's error text to diagnose, not enough to flood a log.
ERROR_TEXT_MAX_CHARS = 300


class RestConnector:
    """One partner reached over its REST API; one pooled `httpx.Client` each.

    Close it (or use it as a context manager) so its connections are released.
    """

    callback_media_type = JSON_MEDIA_TYPE

    def __init__(self, partner_code: str, base_url: str, key: bytes,
                 timeout_seconds: float = 10.0, verify_keys: Sequence[bytes] = ()) -> None:
        self.partner_code = partner_code
        self._key = key
        # Keys accepted on callbacks: during a rotation the old one too.
        self._verify_keys = tuple(verify_keys) or (key,)
        self._client = httpx.Client(base_url=base_url.rstrip("/"),
                                    timeout=httpx.Timeout(timeout_seconds))

    def __enter__(self) -> RestConnector:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self._client.close()

    # -- the Connector contract ------------------------------------------------

    def send(self, transfers: Sequence[OutboundTransfer]) -> list[SendResult]:
        if not transfers:
            return []
        body = {"transfers": [_transfer_json(t) for t in transfers]}
        answer = self._call("POST", "/v1/transfers", body, changes_state=True)
        try:
            by_reference = {r["reference"]: r for r in answer["results"]}
            return [SendResult(reference=t.reference,
                               status=PartnerStatus(by_reference[t.reference]["status"]),
                               reason=by_reference[t.reference].get("reason"))
                    for t in transfers]
        except (KeyError, TypeError, ValueError) as exc:
            # The partner answered 2xx, so it may well hold the chunk: only a
            # status() query can tell which transfers it took.
            raise AmbiguousOutcome(
                f"{self.partner_code}: send answer is malformed ({exc!r})") from exc

    def status(self, references: Sequence[str]) -> dict[str, PartnerStatus]:
        if not references:
            return {}
        answer = self._call("POST", "/v1/transfers/status",
                            {"references": list(references)}, changes_state=False)
        try:
            statuses = answer["statuses"]
            return {ref: PartnerStatus(statuses[ref]) for ref in references}
        except (KeyError, TypeError, ValueError) as exc:
            raise TerminalError(
                f"{self.partner_code}: status answer is malformed ({exc!r})") from exc

    def cancel(self, reference: str) -> PartnerStatus:
        answer = self._call("POST", f"/v1/transfers/{quote(reference, safe='')}/cancel",
                            {"reference": reference}, changes_state=True)
        try:
            if answer["reference"] != reference:
                raise ValueError(f"answer is about {answer['reference']!r}")
            return PartnerStatus(answer["status"])
        except (KeyError, TypeError, ValueError) as exc:
            raise AmbiguousOutcome(
                f"{self.partner_code}: cancel answer is malformed ({exc!r})") from exc

    def fetch_statement(self, since: str | None = None) -> bytes:
        """Return the settlement statement CSV as the partner sent it.

        `since` (an ISO date) asks only for lines with a later or equal value
        date. Parsing belongs to reconciliation, not to the connector.
        """
        target = signing.request_target("/v1/statements/settlement.csv",
                                        urlencode({"since": since}) if since else None)
        response = self._exchange("GET", target, b"", changes_state=False)
        return response.content

    def collect(self) -> list[InboundUpdate]:
        """The partner pushes its confirmations: nothing to pull."""
        return []

    def receive_callback(self, method: str, target: str, headers: Mapping[str, str],
                         body: bytes, nonces: signing.NonceStore | None = None
                         ) -> list[InboundUpdate]:
        """Verify, then parse a confirmations callback (a JSON list of
        `{event_id, reference, status, occurred_at, reason, service_point}`)."""
        signing.verify(self._verify_keys, headers, body, method=method, target=target,
                       nonces=nonces)
        return parse_confirmations(body)

    # -- the edge ------------------------------------------------------------

    def _call(self, method: str, path: str, payload: dict[str, Any], *,
              changes_state: bool) -> dict[str, Any]:
        body = json.dumps(payload, separators=(",", ":")).encode()
        response = self._exchange(method, path, body, changes_state=changes_state)
        try:
            answer = response.json()
        except ValueError as exc:
            error = AmbiguousOutcome if changes_state else TerminalError
            raise error(f"{self.partner_code}: {method} {path} answered "
                        f"{response.status_code} with a body that is not JSON") from exc
        if not isinstance(answer, dict):
            error = AmbiguousOutcome if changes_state else TerminalError
            raise error(f"{self.partner_code}: {method} {path} answered "
                        f"{response.status_code} with JSON that is not an object")
        return answer

    def _exchange(self, method: str, path: str, body: bytes, *,
                  changes_state: bool) -> httpx.Response:
        headers = {"Content-Type": "application/json",
                   **signing.sign(self._key, body, method=method, target=path)}
        where = f"{self.partner_code}: {method} {path}"
        try:
            response = self._client.request(method, path, content=body, headers=headers)
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
            # No connection, so no byte of the request reached the partner.
            raise RetryableError(f"{where}: partner unreachable ({exc!r})") from exc
        except (httpx.WriteError, httpx.WriteTimeout) as exc:
            # The body was not fully written: the partner cannot have parsed it.
            raise RetryableError(f"{where}: request not fully sent ({exc!r})") from exc
        except (httpx.ReadTimeout, httpx.ReadError, httpx.RemoteProtocolError) as exc:
            # The request was written; the partner may have acted on it.
            error = AmbiguousOutcome if changes_state else RetryableError
            raise error(f"{where}: no answer after the request was sent ({exc!r})") from exc
        except httpx.HTTPError as exc:
            # Anything else (bad URL, unsupported protocol) is our configuration.
            raise TerminalError(f"{where}: {exc!r}") from exc
        _raise_for_status(where, response)
        return response


def _raise_for_status(where: str, response: httpx.Response) -> None:
    code = response.status_code
    if code < 400:
        return
    message = f"{where}: HTTP {code}: {_error_text(response)}"
    if code >= 500 or code == 429:
        raise RetryableError(message)
    raise TerminalError(message)


def _error_text(response: httpx.Response) -> str:
    try:
        answer = response.json()
    except ValueError:
        return response.text[:ERROR_TEXT_MAX_CHARS]
    if isinstance(answer, dict) and isinstance(answer.get("error"), str):
        return answer["error"][:ERROR_TEXT_MAX_CHARS]
    return response.text[:ERROR_TEXT_MAX_CHARS]


def _transfer_json(transfer: OutboundTransfer) -> dict[str, Any]:
    return {"reference": transfer.reference,
            "amount_centimes": transfer.amount_centimes,
            "currency": transfer.currency,
            "channel": transfer.channel,
            "beneficiary_name": transfer.beneficiary_name,
            "national_id": transfer.national_id,
            "phone": transfer.phone,
            "account": transfer.account,
            "region_code": transfer.region_code,
            # cash: where to pay, and the code the beneficiary will present
            "service_point": transfer.service_point,
            "withdrawal_code": transfer.withdrawal_code}



def parse_confirmations(body: bytes) -> list[InboundUpdate]:
    """The REST partner's confirmation list as updates; raises `BadInboundMessage`."""
    try:
        items = json.loads(body)
    except ValueError as exc:
        raise BadInboundMessage(f"callback body is not JSON: {exc}") from None
    items = items if isinstance(items, list) else [items]
    updates = []
    for index, item in enumerate(items):
        try:
            occurred = item.get("occurred_at")
            updates.append(InboundUpdate(
                reference=str(item["reference"]), status=PartnerStatus(item["status"]),
                event_id=item.get("event_id"), reason=item.get("reason"),
                service_point=item.get("service_point"),
                occurred_at=datetime.fromisoformat(occurred) if occurred else None))
        except (AttributeError, KeyError, TypeError, ValueError) as exc:
            raise BadInboundMessage(f"callback item {index}: {exc!r}") from None
    return updates
