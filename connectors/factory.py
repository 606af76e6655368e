"""Chooses a connector implementation from the partner's configured protocol.

To add a protocol: write its connector (honouring `connectors.base.Connector`),
add one branch here, and one harness to `tests/conformance/harness.py`."""
from __future__ import annotations

from typing import Sequence

from connectors.base import Connector
from disbursement.domain.routing import Partner


class UnsupportedProtocol(ValueError):
    """Raised when config/partners.toml names a protocol no connector speaks."""


def build_connector(partner: Partner, base_url: str, key: bytes, timeout_seconds: float,
                    verify_keys: Sequence[bytes] = ()) -> Connector:
    """`key` signs what we send; `verify_keys` (default: `key`) are accepted on
    what the partner sends, two of them during a key rotation."""
    if partner.protocol == "rest":
        from connectors.rest import RestConnector

        return RestConnector(partner.code, base_url, key, timeout_seconds, verify_keys)
    if partner.protocol == "wallet":
        from connectors.wallet import WalletConnector

        return WalletConnector(partner.code, base_url, key, timeout_seconds, verify_keys)
    raise UnsupportedProtocol(f"partner {partner.code}: no connector for protocol {partner.protocol!r}")
