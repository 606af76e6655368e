"""SFTP transport for the file-based connectors (file exchange, ISO 20022 banks).

The partner's server is reached at `sftp://user@host:port/root`; its host key is
pinned (given in configuration, never learnt on first use) and our credentials
come from the environment by reference (`settings.SftpSecrets`). Every
paramiko and socket error is translated here into the errors of
`connectors.base`:

- no session could be opened (refused, unreachable, handshake cut): nothing
  reached the partner, `RetryableError`;
- the partner's host key is not the pinned one, or it refuses our credentials:
  `TerminalError` (retrying will not change it, and we must not talk to an
  impostor);
- an upload failed before its final rename: the partner cannot see a file
  under a temporary name, `RetryableError`; the rename itself failed with no
  answer: `AmbiguousOutcome`.
"""
from __future__ import annotations

import base64
import posixpath
import stat
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

import paramiko

from connectors.base import AmbiguousOutcome, RetryableError, TerminalError

# Files being written carry this prefix until renamed: readers skip them.
PARTIAL_PREFIX = ".part-"


class SftpConfigError(ValueError):
    """Raised when a partner's SFTP endpoint, credentials or host key are
    missing or malformed in the configuration."""


@dataclass(frozen=True)
class SftpEndpoint:
    partner_code: str
    host: str
    port: int
    username: str
    root: str
    host_key: paramiko.PKey
    password: str | None = None
    key_file: str | None = None

    @classmethod
    def from_url(cls, partner_code: str, url: str, host_key: str | None,
                 password: str | None = None, key_file: str | None = None) -> SftpEndpoint:
        """Raises SftpConfigError when the URL is not sftp://user@host:port/root,
        the host key is missing or unreadable, or no credential is given."""
        parts = urlsplit(url)
        if parts.scheme != "sftp" or not parts.hostname or not parts.username:
            raise SftpConfigError(f"partner {partner_code}: endpoint {url!r} is not "
                                  "sftp://user@host:port/root")
        if not host_key:
            raise SftpConfigError(f"partner {partner_code}: no pinned host key: set "
                                  f"PARTNER_{partner_code}_SFTP_HOST_KEY")
        if not password and not key_file:
            raise SftpConfigError(f"partner {partner_code}: no SFTP credential: set "
                                  f"PARTNER_{partner_code}_SFTP_PASSWORD or _SFTP_KEY_FILE")
        return cls(partner_code, parts.hostname, parts.port or 22, unquote(parts.username),
                   parts.path or "/", parse_host_key(partner_code, host_key), password, key_file)


def parse_host_key(partner_code: str, text: str) -> paramiko.PKey:
    """`<type> <base64>` (a known_hosts entry without its host name)."""
    try:
        key_type, blob = text.split()[:2]
        return paramiko.PKey.from_type_string(key_type, base64.b64decode(blob))
    except (ValueError, paramiko.SSHException) as exc:
        raise SftpConfigError(f"partner {partner_code}: host key is not "
                              f"'<type> <base64>': {exc}") from exc


def host_key_line(key: paramiko.PKey) -> str:
    return f"{key.get_name()} {key.get_base64()}"


class SftpSession:
    """One SSH connection and its SFTP channel, opened on first use."""

    def __init__(self, endpoint: SftpEndpoint, timeout_seconds: float) -> None:
        self.endpoint = endpoint
        self._timeout = timeout_seconds
        self._client: paramiko.SSHClient | None = None
        self._sftp: paramiko.SFTPClient | None = None

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
        self._client = self._sftp = None

    def _where(self) -> str:
        return f"{self.endpoint.partner_code}: sftp {self.endpoint.host}:{self.endpoint.port}"

    def _open(self) -> paramiko.SFTPClient:
        if self._sftp is not None:
            return self._sftp
        e = self.endpoint
        client = paramiko.SSHClient()
        name = e.host if e.port == 22 else f"[{e.host}]:{e.port}"
        client.get_host_keys().add(name, e.host_key.get_name(), e.host_key)
        client.set_missing_host_key_policy(paramiko.RejectPolicy())
        try:
            client.connect(e.host, e.port, username=e.username, password=e.password,
                           key_filename=e.key_file, look_for_keys=False, allow_agent=False,
                           timeout=self._timeout, banner_timeout=self._timeout,
                           auth_timeout=self._timeout, channel_timeout=self._timeout)
            sftp = client.open_sftp()
            channel = sftp.get_channel()
            if channel is not None:  # None only for a client closed meanwhile
                channel.settimeout(self._timeout)
        except (paramiko.BadHostKeyException, paramiko.AuthenticationException) as exc:
            client.close()
            raise TerminalError(f"{self._where()}: {type(exc).__name__}: {exc}") from exc
        except (OSError, EOFError, paramiko.SSHException) as exc:
            client.close()
            raise RetryableError(f"{self._where()}: cannot connect ({exc!r})") from exc
        self._client, self._sftp = client, sftp
        return sftp

    def _path(self, *parts: str) -> str:
        return posixpath.join(self.endpoint.root, *parts)

    def _failed(self, exc: BaseException, what: str, error: type[Exception]) -> Exception:
        self.close()   # a broken channel is never reused
        return error(f"{self._where()}: {what} ({exc!r})")

    def listdir(self, folder: str) -> list[str]:
        """Names of the regular files in `folder`, sorted; partial uploads skipped."""
        sftp = self._open()
        try:
            entries = sftp.listdir_attr(self._path(folder))
        except (OSError, EOFError, paramiko.SSHException) as exc:
            raise self._failed(exc, f"cannot list {folder}", RetryableError) from exc
        return sorted(a.filename for a in entries if stat.S_ISREG(a.st_mode or 0)
                      and not a.filename.startswith(PARTIAL_PREFIX))

    def read(self, folder: str, name: str) -> bytes | None:
        """The file's bytes, or None when it does not exist."""
        sftp = self._open()
        try:
            with sftp.open(self._path(folder, name), "rb") as handle:
                handle.prefetch()
                return handle.read()
        except FileNotFoundError:
            return None
        except (OSError, EOFError, paramiko.SSHException) as exc:
            raise self._failed(exc, f"cannot read {folder}/{name}", RetryableError) from exc

    def upload(self, folder: str, name: str, data: bytes) -> None:
        """Writes under a temporary name, then renames: the partner sees the whole
        file or none of it. Rewriting the same name replaces it (idempotent)."""
        sftp = self._open()
        partial = self._path(folder, PARTIAL_PREFIX + name)
        try:
            with sftp.open(partial, "wb") as handle:
                handle.set_pipelined(True)
                handle.write(data)
        except (OSError, EOFError, paramiko.SSHException) as exc:
            raise self._failed(exc, f"upload of {folder}/{name} failed", RetryableError) from exc
        try:
            sftp.posix_rename(partial, self._path(folder, name))
        except (TimeoutError, OSError, EOFError, paramiko.SSHException) as exc:
            raise self._failed(exc, f"rename of {folder}/{name} unanswered",
                               AmbiguousOutcome) from exc
