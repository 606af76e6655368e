"""A partner simulator run as a child process, for the end-to-end tests and the
demo: start it on free loopback ports, read its one `ready on ...` line, drive
its /_sim controls over HTTP, stop it. Each protocol's subclass says how to
start it and what its ready line carries."""
from __future__ import annotations

import select
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import httpx

# Where `python -m connectors.simulators.<protocol>` resolves without an installed package.
PROJECT_ROOT = Path(__file__).resolve().parents[2]
READY_PREFIX = "ready on "
CONTROL_TIMEOUT_SECONDS = 30.0
STOP_TIMEOUT_SECONDS = 10.0

P = TypeVar("P", bound="SimulatorProcess")


class SimulatorStartError(RuntimeError):
    """Raised when the simulator exits, or stays silent past the deadline,
    instead of printing its ready line."""


class SimulatorProcess:
    """One simulator process: its control URL, its controls, and its stopping."""

    def __init__(self, process: subprocess.Popen[str], log_path: Path) -> None:
        self.process = process
        self.log_path = log_path
        self.control_url = ""
        self._control = httpx.Client(timeout=CONTROL_TIMEOUT_SECONDS)

    @classmethod
    def _launch(cls: type[P], module: str, args: Sequence[str], env: Mapping[str, str],
                log_path: Path, ready_timeout_seconds: float, **attributes: Any) -> P:
        """Starts `python -m module args...`; its stderr goes to `log_path`."""
        with log_path.open("wb") as log:          # the child keeps its own descriptor
            process = subprocess.Popen([sys.executable, "-m", module, *args], cwd=PROJECT_ROOT,
                                       env=dict(env), stdout=subprocess.PIPE, stderr=log,
                                       text=True)
        simulator = cls.__new__(cls)
        SimulatorProcess.__init__(simulator, process, log_path)
        simulator.__dict__.update(attributes)
        try:
            simulator._ready(simulator._wait_ready_line(ready_timeout_seconds))
        except BaseException:
            simulator.stop()
            raise
        return simulator

    def _wait_ready_line(self, timeout_seconds: float) -> str:
        assert self.process.stdout is not None    # Popen(stdout=PIPE) guarantees it
        ready, _, _ = select.select([self.process.stdout], [], [], timeout_seconds)
        line = self.process.stdout.readline() if ready else ""
        if not line.startswith(READY_PREFIX):
            raise SimulatorStartError(f"simulator did not start (first line {line!r}); "
                                      f"its log {self.log_path}:\n{self.log_path.read_text()}")
        return line.removeprefix(READY_PREFIX)

    def _ready(self, words: str) -> None:
        """Reads what the ready line announces (at least the control URL)."""
        self.control_url = words.strip()

    def control(self, method: str, path: str, payload: Any = None) -> Any:
        response = self._control.request(method, self.control_url + path, json=payload)
        response.raise_for_status()
        return response.json()

    def faults(self, **changes: Any) -> dict[str, Any]:
        return self.control("POST", "/_sim/faults", changes)

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

    def __enter__(self: P) -> P:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
