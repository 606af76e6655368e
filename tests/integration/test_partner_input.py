"""Hostile input on the partner routes (issue 10, items 8 and 9): every bad
message gets a 4xx naming what is wrong and changes nothing, never a 500.

Confirmations (REST partners, and the wallet operator through its connector)
and returns take one inbound path: a size cap checked before the body is
read (413), the protocol's media type (415), nesting bounded before any
parser recurses (400), no control character or lone surrogate in any key or
string (422). A database or Redis that does not answer is a 503 with
Retry-After on the API and the console, never a 500: tested against a private
PostgreSQL this test stops (fast and immediate) and starts again, and a
closed port standing for Redis."""
from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from connectors import signing
from disbursement.bootstrap import build
from disbursement.db.migrate import upgrade
from disbursement.db.models import (
    InboundMessage,
    LedgerLine,
    LedgerPosting,
    Transfer,
    TransferEvent,
)
from disbursement.db.models.ledger import FundReturn
from disbursement.demo import api_server, free_port
from disbursement.services.tracking.inbound_checks import MAX_NESTING_DEPTH
from disbursement.settings import MAX_PARTNER_MESSAGE_BYTES
from disbursement.web.app import create_app
from disbursement.web.errors import RETRY_AFTER_SECONDS
from tests.conftest import PARTNER_KEYS, PASSWORD, create_officers, make_settings
from tests.support import raw_http
from tests.support import services as servers
from tests.support.api import Api
from tests.support.console import Officer, console_app
from tests.support.cycle import sent_references

pytestmark = pytest.mark.integration

WALLET, WALLET_KEY = "MWALLET", "mwallet-test-key"
STAMP = "2026-12-03T10:00:00+00:00"


def confirmations(partner: str = "BARID") -> str:
    return f"/api/v1/partners/{partner}/confirmations"


def returns(partner: str = "BARID") -> str:
    return f"/api/v1/partners/{partner}/returns"


@pytest.fixture
def sent(svc, officers, households_csv) -> dict[str, list[str]]:
    return sent_references(svc, officers, households_csv(40))


@pytest.fixture
def client(svc):
    keys = {**svc.settings.partner_keys, WALLET: (WALLET_KEY.encode(),)}
    return create_app(services=svc.with_overrides(partner_keys=keys)).test_client()


def signed_headers(path: str, body: bytes, partner: str = "BARID") -> dict[str, str]:
    key = WALLET_KEY if partner == WALLET else PARTNER_KEYS[partner]
    return signing.sign(key.encode(), body, method="POST", target=path)


def post(client, path: str, payload=None, *, raw: bytes | None = None,
         content_type: str | None = "application/json", partner: str = "BARID"):
    """A partner's POST, correctly signed, with `content_type` (None: no header)."""
    body = raw if raw is not None else json.dumps(payload).encode()
    headers = signed_headers(path, body, partner)
    if content_type is not None:
        headers["Content-Type"] = content_type
    return client.post(path, data=body, headers=headers)


def footprint(svc) -> tuple:
    """Everything a partner message may change."""
    with svc.uow() as session:
        return (
            session.execute(select(Transfer.reference, Transfer.status, Transfer.service_point,
                                   Transfer.status_reason).order_by(Transfer.reference)).all(),
            *(session.execute(select(func.count()).select_from(model)).scalar_one()
              for model in (TransferEvent, InboundMessage, LedgerPosting, LedgerLine,
                            FundReturn)))


def wallet_notification(**fields) -> dict:
    return {"notifications": [{"id": "N-1", "reference": "W000000000001", "state": "CREDITED",
                               "timestamp": STAMP, **fields}]}


def nested(depth: int) -> bytes:
    return b'{"a":' * depth + b"1" + b"}" * depth


# -- control characters -------------------------------------------------------------------

@pytest.mark.parametrize(("extra", "field", "position"), [
    ({"reason": "paid\x00"}, "[0].reason", 4),
    ({"event_id": "EV\x00-1"}, "[0].event_id", 2),
    ({"service_point": "SP-\x1b[2J"}, "[0].service_point", 3),
    ({"reason": "half \ud800 a pair"}, "[0].reason", 5),
    ({"reason\x00": "x"}, "key [0].reason\\u0000", 6),
], ids=["nul-reason", "nul-event-id", "escape-service-point", "lone-surrogate", "nul-key"])
def test_a_control_character_anywhere_is_refused_naming_where(svc, client, sent, extra, field,
                                                               position):
    before = footprint(svc)
    item = {"event_id": "E-1", "reference": sent["BARID"][0], "status": "paid", **extra}
    answer = post(client, confirmations(), [item])
    assert answer.status_code == 422, answer.get_data(as_text=True)
    error = answer.get_json()["error"]
    assert error["code"] == "forbidden_character"
    assert error["details"] == {"field": field, "position": position}
    assert footprint(svc) == before


def test_tab_newline_and_carriage_return_are_allowed(svc, client, sent):
    item = {"event_id": "E-1", "reference": sent["BARID"][0], "status": "rejected",
            "reason": "R01\tclosed\r\naccount"}
    answer = post(client, confirmations(), [item])
    assert answer.status_code == 200
    assert answer.get_json()["applied"] == 1


def test_returns_and_wallet_callbacks_get_the_same_character_check(svc, client, sent):
    before = footprint(svc)
    refused = post(client, returns(), {"event_id": "R-1", "reference": sent["BARID"][0],
                                      "reason_code": "R\x0001"})
    assert refused.status_code == 422
    assert refused.get_json()["error"]["details"] == {"field": "reason_code", "position": 1}
    # The wallet's connector parses its own shape; its updates are checked too,
    # before any reference is looked up.
    wallet = post(client, confirmations(WALLET), wallet_notification(id="N\x00-1"),
                  partner=WALLET)
    assert wallet.status_code == 422
    assert wallet.get_json()["error"]["details"] == {"field": "[0].event_id", "position": 1}
    assert footprint(svc) == before


# -- nesting -----------------------------------------------------------------------------

@pytest.mark.parametrize("body", [b"[" * 100_000 + b"]" * 100_000, nested(MAX_NESTING_DEPTH + 1)],
                         ids=["100000-deep", "one-too-deep"])
@pytest.mark.parametrize("path", [confirmations(), returns(), confirmations(WALLET)],
                         ids=["confirmations", "returns", "wallet"])
def test_a_message_nested_too_deeply_is_refused_before_it_is_parsed(svc, client, path, body):
    before = footprint(svc)
    answer = post(client, path, raw=body, partner=WALLET if WALLET in path else "BARID")
    assert answer.status_code == 400, answer.get_data(as_text=True)
    assert answer.get_json()["error"]["code"] == "nested_too_deeply"
    assert footprint(svc) == before


def test_nesting_at_the_limit_and_brackets_inside_strings_are_not_refused_for_depth(
        svc, client, sent):
    at_limit = post(client, confirmations(), raw=nested(MAX_NESTING_DEPTH))
    assert at_limit.status_code == 422
    assert at_limit.get_json()["error"]["code"] == "invalid_confirmation"
    item = {"event_id": "E-1", "reference": sent["BARID"][0], "status": "rejected",
            "reason": "[{" * 99 + '\\"'}
    assert post(client, confirmations(), [item]).status_code == 200


# -- media type --------------------------------------------------------------------------

@pytest.mark.parametrize("content_type", [
    "text/plain", None, "application/x-www-form-urlencoded", "application/json; charset=latin-1",
    "application/jsonp"])
@pytest.mark.parametrize("path", [confirmations(), returns(), confirmations(WALLET)],
                         ids=["confirmations", "returns", "wallet"])
def test_another_media_type_is_refused_naming_the_expected_one(svc, client, path,
                                                               content_type):
    before = footprint(svc)
    partner = WALLET if WALLET in path else "BARID"
    payload = (wallet_notification() if partner == WALLET
               else [{"event_id": "E-1", "reference": "B000000000001", "status": "paid"}])
    answer = post(client, path, payload, content_type=content_type, partner=partner)
    assert answer.status_code == 415, answer.get_data(as_text=True)
    error = answer.get_json()["error"]
    assert error["code"] == "unsupported_media_type"
    assert "application/json" in error["message"]
    assert footprint(svc) == before


def test_json_with_a_utf8_charset_is_accepted_and_a_415_spends_no_nonce(svc, client, sent):
    body = json.dumps([{"event_id": "E-1", "reference": sent["BARID"][0],
                        "status": "paid"}]).encode()
    headers = signed_headers(confirmations(), body)
    refused = client.post(confirmations(), data=body,
                          headers={**headers, "Content-Type": "text/plain"})
    assert refused.status_code == 415
    # The same signed request, nonce and all, in the right type: not a replay.
    accepted = client.post(confirmations(), data=body,
                           headers={**headers, "Content-Type": "Application/JSON; charset=UTF-8"})
    assert accepted.status_code == 200
    assert accepted.get_json()["applied"] == 1


# -- any other shape ---------------------------------------------------------------------

HOSTILE_ITEMS = {
    "number-status": {"status": 3},
    "number-reference": {"reference": 123456},
    "list-reason": {"reason": ["a"]},
    "object-event-id": {"event_id": {"id": 1}},
    "huge-reason": {"reason": "x" * 1_000_000},
    "huge-event-id": {"event_id": "e" * 100_000},
    "bad-date": {"occurred_at": "2026-13-45T99:99:99"},
    "number-date": {"occurred_at": 10 ** 30},
    "unknown-status": {"status": "teleported"},
}


def test_a_field_of_the_wrong_type_or_size_is_a_422(svc, client, sent):
    before = footprint(svc)
    for case, extra in HOSTILE_ITEMS.items():
        item = {"event_id": "E-1", "reference": sent["BARID"][0], "status": "paid", **extra}
        answer = post(client, confirmations(), [item])
        assert answer.status_code == 422, (case, answer.get_data(as_text=True)[:300])
    assert footprint(svc) == before


HOSTILE_BODIES = {
    "null": b"null", "empty-list": b"[]", "empty-object": b"{}", "string": b'"paid"',
    "non-object-item": b"[1]", "nan": b'[{"reference": NaN}]', "not-utf8": b"\xff\xfe\x00",
    "huge-integer": b"1" * 5_000, "truncated": b'[{"reference": "A"}', "empty": b"",
    "unclosed": b"[" * 40,
}


def test_a_body_of_the_wrong_shape_is_a_4xx(svc, client, sent):
    before = footprint(svc)
    for case, raw in HOSTILE_BODIES.items():
        for path in (confirmations(), returns()):
            answer = post(client, path, raw=raw)
            assert 400 <= answer.status_code < 500, (case, path, answer.get_data(as_text=True))
    assert footprint(svc) == before


# -- size --------------------------------------------------------------------------------

def test_the_cap_is_read_up_to_and_not_one_byte_past(svc, sent):
    cap = 4_096
    client = create_app(services=svc.with_overrides(max_partner_message_bytes=cap)).test_client()
    item = {"event_id": "E-1", "reference": sent["BARID"][0], "status": "rejected"}
    body = json.dumps([{**item, "reason": ""}]).encode()
    at_cap = json.dumps([{**item, "reason": "r" * (cap - len(body))}]).encode()
    assert len(at_cap) == cap
    too_big = json.dumps([{**item, "reason": "r" * (cap - len(body) + 1)}]).encode()
    assert post(client, confirmations(), raw=at_cap).status_code == 422  # reason too long
    refused = post(client, confirmations(), raw=too_big)
    assert refused.status_code == 413
    assert refused.get_json()["error"] == {
        "code": "request_entity_too_large",
        "message": f"partner message larger than {cap} bytes", "details": {"max_bytes": cap}}


@pytest.fixture
def served(svc) -> Iterator[str]:
    """Our API on a loopback port (the threaded development server)."""
    with api_server(svc, "127.0.0.1", 0) as url:
        yield url


@pytest.mark.parametrize("path", [confirmations(), returns()])
def test_an_announced_giant_body_is_refused_before_a_byte_of_it_is_read(svc, served, path):
    """A Content-Length of 300 MiB and no body at all: a server that reads the
    body before refusing never answers."""
    answer = raw_http.post(served + path, {"Content-Type": "application/json"},
                           announced_length=300 * 1024 * 1024)
    assert answer.status == 413
    assert json.loads(answer.body)["error"]["details"] == {"max_bytes": MAX_PARTNER_MESSAGE_BYTES}


@pytest.mark.parametrize("path", [confirmations(), returns()])
def test_a_chunked_giant_body_is_refused_once_past_the_cap(svc, served, path):
    answer = raw_http.post(served + path, {"Content-Type": "application/json"},
                           chunked_bytes=64 * 1024 * 1024)
    assert answer.status == 413
    assert answer.body_bytes_sent < 32 * 1024 * 1024


# -- dependencies that do not answer -----------------------------------------------------

@pytest.fixture(scope="module")
def private_pg() -> Iterator[dict]:
    """A PostgreSQL cluster of this module's own, which its tests stop and
    start (never the shared server)."""
    info = servers.start_private_postgres("postgres")
    try:
        yield info
    finally:
        servers.stop_one(info)


@pytest.fixture
def outage_svc(private_pg, tmp_path):
    server = make_url(f"postgresql+psycopg://postgres@127.0.0.1:{private_pg['port']}/postgres")
    name = f"outage_{uuid.uuid4().hex[:8]}"
    # No pool: the test restarts the server under it.
    admin = create_engine(server, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    svc = build(make_settings(tmp_path, server.set(database=name).render_as_string(False)))
    upgrade(svc.engine)
    yield svc
    svc.engine.dispose()
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def _assert_unavailable(answer: httpx.Response, dependency: str) -> None:
    assert answer.status_code == 503, answer.text[:500]
    assert answer.headers["Retry-After"] == str(RETRY_AFTER_SECONDS)
    assert answer.json()["error"] == {
        "code": "unavailable", "message": f"the {dependency} does not answer: try again later",
        "details": {"dependency": dependency, "retry_after_seconds": RETRY_AFTER_SECONDS}}


@pytest.mark.parametrize("mode", ["fast", "immediate"])
def test_a_database_restart_is_a_503_with_retry_after_then_200(private_pg, outage_svc,
                                                              households_csv, mode):
    officers = create_officers(outage_svc)
    references = sent_references(outage_svc, officers, households_csv(40))["BARID"]
    token = Api(outage_svc).token("monitor")
    officer = Officer(console_app(outage_svc))
    assert officer.login("monitor", PASSWORD).status_code == 303

    def confirm(event_id: str, status: str) -> httpx.Response:
        body = json.dumps([{"event_id": event_id, "reference": references[0],
                            "status": status}]).encode()
        return httpx.post(url + confirmations(), content=body, timeout=30, headers={
            "Content-Type": "application/json", **signed_headers(confirmations(), body)})

    with api_server(outage_svc, "127.0.0.1", 0) as url:
        assert confirm("E-1", "available").status_code == 200
        servers.stop_private_postgres(private_pg, mode)
        try:
            _assert_unavailable(confirm("E-2", "paid"), "database")
            _assert_unavailable(httpx.get(url + "/api/v1/dashboard", timeout=30, headers={
                "Authorization": f"Bearer {token}"}), "database")
            page = officer.get("/console/")
            assert page.status_code == 503
            assert page.headers["Retry-After"] == str(RETRY_AFTER_SECONDS)
            assert "the database does not answer" in page.get_data(as_text=True)
        finally:
            servers.restart_private_postgres(private_pg)
        after = confirm("E-2", "paid")
        assert after.status_code == 200, after.text[:500]
        assert after.json()["applied"] == 1
        assert officer.get("/console/").status_code == 200


def test_redis_that_does_not_answer_is_a_503_with_retry_after(pg_svc):
    create_officers(pg_svc)
    # A port nothing listens on: connections are refused, as when Redis is down.
    redis_down = pg_svc.with_overrides(redis_url=f"redis://127.0.0.1:{free_port()}/0")
    with api_server(redis_down, "127.0.0.1", 0) as url:
        answer = httpx.get(url + "/api/v1/dashboard", timeout=30, headers={
            "Authorization": f"Bearer {Api(redis_down).token('monitor')}"})
    _assert_unavailable(answer, "redis")
    officer = Officer(console_app(redis_down))
    assert officer.login("monitor", PASSWORD).status_code == 303
    page = officer.get("/console/dashboard.json")
    assert page.status_code == 503
    assert page.headers["Retry-After"] == str(RETRY_AFTER_SECONDS)
    assert "the redis does not answer" in page.get_data(as_text=True)


# -- fuzz --------------------------------------------------------------------------------

HOSTILE_TEXT = st.one_of(
    st.text(min_size=1).map(lambda s: s + "\x00"),
    st.text(alphabet=st.characters(max_codepoint=0x1F), min_size=1).filter(
        lambda s: set(s) - set("\t\n\r")),
    st.text(alphabet=st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF), min_size=1),
    st.text(min_size=300, max_size=2_000),
)
JSON_SCALARS = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False),
                         st.text(max_size=20))
HOSTILE_VALUE = st.one_of(
    HOSTILE_TEXT, st.integers(), st.floats(), st.booleans(),
    st.lists(JSON_SCALARS, max_size=3), st.dictionaries(st.text(max_size=5), JSON_SCALARS,
                                                        max_size=3))
# The fields each route reads: a hostile value elsewhere would be ignored.
FIELDS = {confirmations(): ("event_id", "reference", "status", "occurred_at", "reason",
                            "service_point"),
          returns(): ("event_id", "reference", "reason_code")}
ANY_JSON = st.recursive(JSON_SCALARS, lambda inner: st.lists(inner, max_size=4)
                        | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=20)


@st.composite
def hostile_messages(draw, reference: str) -> tuple[str, bytes]:
    """A route and a message it may not accept: a real reference's item with
    one field the route reads made hostile, random JSON, deep nesting, or
    random bytes."""
    path = draw(st.sampled_from(sorted(FIELDS)))
    kind = draw(st.sampled_from(["field", "field", "field", "json", "nesting", "bytes"]))
    if kind == "field":
        item = {"event_id": draw(st.text(min_size=1, max_size=10)), "reference": reference,
                "status": "paid"}
        item[draw(st.sampled_from(FIELDS[path]))] = draw(HOSTILE_VALUE)
        wrap = draw(st.sampled_from(["item", "list", "list-with-junk"]))
        body = (item if wrap == "item" else [item] if wrap == "list"
                else [item, draw(JSON_SCALARS)])
        return path, json.dumps(body).encode()
    if kind == "json":
        return path, json.dumps(draw(ANY_JSON)).encode()
    if kind == "nesting":
        depth = draw(st.integers(MAX_NESTING_DEPTH + 1, 5_000))
        return path, draw(st.sampled_from([b"[", b'{"a":'])) * depth
    return path, draw(st.binary(max_size=200))


def test_fuzzed_hostile_messages_are_all_refused_with_a_4xx_and_change_nothing(
        pg_svc, households_csv):
    officers = create_officers(pg_svc)
    reference = sent_references(pg_svc, officers, households_csv(40))["BARID"][0]
    client = create_app(services=pg_svc).test_client()
    before = footprint(pg_svc)

    @settings(max_examples=300, deadline=None, derandomize=True,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(message=hostile_messages(reference))
    def refused(message: tuple[str, bytes]) -> None:
        path, body = message
        answer = post(client, path, raw=body)
        assert 400 <= answer.status_code < 500, (body[:200], answer.get_data(as_text=True)[:300])

    refused()
    assert footprint(pg_svc) == before
