"""Chooses a connector implementation from the partner's configured protocol.

To add a protocol: write its connector (honouring `connectors.base.Connector`),
add one branch here, and one harness to `tests/conformance/harness.py`."""
from __future__ import annotations

from collections.abc import Sequence

from connectors.base import Connector
from connectors.file_exchange import FileExchangeConnector
from connectors.iso20022_bank import Iso20022BankConnector, NotificationReader, debtor
from connectors.rest import RestConnector
from connectors.sftp import SftpEndpoint
from connectors.wallet import WalletConnector
from disbursement.domain.routing import Partner


class UnsupportedProtocol(ValueError):
    """Raised when config/partners.toml names a protocol no connector speaks."""


def build_connector(partner: Partner, base_url: str, key: bytes, timeout_seconds: float,
                    verify_keys: Sequence[bytes] = ()) -> Connector:
    """`key` signs what we send; `verify_keys` (default: `key`) are accepted on
    what the partner sends, two of them during a key rotation."""
    if partner.protocol == "rest":
        return RestConnector(partner.code, base_url, key, timeout_seconds, verify_keys)
    if partner.protocol == "wallet":
        return WalletConnector(partner.code, base_url, key, timeout_seconds, verify_keys)
    raise UnsupportedProtocol(f"partner {partner.code}: "
                              f"no connector for protocol {partner.protocol!r}")


# Protocols that move files over the partner's SFTP server: no HMAC key, an SFTP
# login and a pinned host key instead (issue 3, file exchange).
FILE_PROTOCOLS = frozenset({"sftp_csv", "iso20022"})


def build_file_connector(partner: Partner, url: str, settings, timeout_seconds: float,
                         read_notifications: NotificationReader) -> Connector:
    """Raises SftpConfigError when the partner's SFTP endpoint or secrets are
    missing, BankConfigError when a bank's funding account is not configured."""
    secrets = settings.partner_sftp.get(partner.code)
    endpoint = SftpEndpoint.from_url(partner.code, url, secrets and secrets.host_key,
                                     secrets and secrets.password, secrets and secrets.key_file)
    if partner.protocol == "sftp_csv":
        return FileExchangeConnector(endpoint, timeout_seconds)
    return Iso20022BankConnector(endpoint, debtor(partner.code, partner.funding_account),
                                 read_notifications, timeout_seconds)
