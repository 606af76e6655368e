"""Run the REST partner simulator as a child process and drive its /_sim controls.

For the end-to-end tests and the demo, which need a partner next to the service:
start it, wait for its `ready on` line, advance time, switch faults, stop it.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from connectors.simulators.process import PROJECT_ROOT, SimulatorProcess, SimulatorStartError  # noqa: F401
from connectors.simulators.rest import key_env_name


class RestSimulatorProcess(SimulatorProcess):
    """A REST or wallet partner simulator; `url` is its base URL (API and controls)."""

    @classmethod
    def start(cls, partner_code: str, callback_url: str, key_text: str, *extra_args: str,
              log_path: Path, ready_timeout_seconds: float = 15.0,
              module: str = "connectors.simulators.rest") -> RestSimulatorProcess:
        """Start on a free loopback port; the simulator's stderr goes to `log_path`.
        `module` picks the protocol (the wallet simulator takes the same flags);
        `key_text` may hold `new,old` during a rotation."""
        args = ["--port", "0", "--partner", partner_code, "--callback-url", callback_url,
                *extra_args]
        return cls._launch(module, args, {**os.environ, key_env_name(partner_code): key_text},
                           log_path, ready_timeout_seconds)

    @property
    def url(self) -> str:
        return self.control_url

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
