"""Chooses a connector implementation from the partner's configured protocol."""
from __future__ import annotations

from connectors.base import Connector
from disbursement.domain.routing import Partner


class UnsupportedProtocol(ValueError):
    """Raised when config/partners.toml names a protocol no connector speaks."""


def build_connector(partner: Partner, base_url: str, key: bytes,
                    timeout_seconds: float) -> Connector:
    if partner.protocol == "rest":
        from connectors.rest import RestConnector

        return RestConnector(partner.code, base_url, key, timeout_seconds)
    raise UnsupportedProtocol(f"partner {partner.code}: no connector for protocol {partner.protocol!r}")
