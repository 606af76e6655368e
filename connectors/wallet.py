"""Mobile wallet connector: msisdn-addressed disbursements over the wallet
operator's HTTP JSON API, signed both ways like the REST protocol.

    POST /v1/disbursements               {"items": [{reference, msisdn, amount, currency, ...}]}
    POST /v1/disbursements/query         {"references": [...]}
    POST /v1/disbursements/<ref>/cancel  {"reference": ...}
    callbacks                            {"notifications": [{id, reference, state, timestamp,
                                                             error_code, error_message}]}

Amounts travel as decimal strings ("700.00"), states in the operator's words
(ACCEPTED, CREDITED, FAILED...). Both are translated here, at the edge; the
transport and its errors are the REST connector's (same HTTP rules).
"""
from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any
from urllib.parse import quote

from connectors import signing
from connectors.base import (
    AmbiguousOutcome,
    BadInboundMessage,
    InboundUpdate,
    OutboundTransfer,
    PartnerStatus,
    SendResult,
    TerminalError,
)
from connectors.rest import RestConnector
from disbursement.domain.money import format_units

# The operator's state words <-> ours.
STATE_TO_STATUS = {
    "ACCEPTED": PartnerStatus.RECEIVED,
    "PENDING_CLAIM": PartnerStatus.AVAILABLE,
    "CREDITED": PartnerStatus.PAID,
    "FAILED": PartnerStatus.REJECTED,
    "CANCELLED": PartnerStatus.CANCELLED,
    "EXPIRED": PartnerStatus.EXPIRED,
    "UNKNOWN_REFERENCE": PartnerStatus.NOT_FOUND,
}
STATUS_TO_STATE = {status: state for state, status in STATE_TO_STATUS.items()}


class WalletConnector(RestConnector):
    """One wallet operator. Transfers must carry the beneficiary's mobile number."""

    def send(self, transfers: Sequence[OutboundTransfer]) -> list[SendResult]:
        if not transfers:
            return []
        body = {"items": [_item(t) for t in transfers]}
        answer = self._call("POST", "/v1/disbursements", body, changes_state=True)
        try:
            by_reference = {i["reference"]: i for i in answer["items"]}
            return [_send_result(by_reference[t.reference]) for t in transfers]
        except (KeyError, TypeError, ValueError) as exc:
            raise AmbiguousOutcome(
                f"{self.partner_code}: disbursement answer is malformed ({exc!r})") from exc

    def status(self, references: Sequence[str]) -> dict[str, PartnerStatus]:
        if not references:
            return {}
        answer = self._call("POST", "/v1/disbursements/query",
                            {"references": list(references)}, changes_state=False)
        try:
            states = {i["reference"]: i["state"] for i in answer["items"]}
            return {ref: STATE_TO_STATUS[states[ref]] for ref in references}
        except (KeyError, TypeError) as exc:
            raise TerminalError(
                f"{self.partner_code}: query answer is malformed ({exc!r})") from exc

    def cancel(self, reference: str) -> PartnerStatus:
        answer = self._call("POST", f"/v1/disbursements/{quote(reference, safe='')}/cancel",
                            {"reference": reference}, changes_state=True)
        try:
            if answer["reference"] != reference:
                raise ValueError(f"answer is about {answer['reference']!r}")
            return STATE_TO_STATUS[answer["state"]]
        except (KeyError, TypeError, ValueError) as exc:
            raise AmbiguousOutcome(
                f"{self.partner_code}: cancel answer is malformed ({exc!r})") from exc

    def receive_callback(self, method: str, target: str, headers: Mapping[str, str],
                         body: bytes, nonces: signing.NonceStore | None = None
                         ) -> list[InboundUpdate]:
        signing.verify(self._verify_keys, headers, body, method=method, target=target,
                       nonces=nonces)
        return parse_notifications(body)


def _item(transfer: OutboundTransfer) -> dict[str, Any]:
    if not transfer.phone:
        # Dispatch refuses wallet transfers without a valid number before
        # calling us: reaching here is a programming error, not partner data.
        raise TerminalError(f"wallet transfer {transfer.reference} has no mobile number")
    return {"reference": transfer.reference, "msisdn": transfer.phone,
            "amount": format_units(transfer.amount_centimes), "currency": transfer.currency,
            "beneficiary_name": transfer.beneficiary_name, "tier": transfer.wallet_tier}


def _send_result(item: Mapping[str, Any]) -> SendResult:
    status = STATE_TO_STATUS[item["state"]]
    reason = None
    if status == PartnerStatus.REJECTED:
        reason = " ".join(p for p in (item.get("error_code"), item.get("error_message")) if p)
    return SendResult(reference=item["reference"], status=status, reason=reason or None)


def parse_notifications(body: bytes) -> list[InboundUpdate]:
    """The operator's notifications as updates; raises `BadInboundMessage`."""
    try:
        notifications = json.loads(body)["notifications"]
        if not isinstance(notifications, list):
            raise TypeError("notifications is not a list")
    except (ValueError, KeyError, TypeError) as exc:
        raise BadInboundMessage(f"wallet callback is not a notification list: {exc!r}") from None
    updates = []
    for index, n in enumerate(notifications):
        try:
            status = STATE_TO_STATUS[n["state"]]
            reason = " ".join(p for p in (n.get("error_code"), n.get("error_message")) if p)
            updates.append(InboundUpdate(
                reference=str(n["reference"]), status=status, event_id=str(n["id"]),
                reason=reason or None, occurred_at=datetime.fromisoformat(n["timestamp"])))
        except (KeyError, TypeError, ValueError) as exc:
            raise BadInboundMessage(f"wallet notification {index}: {exc!r}") from None
    return updates
