"""Retry delays: exponential backoff with jitter.

"Equal jitter": half of each exponential step is fixed, half is random, so a
retry never comes sooner than half the step (the partner gets a real rest) and
workers that failed together do not retry together.
"""
from __future__ import annotations

import math
import random


def backoff_seconds(attempt: int, base_seconds: float, cap_seconds: float,
                    draw: float) -> float:
    """Delay before retry number `attempt` (1 = the first retry). `draw` is a
    uniform random number in [0, 1); the result lies in [step/2, step] where
    step = min(cap, base * 2**(attempt-1))."""
    if attempt < 1:
        raise ValueError("attempt counts from 1")
    if not 0 <= draw < 1:
        raise ValueError("draw must be in [0, 1)")
    # min() before the power would overflow: cap the exponent first.
    exponent = min(attempt - 1, 64)
    step = min(cap_seconds, base_seconds * (1 << exponent))
    return step / 2 + step / 2 * draw


def schedule(retries: int, base_seconds: float, cap_seconds: float,
             rng: random.Random | None = None) -> list[float]:
    """The delays of `retries` successive retries."""
    rng = rng or random.Random()
    return [backoff_seconds(n, base_seconds, cap_seconds, rng.random())
            for n in range(1, retries + 1)]


def whole_seconds(delays: list[float]) -> list[int]:
    """For schedulers counting in whole seconds (RQ): rounded up, at least 1."""
    return [max(1, math.ceil(d)) for d in delays]
