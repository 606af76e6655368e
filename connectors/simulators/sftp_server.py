"""A small SFTP server over one folder, for the partner simulators.

paramiko's server side: `ServerInterface` checks the one user's password or
public key, `SFTPServerInterface` maps SFTP paths into the root folder (never
outside it). Loopback by default; the host key is generated at start and
published by the simulator so our client can pin it.
"""
from __future__ import annotations

import hmac
import os
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO

import paramiko
from paramiko.common import (
    AUTH_FAILED,
    AUTH_SUCCESSFUL,
    OPEN_FAILED_ADMINISTRATIVELY_PROHIBITED,
    OPEN_SUCCEEDED,
)
from paramiko.sftp import SFTP_FAILURE, SFTP_NO_SUCH_FILE, SFTP_OK, SFTP_PERMISSION_DENIED

ACCEPT_BACKLOG = 16
HANDSHAKE_TIMEOUT_SECONDS = 15.0


class LoginCheck(paramiko.ServerInterface):
    """One account: a password, an authorized public key, or both."""

    def __init__(self, username: str, password: str | None,
                 authorized_key: paramiko.PKey | None) -> None:
        self._username = username
        self._password = password
        self._authorized_key = authorized_key

    def get_allowed_auths(self, username: str) -> str:
        kinds = (["password"] if self._password else []) + (
            ["publickey"] if self._authorized_key else [])
        return ",".join(kinds)

    def check_auth_password(self, username: str, password: str) -> int:
        if (self._password and hmac.compare_digest(username, self._username)
                and hmac.compare_digest(password.encode(), self._password.encode())):
            return AUTH_SUCCESSFUL
        return AUTH_FAILED

    def check_auth_publickey(self, username: str, key: paramiko.PKey) -> int:
        if (self._authorized_key is not None and username == self._username
                and key.get_base64() == self._authorized_key.get_base64()):
            return AUTH_SUCCESSFUL
        return AUTH_FAILED

    def check_channel_request(self, kind: str, chanid: int) -> int:
        if kind == "session":
            return OPEN_SUCCEEDED
        return OPEN_FAILED_ADMINISTRATIVELY_PROHIBITED


def _sftp_status(exc: OSError) -> int:
    """The SFTP status for a failed file operation (an OSError without errno: a failure)."""
    return paramiko.SFTPServer.convert_errno(exc.errno or 0)


class _Handle(paramiko.SFTPHandle):
    # paramiko's SFTPHandle reads and writes through these attributes, set by `open`.
    filename: str
    readfile: IO[bytes]
    writefile: IO[bytes]

    def stat(self) -> paramiko.SFTPAttributes | int:
        try:
            return paramiko.SFTPAttributes.from_stat(os.fstat(self.readfile.fileno()))
        except OSError as exc:
            return _sftp_status(exc)


class RootedSftp(paramiko.SFTPServerInterface):
    """SFTP operations confined to `root`."""

    def __init__(self, server: paramiko.ServerInterface, root: str,
                 on_rename: Callable[[str], tuple[bool, float]] | None = None) -> None:
        super().__init__(server)
        self._root = Path(root).resolve()
        # The simulator's say on a rename that completes a delivery: whether to
        # do it, and how long to hold the answer back (the faults "accepted,
        # then no answer" and "lost request").
        self._on_rename = on_rename or (lambda name: (True, 0.0))

    def _real(self, path: str) -> Path | None:
        real = (self._root / self.canonicalize(path).lstrip("/")).resolve()
        return real if real == self._root or self._root in real.parents else None

    def _errno(self, call: Callable[[], object]) -> int:
        try:
            call()
        except OSError as exc:
            return _sftp_status(exc)
        return SFTP_OK

    def list_folder(self, path: str):
        real = self._real(path)
        if real is None:
            return SFTP_PERMISSION_DENIED
        try:
            out = []
            for name in os.listdir(real):
                attributes = paramiko.SFTPAttributes.from_stat(os.stat(real / name))
                attributes.filename = name
                out.append(attributes)
            return out
        except OSError as exc:
            return _sftp_status(exc)

    def stat(self, path: str):
        real = self._real(path)
        if real is None:
            return SFTP_PERMISSION_DENIED
        try:
            return paramiko.SFTPAttributes.from_stat(os.stat(real))
        except OSError as exc:
            return _sftp_status(exc)

    lstat = stat

    def open(self, path: str, flags: int, attr: paramiko.SFTPAttributes):
        real = self._real(path)
        if real is None:
            return SFTP_PERMISSION_DENIED
        try:
            fd = os.open(real, flags, 0o640)
        except OSError as exc:
            return _sftp_status(exc)
        if flags & os.O_WRONLY:
            mode = "ab" if flags & os.O_APPEND else "wb"
        elif flags & os.O_RDWR:
            mode = "a+b" if flags & os.O_APPEND else "r+b"
        else:
            mode = "rb"
        handle = _Handle(flags)
        handle.filename = str(real)
        handle.readfile = handle.writefile = os.fdopen(fd, mode)
        return handle

    def remove(self, path: str) -> int:
        real = self._real(path)
        return SFTP_PERMISSION_DENIED if real is None else self._errno(lambda: os.remove(real))

    def rename(self, oldpath: str, newpath: str) -> int:
        old, new = self._real(oldpath), self._real(newpath)
        if old is None or new is None:
            return SFTP_PERMISSION_DENIED
        if new.exists():
            return SFTP_FAILURE      # SFTP rename never overwrites; posix_rename does
        return self._errno(lambda: os.rename(old, new))

    def posix_rename(self, oldpath: str, newpath: str) -> int:
        old, new = self._real(oldpath), self._real(newpath)
        if old is None or new is None:
            return SFTP_PERMISSION_DENIED
        perform, delay = self._on_rename(new.name)
        result = self._errno(lambda: os.replace(old, new)) if perform else SFTP_OK
        if not perform:
            old.unlink(missing_ok=True)
        if delay:
            time.sleep(delay)
        return result

    def mkdir(self, path: str, attr: paramiko.SFTPAttributes) -> int:
        real = self._real(path)
        return SFTP_PERMISSION_DENIED if real is None else self._errno(lambda: os.mkdir(real))

    def rmdir(self, path: str) -> int:
        real = self._real(path)
        return SFTP_PERMISSION_DENIED if real is None else self._errno(lambda: os.rmdir(real))

    def chattr(self, path: str, attr: paramiko.SFTPAttributes) -> int:
        return SFTP_OK if self._real(path) is not None else SFTP_NO_SUCH_FILE


class SftpServer:
    """Accepts SSH connections on a loopback port and serves SFTP over `root`.

    `refuse()` answers True while the simulator wants connections refused;
    `latency()` gives seconds to wait before each handshake."""

    def __init__(self, root: Path, login: LoginCheck, host_key: paramiko.PKey,
                 host: str = "127.0.0.1", port: int = 0,
                 refuse: Callable[[], bool] = lambda: False,
                 latency: Callable[[], float] = lambda: 0.0,
                 on_rename: Callable[[str], tuple[bool, float]] | None = None) -> None:
        self.root = root
        self.host_key = host_key
        self._login = login
        self._refuse = refuse
        self._latency = latency
        self._on_rename = on_rename
        self._socket = socket.create_server((host, port), backlog=ACCEPT_BACKLOG)
        self._socket.settimeout(0.5)
        self.port = self._socket.getsockname()[1]
        self._stopped = threading.Event()
        # Each live transport with its accepted channel: the transport holds its
        # channels weakly, so an unreferenced channel would be closed under the client.
        self._sessions: list[tuple[paramiko.Transport, paramiko.Channel | None]] = []
        self._thread = threading.Thread(target=self._accept_loop, name="sftp-accept", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopped.set()
        self._thread.join()
        self._socket.close()
        for transport, _ in self._sessions:
            transport.close()

    def _accept_loop(self) -> None:
        while not self._stopped.is_set():
            try:
                conn, _ = self._socket.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            if self._refuse():
                conn.close()          # the client sees the connection cut at once
                continue
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        delay = self._latency()
        if delay:
            time.sleep(delay)
        transport = paramiko.Transport(conn)
        transport.add_server_key(self.host_key)
        transport.set_subsystem_handler("sftp", paramiko.SFTPServer, RootedSftp,
                                        root=str(self.root), on_rename=self._on_rename)
        try:
            transport.start_server(server=self._login)
        except (paramiko.SSHException, EOFError, OSError):
            transport.close()
            return
        channel = transport.accept(HANDSHAKE_TIMEOUT_SECONDS)
        if channel is None:
            transport.close()
        self._sessions = [s for s in self._sessions if s[0].is_active()] + [(transport, channel)]
