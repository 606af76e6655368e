"""Run a file-based partner simulator (SFTP CSV, ISO 20022 bank) as a child
process and drive its /_sim controls: for the end-to-end tests and the demo.

The child prints one ready line (see `connectors.simulators.file_partner`);
from it we learn the SFTP URL, the control URL and the host key to pin, and
`settings_env()` gives the environment our service needs to reach it.
"""
from __future__ import annotations

import os
import select
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx

PROJECT_ROOT = Path(__file__).resolve().parents[2]
MODULES = {"sftp": "connectors.simulators.sftp", "iso20022": "connectors.simulators.iso20022"}
READY_PREFIX = "ready on "
CONTROL_TIMEOUT_SECONDS = 30.0
STOP_TIMEOUT_SECONDS = 10.0


class SimulatorStartError(RuntimeError):
    """Raised when the simulator exits, or stays silent past the deadline,
    instead of printing its ready line."""


class FileSimulatorProcess:
    def __init__(self, process: subprocess.Popen[str], partner_code: str, password: str,
                 log_path: Path) -> None:
        self.process = process
        self.partner_code = partner_code
        self.password = password
        self.log_path = log_path
        self.sftp_url = self.control_url = self.host_key = ""
        self._control = httpx.Client(timeout=CONTROL_TIMEOUT_SECONDS)

    @classmethod
    def start(cls, protocol: str, partner_code: str, root: Path, password: str, *extra_args: str,
              log_path: Path, ready_timeout_seconds: float = 20.0) -> FileSimulatorProcess:
        """Start on free loopback ports; the simulator's stderr goes to `log_path`."""
        env_name = f"SIM_{partner_code.upper()}_SFTP_PASSWORD"
        command = [sys.executable, "-m", MODULES[protocol], "--partner", partner_code,
                   "--root", str(root), "--port", "0", "--password-env", env_name, *extra_args]
        with log_path.open("wb") as log:
            process = subprocess.Popen(command, cwd=PROJECT_ROOT, stdout=subprocess.PIPE,
                                       stderr=log, text=True, env={**os.environ, env_name: password})
        simulator = cls(process, partner_code, password, log_path)
        try:
            simulator._wait_ready(ready_timeout_seconds)
        except BaseException:
            simulator.stop()
            raise
        return simulator

    def _wait_ready(self, timeout_seconds: float) -> None:
        assert self.process.stdout is not None    # Popen(stdout=PIPE) guarantees it
        ready, _, _ = select.select([self.process.stdout], [], [], timeout_seconds)
        line = self.process.stdout.readline() if ready else ""
        if not line.startswith(READY_PREFIX):
            raise SimulatorStartError(f"simulator did not start (first line {line!r}); "
                                      f"its log {self.log_path}:\n{self.log_path.read_text()}")
        words = line.removeprefix(READY_PREFIX).split()
        self.sftp_url = words[0]
        self.control_url = words[words.index("control") + 1]
        key_at = words.index("host-key")
        self.host_key = " ".join(words[key_at + 1:key_at + 3])

    def settings_env(self) -> dict[str, str]:
        """Environment variables that point our service at this simulator."""
        code = self.partner_code
        return {f"PARTNER_{code}_URL": self.sftp_url, f"PARTNER_{code}_SFTP_PASSWORD": self.password,
                f"PARTNER_{code}_SFTP_HOST_KEY": self.host_key}

    def control(self, method: str, path: str, payload: Any = None) -> Any:
        response = self._control.request(method, self.control_url + path, json=payload)
        response.raise_for_status()
        return response.json()

    def faults(self, **changes: Any) -> dict[str, Any]:
        return self.control("POST", "/_sim/faults", changes)

    def advance(self) -> dict[str, Any]:
        return self.control("POST", "/_sim/advance", {})

    def settlement(self) -> dict[str, Any]:
        return self.control("POST", "/_sim/settlement", {})

    def state(self) -> dict[str, Any]:
        return self.control("GET", "/_sim/state")

    def stop(self) -> None:
        """Terminate the process and release its pipe; calling it again is harmless."""
        if self.process.stdout is None or self.process.stdout.closed:
            return
        self._control.close()
        self.process.terminate()
        try:
            self.process.wait(timeout=STOP_TIMEOUT_SECONDS)
        finally:
            if self.process.returncode is None:
                self.process.kill()
                self.process.wait()
            self.process.stdout.close()

    def __enter__(self) -> FileSimulatorProcess:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
