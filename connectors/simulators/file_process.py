"""Run a file-based partner simulator (SFTP CSV, ISO 20022 bank) as a child
process and drive its /_sim controls: for the end-to-end tests and the demo.

The child prints one ready line (see `connectors.simulators.file_partner`);
from it we learn the SFTP URL, the control URL and the host key to pin, and
`settings_env()` gives the environment our service needs to reach it.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from connectors.simulators.process import SimulatorProcess, SimulatorStartError  # noqa: F401

MODULES = {"sftp": "connectors.simulators.sftp", "iso20022": "connectors.simulators.iso20022"}


class FileSimulatorProcess(SimulatorProcess):
    """An SFTP partner simulator: its SFTP URL, control URL and host key to pin."""

    partner_code: str
    password: str
    sftp_url: str = ""
    host_key: str = ""

    @classmethod
    def start(cls, protocol: str, partner_code: str, root: Path, password: str, *extra_args: str,
              log_path: Path, ready_timeout_seconds: float = 20.0) -> FileSimulatorProcess:
        """Start on free loopback ports; the simulator's stderr goes to `log_path`."""
        env_name = f"SIM_{partner_code.upper()}_SFTP_PASSWORD"
        args = ["--partner", partner_code, "--root", str(root), "--port", "0",
                "--password-env", env_name, *extra_args]
        return cls._launch(MODULES[protocol], args, {**os.environ, env_name: password}, log_path,
                           ready_timeout_seconds, partner_code=partner_code, password=password)

    def _ready(self, words: str) -> None:
        parts = words.split()
        self.sftp_url = parts[0]
        self.control_url = parts[parts.index("control") + 1]
        key_at = parts.index("host-key")
        self.host_key = " ".join(parts[key_at + 1:key_at + 3])

    def settings_env(self) -> dict[str, str]:
        """Environment variables that point our service at this simulator."""
        code = self.partner_code
        return {f"PARTNER_{code}_URL": self.sftp_url,
                f"PARTNER_{code}_SFTP_PASSWORD": self.password,
                f"PARTNER_{code}_SFTP_HOST_KEY": self.host_key}

    def advance(self) -> dict[str, Any]:
        return self.control("POST", "/_sim/advance", {})

    def settlement(self) -> dict[str, Any]:
        return self.control("POST", "/_sim/settlement", {})
