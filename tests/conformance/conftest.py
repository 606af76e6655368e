"""The `harness` fixture: every scenario runs once per registered protocol.
The registry of protocols lives here, where both harness modules are known,
so that neither harness module imports the other."""
from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.conformance.file_harnesses import iso20022_harness, sftp_csv_harness
from tests.conformance.harness import Harness, HarnessSpec, rest_harness, wallet_harness

# One line per protocol.
HARNESSES: list[HarnessSpec] = [
    HarnessSpec("rest", rest_harness),
    HarnessSpec("wallet", wallet_harness),
    HarnessSpec("sftp_csv", sftp_csv_harness),
    HarnessSpec("iso20022", iso20022_harness),
]


@pytest.fixture(params=HARNESSES, ids=[spec.name for spec in HARNESSES])
def harness(request, tmp_path) -> Iterator[Harness]:
    with request.param.start(tmp_path) as started:
        yield started
