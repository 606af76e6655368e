"""Run the REST partner simulator as a child process and drive its /_sim controls.

For the end-to-end tests and the demo, which need a partner next to the service:
start it, wait for its `ready on` line, advance time, switch faults, stop it.
"""
from __future__ import annotations

import os
import select
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx

from connectors.simulators.rest import key_env_name

# Where `python -m connectors.simulators.rest` resolves without an installed package.
PROJECT_ROOT = Path(__file__).resolve().parents[2]
READY_PREFIX = "ready on "
CONTROL_TIMEOUT_SECONDS = 30.0
STOP_TIMEOUT_SECONDS = 10.0


class SimulatorStartError(RuntimeError):
    """Raised when the simulator exits, or stays silent past the deadline,
    instead of printing its ready line."""


class RestSimulatorProcess:
    """One simulator process: its base URL, its controls, and its stopping."""

    def __init__(self, process: subprocess.Popen[str], log_path: Path) -> None:
        self.process = process
        self.log_path = log_path
        self.url = ""
        self._control = httpx.Client(timeout=CONTROL_TIMEOUT_SECONDS)

    @classmethod
    def start(cls, partner_code: str, callback_url: str, key_text: str, *extra_args: str,
              log_path: Path, ready_timeout_seconds: float = 15.0,
              module: str = "connectors.simulators.rest") -> RestSimulatorProcess:
        """Start on a free loopback port; the simulator's stderr goes to `log_path`.
        `module` picks the protocol (the wallet simulator takes the same flags);
        `key_text` may hold `new,old` during a rotation."""
        command = [sys.executable, "-m", module, "--port", "0",
                   "--partner", partner_code, "--callback-url", callback_url, *extra_args]
        env = {**os.environ, key_env_name(partner_code): key_text}
        with log_path.open("wb") as log:          # the child keeps its own descriptor
            process = subprocess.Popen(command, cwd=PROJECT_ROOT, env=env,
                                       stdout=subprocess.PIPE, stderr=log, text=True)
        simulator = cls(process, log_path)
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
        self.url = line.removeprefix(READY_PREFIX).strip()

    def control(self, method: str, path: str, payload: Any = None) -> Any:
        response = self._control.request(method, self.url + path, json=payload)
        response.raise_for_status()
        return response.json()

    def faults(self, **changes: Any) -> dict[str, Any]:
        return self.control("POST", "/_sim/faults", changes)

    def advance(self, to: str | None = None,
                references: list[str] | None = None) -> dict[str, Any]:
        payload: dict[str, Any] = {} if to is None else {"to": to}
        if references is not None:
            payload["references"] = references
        return self.control("POST", "/_sim/advance", payload)

    def reject_next(self, reason_code: str, count: int = 1) -> dict[str, Any]:
        return self.control("POST", "/_sim/reject-next",
                            {"reason_code": reason_code, "count": count})

    def set_keys(self, *keys: str) -> dict[str, Any]:
        return self.control("POST", "/_sim/keys", {"keys": list(keys)})

    def held(self, reference: str) -> dict[str, Any] | None:
        """What the partner holds under `reference`, None when nothing."""
        response = self._control.get(f"{self.url}/_sim/transfers/{reference}")
        if response.status_code == 404:
            return None
        response.raise_for_status()
        return response.json()

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

    def __enter__(self) -> RestSimulatorProcess:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
