"""Signed callbacks end to end: a key rotation (the old key accepted during the
overlap, refused once removed) and replays refused, on our API served over HTTP
and on the partner simulator."""
from __future__ import annotations

import dataclasses
import json

import httpx
import pytest

from connectors.base import PartnerStatus as P
from connectors.signing import sign
from connectors.simulators.rest_process import RestSimulatorProcess
from disbursement.demo import api_server
from tests.conformance.harness import rest_transfer, unique_reference
from tests.conformance.ours import seed_transfers, statuses

pytestmark = pytest.mark.e2e

PARTNER, NEW, OLD = "BARID", "barid-key-2027", "barid-key-2026"
CALLBACK_PATH = f"/api/v1/partners/{PARTNER}/confirmations"


def _with_keys(svc, *keys: str, url: str | None = None):
    settings = svc.settings.with_overrides(
        partner_keys={**svc.settings.partner_keys, PARTNER: tuple(k.encode() for k in keys)},
        partner_urls={**svc.settings.partner_urls, **({PARTNER: url} if url else {})})
    return dataclasses.replace(svc, settings=settings, _queue=None)


def test_a_key_rotation_end_to_end(pg_svc, tmp_path) -> None:
    transfers = [rest_transfer(unique_reference(), i, "cash") for i in range(4)]
    refs = [t.reference for t in transfers]
    seed_transfers(pg_svc, PARTNER, transfers, status="sent")
    overlap = _with_keys(pg_svc, NEW, OLD)               # we sign with NEW, accept both
    first_server = api_server(overlap, "127.0.0.1", 0)
    api = first_server.__enter__()
    port = int(api.rsplit(":", 1)[1])
    # The partner has not rotated yet: it signs with OLD and accepts both.
    with RestSimulatorProcess.start(PARTNER, api + CALLBACK_PATH, f"{OLD},{NEW}",
                                    log_path=tmp_path / "sim.log") as sim:
        try:
            with _with_keys(overlap, NEW, OLD, url=sim.url).connector(PARTNER) as connector:
                assert [r.status for r in connector.send(transfers)] == [P.RECEIVED] * 4
            sim.advance("paid", refs[:2])
            assert statuses(pg_svc, refs) == {**dict.fromkeys(refs[:2], "paid"),
                                              **dict.fromkeys(refs[2:], "sent")}
        finally:
            first_server.__exit__(None, None, None)

        # Our side retires OLD (restarted with the new setting, same address):
        # callbacks still signed with OLD are refused and stay pending.
        with api_server(_with_keys(pg_svc, NEW), "127.0.0.1", port):
            refused = sim.advance("paid", refs[2:])
            assert (refused["delivered"], refused["pending"]) == (0, 4)
            assert sim.state()["last_callback_error"].startswith("HTTP 401")
            assert "signature does not match" in sim.state()["last_callback_error"]
            assert statuses(pg_svc, refs[2:]) == dict.fromkeys(refs[2:], "sent")

            # The partner rotates too: what was pending now arrives, once.
            sim.set_keys(NEW)
            delivered = sim.advance("paid", [])
            assert (delivered["delivered"], delivered["pending"]) == (4, 0)
    assert statuses(pg_svc, refs) == dict.fromkeys(refs, "paid")


def test_a_replayed_callback_is_refused(pg_svc) -> None:
    transfer = rest_transfer(unique_reference(), 0, "cash")
    seed_transfers(pg_svc, PARTNER, [transfer], status="sent")
    svc = _with_keys(pg_svc, NEW)
    body = json.dumps([{"event_id": "E-1", "reference": transfer.reference,
                        "status": "available"}]).encode()
    headers = {"Content-Type": "application/json",
               **sign(NEW.encode(), body, method="POST", target=CALLBACK_PATH)}
    with api_server(svc, "127.0.0.1", 0) as api, httpx.Client() as client:
        first = client.post(api + CALLBACK_PATH, content=body, headers=headers)
        replay = client.post(api + CALLBACK_PATH, content=body, headers=headers)
        elsewhere = client.post(api + "/api/v1/partners/BARID/confirmations?x=1",
                                content=body, headers=headers)

    assert first.status_code == 200 and first.json()["applied"] == 1
    assert replay.status_code == 401
    assert replay.json()["error"]["message"] == "nonce already used: replayed message refused"
    assert elsewhere.status_code == 401      # the signature covers the target
    assert statuses(pg_svc, [transfer.reference]) == {transfer.reference: "available"}


def test_the_partner_refuses_a_replayed_request(tmp_path) -> None:
    with RestSimulatorProcess.start("PI1", "http://127.0.0.1:9/none", NEW,
                                    log_path=tmp_path / "sim.log") as sim:
        body = json.dumps({"transfers": [{"reference": "D0000000000001",
                                          "amount_centimes": 100, "currency": "MAD"}]}).encode()
        headers = {"Content-Type": "application/json",
                   **sign(NEW.encode(), body, method="POST", target="/v1/transfers")}
        with httpx.Client() as client:
            first = client.post(sim.url + "/v1/transfers", content=body, headers=headers)
            replay = client.post(sim.url + "/v1/transfers", content=body, headers=headers)

    assert first.status_code == 200
    assert (replay.status_code, replay.json()) == \
        (401, {"error": "nonce already used: replayed message refused"})
