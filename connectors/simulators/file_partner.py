"""What every file-based partner simulator shares: an SFTP server over a folder,
a loop that picks up complete files from `inbox/`, a loopback HTTP control
endpoint (`/_sim/...`), and the ready line that tells the parent where all of
it listens and which host key to pin:

    ready on sftp://USER@127.0.0.1:PORT/ control http://127.0.0.1:PORT host-key TYPE BASE64
"""
from __future__ import annotations

import base64
import os
import signal
import threading
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

import click
import paramiko
from flask import Flask
from werkzeug.serving import make_server

from connectors.file_format import CHECKSUM_SUFFIX
from connectors.sftp import PARTIAL_PREFIX, host_key_line
from connectors.simulators.sftp_server import LoginCheck, SftpServer

FOLDERS = ("inbox", "outbox", "archive")


class InboxHandler(Protocol):
    def take(self, name: str, data: bytes, checksum: bytes | None) -> None:
        """Acts on one complete inbox file (already moved out of the inbox)."""

    def refuse_connections(self) -> bool: ...

    def latency_seconds(self) -> float: ...

    def on_rename(self, name: str) -> tuple[bool, float]:
        """Whether to complete a rename into `name`, and seconds to hold the answer."""


class Folders:
    """The partner's side of the folders: atomic writes, inbox pickup."""

    def __init__(self, root: Path, require_checksum: bool = True) -> None:
        self.root = root
        # CSV partners wait for the checksum file; banks take a file once renamed.
        self.require_checksum = require_checksum
        for folder in FOLDERS:
            (root / folder).mkdir(parents=True, exist_ok=True)

    def write(self, folder: str, name: str, data: bytes) -> None:
        partial = self.root / folder / (PARTIAL_PREFIX + name)
        partial.write_bytes(data)
        os.replace(partial, self.root / folder / name)

    def pending(self) -> int:
        """Complete inbox files not yet picked up."""
        inbox = self.root / "inbox"
        return sum(1 for p in inbox.iterdir() if not p.name.startswith(PARTIAL_PREFIX)
                   and not p.name.endswith(CHECKSUM_SUFFIX)
                   and (not self.require_checksum
                        or (inbox / (p.name + CHECKSUM_SUFFIX)).exists()))

    def pickup(self) -> list[tuple[str, bytes, bytes | None]]:
        """Complete inbox files (renamed into place, and with their checksum file
        when one is required), moved to archive/."""
        inbox = self.root / "inbox"
        taken = []
        for path in sorted(inbox.iterdir()):
            name = path.name
            checksum_path = inbox / (name + CHECKSUM_SUFFIX)
            if name.startswith(PARTIAL_PREFIX) or name.endswith(CHECKSUM_SUFFIX):
                continue
            if self.require_checksum and not checksum_path.exists():
                continue
            data = path.read_bytes()
            checksum = checksum_path.read_bytes() if checksum_path.exists() else None
            os.replace(path, self.root / "archive" / name)
            if checksum is not None:
                os.replace(checksum_path, self.root / "archive" / checksum_path.name)
            taken.append((name, data, checksum))
        return taken


class InboxLoop(threading.Thread):
    """Picks up inbox files every `seconds`; a failure stops the simulator loudly
    (a partner that silently stops reading would look like one that never pays)."""

    def __init__(self, folders: Folders, handler: InboxHandler, lock: threading.Lock,
                 seconds: float, on_crash: Callable[[], None]) -> None:
        super().__init__(name="inbox-loop", daemon=True)
        self._folders, self._handler, self._lock = folders, handler, lock
        self._seconds, self._on_crash = seconds, on_crash
        self._stopped = threading.Event()

    def run(self) -> None:
        try:
            while not self._stopped.wait(self._seconds):
                with self._lock:
                    for name, data, checksum in self._folders.pickup():
                        self._handler.take(name, data, checksum)
        except Exception:
            traceback.print_exc()
            self._on_crash()

    def stop(self) -> None:
        self._stopped.set()


def login_from_options(partner_code: str, user: str, password_env: str | None,
                       authorized_key: str | None) -> LoginCheck:
    """Raises click.UsageError when no credential is configured: never a default password."""
    env_name = password_env or f"PARTNER_{partner_code.upper()}_SFTP_PASSWORD"
    password = os.environ.get(env_name) or None
    key = None
    if authorized_key:
        key_type, blob = Path(authorized_key).read_text().split()[:2]
        key = paramiko.PKey.from_type_string(key_type, base64.b64decode(blob))
    if not password and key is None:
        raise click.UsageError(f"set {env_name} or pass --authorized-key: refusing to serve "
                               "SFTP without a credential")
    return LoginCheck(user, password, key)


def serve(folders: Folders, handler: InboxHandler, login: LoginCheck, user: str,
          control: Flask, lock: threading.Lock, host: str, port: int,
          poll_seconds: float) -> None:
    """Runs until SIGTERM or Ctrl-C; prints the ready line first."""
    host_key = paramiko.ECDSAKey.generate()
    sftp = SftpServer(folders.root, login, host_key, host, port,
                      refuse=handler.refuse_connections, latency=handler.latency_seconds,
                      on_rename=handler.on_rename)
    http = make_server(host, 0, control, threaded=True)
    crashed = threading.Event()

    def crash() -> None:
        crashed.set()
        http.shutdown()

    loop = InboxLoop(folders, handler, lock, poll_seconds, crash)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    print(f"ready on sftp://{user}@{host}:{sftp.port}/ control http://{host}:{http.server_port} "
          f"host-key {host_key_line(host_key)}", flush=True)
    sftp.start()
    loop.start()
    try:
        http.serve_forever()
    finally:
        loop.stop()
        sftp.stop()
        http.server_close()
    if crashed.is_set():
        raise SystemExit(1)
