"""The connector contract every partner protocol honours.

A connector speaks one protocol to one partner. The core hands it chunks of
`OutboundTransfer`s and reads back `SendResult`s; it never sees HTTP, SFTP or
XML. Third-party errors are translated here, at the edge, into the three
errors below so the dispatch job knows whether to retry, stop, or ask.
"""
from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol, runtime_checkable

from connectors.signing import NonceStore
from disbursement.domain.errors import BadInput

# What REST partners and wallet operators send their callbacks as.
JSON_MEDIA_TYPE = "application/json"


class PartnerStatus(enum.StrEnum):
    """What a partner says about one reference."""

    RECEIVED = "received"      # partner holds the instruction (our `sent`)
    AVAILABLE = "available"    # funds ready for collection / credited pending
    PAID = "paid"              # collected or credited
    REJECTED = "rejected"      # definitive no (invalid account, identity...)
    CANCELLED = "cancelled"    # cancelled before collection
    EXPIRED = "expired"        # made available, never collected in time
    NOT_FOUND = "not_found"    # partner never received it: safe to resend


@dataclass(frozen=True, slots=True)
class OutboundTransfer:
    reference: str
    amount_centimes: int
    currency: str
    channel: str                    # "cash" | "wallet" | "bank"
    beneficiary_name: str
    national_id: str
    phone: str | None
    account: str | None
    region_code: str
    service_point: str | None = None      # cash: where the beneficiary collects
    withdrawal_code: str | None = None    # cash: one-time code; never logged or stored in clear
    wallet_tier: int | None = None        # wallet: Bank Al-Maghrib tier (1, 2, 3)


@dataclass(frozen=True, slots=True)
class SendResult:
    reference: str
    status: PartnerStatus           # RECEIVED when accepted, REJECTED otherwise
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class InboundUpdate:
    """One partner message about one transfer, whatever carried it (a signed
    callback, a status file, a pain.002 or camt.054). `event_id` identifies the
    message so a replay changes nothing."""
    reference: str
    status: PartnerStatus
    event_id: str | None = None
    reason: str | None = None
    service_point: str | None = None
    occurred_at: datetime | None = None

    def as_confirmation(self) -> dict:
        """The shape `disbursement.services.tracking.confirmations.apply` takes."""
        return {"event_id": self.event_id, "reference": self.reference,
                "status": self.status.value, "occurred_at": self.occurred_at,
                "reason": self.reason, "service_point": self.service_point}


class ConnectorError(Exception):
    """Base of every error a connector raises."""


class RetryableError(ConnectorError):
    """Raised when the partner did not take the chunk and said so (5xx, refused
    connection): sending the same chunk again later is safe."""


class TerminalError(ConnectorError):
    """Raised when the partner refuses the request itself (4xx other than
    throttling, bad signature): resending unchanged will fail again."""


class AmbiguousOutcome(ConnectorError):
    """Raised when we cannot know whether the partner took the chunk (read
    timeout after the request was sent). Transfers become `unknown` and the next
    attempt must ask `status()` before any resend."""


class BadInboundMessage(ConnectorError, BadInput):
    """Raised when a verified partner message does not have the protocol's
    shape (not JSON, unknown status word, missing reference): nothing of it is
    applied."""


class Connector(Protocol):
    partner_code: str

    def send(self, transfers: Sequence[OutboundTransfer]) -> list[SendResult]:
        """Deliver a chunk. Idempotent on the partner side by reference."""

    def status(self, references: Sequence[str]) -> dict[str, PartnerStatus]:
        """Ask the partner what it knows of each reference."""

    def cancel(self, reference: str) -> PartnerStatus:
        """Cancel a transfer not yet collected; returns the partner's status."""

    def collect(self) -> list[InboundUpdate]:
        """Pull what the partner produced since the last call (status files,
        pain.002, camt.054). Push protocols (REST callbacks) return []."""


@runtime_checkable
class PushConnector(Connector, Protocol):
    """A connector whose partner pushes signed callbacks to us (REST, wallet).
    Runtime-checkable: the inbound endpoint refuses a partner whose connector is not one.
    `callback_media_type` is the Content-Type its callbacks carry; the inbound
    endpoint refuses any other (415)."""

    callback_media_type: str

    def receive_callback(self, method: str, target: str, headers: Mapping[str, str],
                         body: bytes, nonces: NonceStore | None = None) -> list[InboundUpdate]:
        """Verify the callback's signature (and nonce) before parsing it into
        updates. Raises `connectors.signing.SignatureError` or `BadInboundMessage`."""

    def close(self) -> None:
        """Release the HTTP client."""
