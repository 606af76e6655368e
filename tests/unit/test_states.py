"""The transfer state table: only the listed transitions pass, terminal states
are dead ends, and the named groups are consistent with the table."""
from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from disbursement.domain.states import (
    CLOSED_ATTEMPT,
    LIVE,
    RELEASED,
    TERMINAL,
    TRANSITIONS,
    IllegalTransition,
    TransferStatus,
    allowed_sources,
    check_transition,
)

S = TransferStatus
ALLOWED = sorted((src, tgt) for src, targets in TRANSITIONS.items() for tgt in targets)
FORBIDDEN = sorted((src, tgt) for src, tgt in itertools.product(S, S)
                   if tgt not in TRANSITIONS[src])
STATES = st.sampled_from(list(S))


def test_every_state_has_a_row_in_the_table() -> None:
    assert set(TRANSITIONS) == set(S)


def test_table_lists_some_transitions_and_forbids_the_rest() -> None:
    assert len(ALLOWED) + len(FORBIDDEN) == len(S) ** 2
    assert ALLOWED and FORBIDDEN


@pytest.mark.parametrize("source, target", ALLOWED, ids=[f"{s}->{t}" for s, t in ALLOWED])
def test_listed_transition_passes(source: S, target: S) -> None:
    check_transition(source, target)


@pytest.mark.parametrize("source, target", FORBIDDEN, ids=[f"{s}->{t}" for s, t in FORBIDDEN])
def test_unlisted_transition_is_refused(source: S, target: S) -> None:
    with pytest.raises(IllegalTransition, match=f"^{source} -> {target}$"):
        check_transition(source, target)


@pytest.mark.parametrize("state", sorted(S))
def test_no_state_goes_to_itself(state: S) -> None:
    with pytest.raises(IllegalTransition):
        check_transition(state, state)


@pytest.mark.parametrize("state", sorted(TERMINAL))
def test_terminal_state_has_no_way_out(state: S) -> None:
    assert TRANSITIONS[state] == frozenset()
    for target in S:
        with pytest.raises(IllegalTransition):
            check_transition(state, target)


def test_nothing_goes_back_to_pending_approval() -> None:
    assert allowed_sources(S.PENDING_APPROVAL) == frozenset()


@given(target=STATES)
def test_allowed_sources_is_the_table_read_backwards(target: S) -> None:
    sources = allowed_sources(target)

    for source in S:
        assert (source in sources) == (target in TRANSITIONS[source])


@given(target=STATES)
def test_every_allowed_source_passes_the_check(target: S) -> None:
    for source in allowed_sources(target):
        check_transition(source, target)


def reachable(start: S) -> set[S]:
    seen, todo = {start}, [start]
    while todo:
        for target in TRANSITIONS[todo.pop()] - seen:
            seen.add(target)
            todo.append(target)
    return seen


def test_every_state_is_reachable_from_pending_approval() -> None:
    assert reachable(S.PENDING_APPROVAL) == set(S)


@pytest.mark.parametrize("state", sorted(S))
def test_every_state_can_still_end(state: S) -> None:
    ends = {s for s in S if not TRANSITIONS[s]}

    assert reachable(state) & ends


@pytest.mark.parametrize("state", sorted(RELEASED))
def test_released_money_never_goes_back_before_release(state: S) -> None:
    # Once the batch is released the budget has been debited: the transfer may
    # end (cancelled included) but never return to approval.
    assert reachable(state) <= RELEASED | {S.CANCELLED}


def test_live_and_closed_attempt_partition_the_states() -> None:
    assert frozenset(S) == LIVE | CLOSED_ATTEMPT
    assert frozenset() == LIVE & CLOSED_ATTEMPT


def test_paid_is_terminal_and_live_returned_and_cancelled_close_the_attempt() -> None:
    # `paid` ends the transfer but keeps the instruction taken: no new attempt.
    assert S.PAID in TERMINAL and S.PAID in LIVE
    assert {S.RETURNED, S.CANCELLED} <= TERMINAL & CLOSED_ATTEMPT


def test_states_are_stored_by_their_lower_case_value() -> None:
    for state in S:
        assert state.value == state.name.lower()
        assert S(state.value) is state


@given(data=st.data())
def test_random_walk_from_pending_approval_stops_at_terminal_and_pays_once(data) -> None:
    state, path = S.PENDING_APPROVAL, [S.PENDING_APPROVAL]
    for _ in range(40):
        targets = sorted(TRANSITIONS[state])
        if not targets:
            break
        target = data.draw(st.sampled_from(targets))
        check_transition(state, target)
        state = target
        path.append(state)
    assert path.count(S.PAID) <= 1
    for i, step in enumerate(path):
        if step in TERMINAL:
            assert i == len(path) - 1, f"left terminal {step}: {path}"


class TransferLifecycle(RuleBasedStateMachine):
    """Asks for any transition; only the table's pass, and the state follows."""

    def __init__(self) -> None:
        super().__init__()
        self.state = S.PENDING_APPROVAL
        self.times_paid = 0
        self.reached_terminal: S | None = None

    @rule(wanted=STATES)
    def ask_for(self, wanted: S) -> None:
        if wanted in TRANSITIONS[self.state]:
            check_transition(self.state, wanted)
            self.state = wanted
            self.times_paid += wanted == S.PAID
        else:
            with pytest.raises(IllegalTransition):
                check_transition(self.state, wanted)
        if self.state in TERMINAL and self.reached_terminal is None:
            self.reached_terminal = self.state

    @precondition(lambda self: bool(TRANSITIONS[self.state]))
    @rule(data=st.data())
    def follow_an_allowed_transition(self, data) -> None:
        target = data.draw(st.sampled_from(sorted(TRANSITIONS[self.state])))
        check_transition(self.state, target)
        self.state = target
        self.times_paid += target == S.PAID
        if self.state in TERMINAL and self.reached_terminal is None:
            self.reached_terminal = self.state

    @invariant()
    def paid_at_most_once(self) -> None:
        assert self.times_paid <= 1

    @invariant()
    def never_leaves_a_terminal_state(self) -> None:
        if self.reached_terminal is not None:
            assert self.state == self.reached_terminal


TestTransferLifecycle = TransferLifecycle.TestCase
