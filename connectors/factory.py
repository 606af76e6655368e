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


# Protocols that move files over the partner's SFTP server: no HMAC key, an SFTP
# login and a pinned host key instead (issue 3, file exchange).
FILE_PROTOCOLS = frozenset({"sftp_csv", "iso20022"})


def build_file_connector(partner: Partner, url: str, settings, timeout_seconds: float) -> Connector:
    """Raises SftpConfigError when the partner's SFTP endpoint or secrets are
    missing, BankConfigError when a bank's funding account is not configured."""
    from connectors.sftp import SftpEndpoint

    secrets = settings.partner_sftp.get(partner.code)
    endpoint = SftpEndpoint.from_url(partner.code, url, secrets and secrets.host_key,
                                     secrets and secrets.password, secrets and secrets.key_file)
    if partner.protocol == "sftp_csv":
        from connectors.file_exchange import FileExchangeConnector

        return FileExchangeConnector(endpoint, timeout_seconds)
    from connectors.iso20022_bank import Iso20022BankConnector, funding_account

    return Iso20022BankConnector(endpoint, funding_account(settings.config_dir, partner.code),
                                 timeout_seconds)
