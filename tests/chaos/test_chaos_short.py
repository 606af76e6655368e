"""The short chaos run as part of `make test`: 2,000 households, every kind of
fault at least once (13 faults), then the operator's recovery; nothing lost,
nothing paid twice, nothing stuck, the ledger check ok. It starts its own
PostgreSQL and Redis (it restarts and flushes them), so it does not use the
shared test servers."""
from __future__ import annotations

import pytest

from tests.chaos.faults import KINDS
from tests.chaos.report import render
from tests.chaos.runner import Options, run

pytestmark = [pytest.mark.e2e, pytest.mark.chaos]

HOUSEHOLDS = 2_000
FAULTS = len(KINDS)


def test_a_cycle_under_faults_ends_exact(tmp_path):
    result = run(Options(households=HOUSEHOLDS, faults=FAULTS, seed=1, work=tmp_path / "chaos"))
    report = render(result)
    assert len(result.faults) == FAULTS >= 10
    assert {f["kind"] for f in result.faults} == set(KINDS)
    assert result.verdict is not None, report
    assert result.quiet, report
    assert result.verdict.total(result.verdict.lost) == 0, report
    assert result.verdict.total(result.verdict.paid_twice) == 0, report
    assert result.verdict.total(result.verdict.stuck) == 0, report
    assert result.verdict.ledger_exit == 0, report
