"""The partner message cap under gunicorn, as production runs it (issue 10,
item 8: an unsigned 300 MB body was read whole before the 401, and one worker
grew to 590 MB): a giant Content-Length is refused before a byte is read, a
giant chunked body once past the cap, and the worker stays small."""
from __future__ import annotations

import base64
import json
import os
from pathlib import Path

import httpx
import pytest

from connectors import signing
from disbursement.settings import MAX_PARTNER_MESSAGE_BYTES
from tests.conftest import PARTNER_KEYS
from tests.support import raw_http
from tests.support.gunicorn import gunicorn

pytestmark = pytest.mark.e2e

CONFIRMATIONS = "/api/v1/partners/BARID/confirmations"
MIB = 1024 * 1024


@pytest.fixture
def env(pg_url, tmp_path) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
    return {**base, "DATABASE_URL": pg_url, "DISBURSE_VAR_DIR": str(tmp_path),
            "DISBURSE_DATA_KEY": base64.b64encode(os.urandom(32)).decode(),
            **{f"PARTNER_{c}_HMAC_KEYS": k for c, k in PARTNER_KEYS.items()}}


def resident_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmRSS for pid {pid}")


def test_giant_partner_bodies_are_refused_without_being_read(env):
    with gunicorn(env, workers=1) as url:
        worker = httpx.get(f"{url}/healthz", timeout=10).json()["pid"]
        before = resident_bytes(worker)
        headers = {"Content-Type": "application/json"}

        announced = raw_http.post(url + CONFIRMATIONS, headers, announced_length=300 * MIB)
        assert announced.status == 413
        assert json.loads(announced.body)["error"]["message"] == (
            f"partner message larger than {MAX_PARTNER_MESSAGE_BYTES} bytes")

        chunked = raw_http.post(url + CONFIRMATIONS, headers, chunked_bytes=200 * MIB)
        assert chunked.status == 413
        assert chunked.body_bytes_sent < 4 * MAX_PARTNER_MESSAGE_BYTES

        # The same worker (there is one) served both, and kept at most one cap's worth.
        assert httpx.get(f"{url}/healthz", timeout=10).json()["pid"] == worker
        assert resident_bytes(worker) - before < 4 * MAX_PARTNER_MESSAGE_BYTES

        # A message within the cap is read and verified as before.
        body = json.dumps([{"event_id": "E-1", "reference": "B000000000001",
                            "status": "paid"}]).encode()
        signed = signing.sign(PARTNER_KEYS["BARID"].encode(), body, method="POST",
                              target=CONFIRMATIONS)
        answer = httpx.post(url + CONFIRMATIONS, content=body, timeout=30,
                            headers={**headers, **signed})
        assert answer.status_code == 404
        assert answer.json()["error"]["code"] == "unknown_reference"
