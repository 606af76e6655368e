"""Pure rules of issue 3: backoff schedule, circuit breaker, wallet tiers and numbers."""
from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from disbursement.configuration.wallet import load_wallet_rules
from disbursement.domain.backoff import backoff_seconds, schedule, whole_seconds
from disbursement.domain.breaker import (
    Admission,
    Breaker,
    BreakerPolicy,
    BreakerState,
    admit,
    on_failure,
    on_success,
)
from disbursement.domain.wallet import normalise_mobile

CONFIG = Path(__file__).resolve().parents[2] / "config"
T0 = datetime(2026, 12, 5, 10, 0, tzinfo=UTC)


# -- backoff ------------------------------------------------------------------

@given(attempt=st.integers(1, 200), base=st.floats(0.01, 60), cap=st.floats(0.01, 3600),
       draw=st.floats(0, 1, exclude_max=True))
def test_a_backoff_lies_between_half_the_step_and_the_step(attempt, base, cap, draw) -> None:
    step = min(cap, base * 2 ** min(attempt - 1, 64))

    delay = backoff_seconds(attempt, base, cap, draw)

    assert step / 2 <= delay <= step <= cap


@given(attempt=st.integers(1, 30), draw=st.floats(0, 1, exclude_max=True))
def test_the_step_doubles_below_the_cap(attempt, draw) -> None:
    cap = float(2 ** 40)                 # far above every step tried here
    low = backoff_seconds(attempt, 1.0, cap, 0.0)
    assert low == 2 ** (attempt - 1) / 2
    assert backoff_seconds(attempt + 1, 1.0, cap, draw) >= 2 * low


def test_jitter_spreads_retries_that_failed_together() -> None:
    schedules = {tuple(schedule(5, 2.0, 300.0, random.Random(seed))) for seed in range(20)}
    assert len(schedules) == 20


def test_whole_seconds_round_up_and_never_reach_zero() -> None:
    assert whole_seconds([0.1, 1.0, 1.2, 299.9]) == [1, 1, 2, 300]


@pytest.mark.parametrize("attempt, draw, refusal", [(0, 0.5, "attempt counts from 1"),
                                                    (1, 1.0, "draw must be in"),
                                                    (1, -0.1, "draw must be in")])
def test_backoff_refuses_nonsense(attempt, draw, refusal) -> None:
    with pytest.raises(ValueError, match=refusal):
        backoff_seconds(attempt, 1.0, 10.0, draw)


# -- circuit breaker ----------------------------------------------------------

POLICY = BreakerPolicy(failure_threshold=3, cooldown=timedelta(seconds=60))
events = st.lists(st.tuples(st.sampled_from(["admit", "ok", "fail"]),
                            st.integers(0, 90)), max_size=60)


@given(events)
def test_breaker_state_machine_invariants(steps) -> None:
    breaker, now, consecutive = Breaker(), T0, 0
    for action, seconds_later in steps:
        now += timedelta(seconds=seconds_later)
        before = breaker
        if action == "admit":
            admission, breaker = admit(breaker, POLICY, now)
            if before.state is BreakerState.CLOSED:
                assert admission is Admission.ALLOW and breaker == before
            elif now < before.retry_at(POLICY):
                # Open (or probing): nobody else calls the partner before the cooldown.
                assert admission is Admission.DEFER and breaker == before
            else:
                assert admission is Admission.PROBE
                assert breaker.state is BreakerState.HALF_OPEN and breaker.probe_started_at == now
        elif action == "ok":
            breaker, consecutive = on_success(breaker), 0
            assert breaker == Breaker()
        else:
            breaker = on_failure(breaker, POLICY, now)
            consecutive += 1
            assert breaker.state is not BreakerState.HALF_OPEN
            if before.state is BreakerState.HALF_OPEN:
                assert breaker.state is BreakerState.OPEN and breaker.opened_at == now
            if before.state is BreakerState.CLOSED:
                assert (breaker.state is BreakerState.OPEN) == (breaker.failures >= 3)
        assert breaker.failures >= 0


def test_breaker_opens_half_opens_with_one_probe_and_closes() -> None:
    breaker = Breaker()
    for _ in range(3):
        breaker = on_failure(breaker, POLICY, T0)
    assert breaker.state is BreakerState.OPEN

    assert admit(breaker, POLICY, T0 + timedelta(seconds=59))[0] is Admission.DEFER
    first, breaker = admit(breaker, POLICY, T0 + timedelta(seconds=60))
    second, breaker = admit(breaker, POLICY, T0 + timedelta(seconds=61))
    assert (first, second, breaker.state) == (Admission.PROBE, Admission.DEFER,
                                              BreakerState.HALF_OPEN)
    assert on_success(breaker).state is BreakerState.CLOSED


def test_a_failed_probe_reopens_for_a_whole_cooldown() -> None:
    breaker = Breaker(BreakerState.HALF_OPEN, 3, T0, T0 + timedelta(seconds=60))
    reopened = on_failure(breaker, POLICY, T0 + timedelta(seconds=61))
    assert reopened.state is BreakerState.OPEN
    assert reopened.retry_at(POLICY) == T0 + timedelta(seconds=121)


def test_a_lost_probe_is_replaced_after_a_cooldown() -> None:
    probing = Breaker(BreakerState.HALF_OPEN, 3, T0, T0 + timedelta(seconds=60))
    assert admit(probing, POLICY, T0 + timedelta(seconds=119))[0] is Admission.DEFER
    assert admit(probing, POLICY, T0 + timedelta(seconds=120))[0] is Admission.PROBE


# -- wallet -------------------------------------------------------------------

RULES = load_wallet_rules(CONFIG)


@pytest.mark.parametrize("phone, expected", [
    ("+212612345678", "+212612345678"), ("0612345678", "+212612345678"),
    ("07 12 34 56 78", "+212712345678"),
    ("+212522123456", None),          # a Casablanca landline
    ("0812345678", None), ("+33612345678", None), ("", None), (None, None), ("06123", None)])
def test_only_moroccan_mobiles_are_wallet_numbers(phone, expected) -> None:
    assert normalise_mobile(phone) == expected


def test_bank_al_maghrib_tier_ceilings() -> None:
    assert dict(RULES.ceilings) == {1: 20_000, 2: 500_000, 3: 2_000_000}
    assert RULES.default_tier == 1


@pytest.mark.parametrize("amount, tier, reason", [
    (20_000, 1, None),
    (70_000, 1, "WL04 wallet tier 1 ceiling 200.00 MAD below 700.00 MAD"),
    # no tier: the lowest
    (70_000, None, "WL04 wallet tier 1 ceiling 200.00 MAD below 700.00 MAD"),
    (500_000, 2, None),
    (500_001, 2, "WL04 wallet tier 2 ceiling 5000.00 MAD below 5000.01 MAD"),
    (2_000_000, 3, None),
    (70_000, 4, "WL02 wallet tier 4 is not a Bank Al-Maghrib tier"),
])
def test_a_transfer_above_the_tier_ceiling_is_refused(amount, tier, reason) -> None:
    assert RULES.refusal(amount, "MAD", "0612345678", tier) == reason


def test_a_transfer_to_a_number_that_is_no_moroccan_mobile_is_refused() -> None:
    assert RULES.refusal(10_000, "MAD", "+212522123456", 3) == \
        "WL01 wallet number is not a valid Moroccan mobile number"


@given(amount=st.integers(1, 10**8), tier=st.sampled_from([1, 2, 3]))
def test_refused_exactly_when_above_the_ceiling(amount, tier) -> None:
    refused = RULES.refusal(amount, "MAD", "+212661000000", tier) is not None
    assert refused == (amount > RULES.ceilings[tier])
