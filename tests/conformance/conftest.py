"""The `harness` fixture: every scenario runs once per registered protocol."""
from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.conformance.harness import HARNESSES, Harness


@pytest.fixture(params=HARNESSES, ids=[spec.name for spec in HARNESSES])
def harness(request, tmp_path) -> Iterator[Harness]:
    with request.param.start(tmp_path) as started:
        yield started
