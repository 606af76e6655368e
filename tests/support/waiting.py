"""The one way a test waits for something another process or thread does
(a simulator picking up a file, a job's retry, a worker registering): poll a
condition until it holds, then fail with a message naming what never happened,
so a slow or broken run reads as "not within 20s: the bank takes the pain.001"
rather than as a bare timeout or a test that passed without waiting.

Standard library only, like tests/support/services.py, so any test tier can use it."""
from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

WAIT_SECONDS = 20.0
POLL_SECONDS = 0.05


def wait_until(condition: Callable[[], T], what: str, timeout: float = WAIT_SECONDS,
               interval: float = POLL_SECONDS) -> T:
    """Calls `condition` until it returns something truthy and returns that;
    raises AssertionError naming `what` once `timeout` seconds have passed.
    The condition may itself assert, to stop waiting on a state that can no
    longer turn out right (a process that exited)."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"not within {timeout:g}s: {what}")
        time.sleep(interval)
