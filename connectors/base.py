"""The connector contract every partner protocol honours.

A connector speaks one protocol to one partner. The core hands it chunks of
`OutboundTransfer`s and reads back `SendResult`s; it never sees HTTP, SFTP or
XML. Third-party errors are translated here, at the edge, into the three
errors below so the dispatch job knows whether to retry, stop, or ask.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Protocol, Sequence


class PartnerStatus(enum.StrEnum):
    """What a partner says about one reference."""

    RECEIVED = "received"      # partner holds the instruction (our `sent`)
    AVAILABLE = "available"    # funds ready for collection / credited pending
    PAID = "paid"              # collected or credited
    REJECTED = "rejected"      # definitive no (invalid account, identity...)
    CANCELLED = "cancelled"    # cancelled before collection
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


@dataclass(frozen=True, slots=True)
class SendResult:
    reference: str
    status: PartnerStatus           # RECEIVED when accepted, REJECTED otherwise
    reason: str | None = None


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


class Connector(Protocol):
    partner_code: str

    def send(self, transfers: Sequence[OutboundTransfer]) -> list[SendResult]:
        """Deliver a chunk. Idempotent on the partner side by reference."""

    def status(self, references: Sequence[str]) -> dict[str, PartnerStatus]:
        """Ask the partner what it knows of each reference."""

    def cancel(self, reference: str) -> PartnerStatus:
        """Cancel a transfer not yet collected; returns the partner's status."""
