"""HMAC signing of partner messages: each refusal names its exact reason."""
from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from connectors.signing import (
    MAX_CLOCK_SKEW_SECONDS,
    NONCE_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    MemoryNonces,
    ReplayError,
    SignatureError,
    request_target,
    sign,
    verify,
)

KEY = b"current-key"
OLD_KEY = b"previous-key"
BODY = b'{"transfers":[{"reference":"D0000000000001","amount_centimes":70000}]}'
NOW = 1_790_000_000
METHOD, TARGET = "POST", "/v1/transfers"


def signed(key: bytes = KEY, body: bytes = BODY, now: float = NOW, **kw) -> dict[str, str]:
    return sign(key, body, method=kw.pop("method", METHOD), target=kw.pop("target", TARGET),
                now=now, **kw)


def check(keys: list[bytes], headers: dict[str, str], body: bytes = BODY, now: float = NOW,
          **kw):
    return verify(keys, headers, body, method=kw.pop("method", METHOD),
                  target=kw.pop("target", TARGET), now=now, **kw)


def refusal(keys: list[bytes], headers: dict[str, str], body: bytes = BODY,
            now: float = NOW, **kw) -> str:
    with pytest.raises(SignatureError) as caught:
        check(keys, headers, body, now, **kw)
    return str(caught.value)


def test_signature_made_with_the_key_verifies() -> None:
    headers = signed()

    verified = check([KEY], headers)

    assert headers[TIMESTAMP_HEADER] == str(NOW)
    assert headers[SIGNATURE_HEADER].startswith("v2=")
    assert (verified.nonce, verified.timestamp, verified.key_index) == \
        (headers[NONCE_HEADER], NOW, 0)


@given(key=st.binary(min_size=1, max_size=64), body=st.binary(max_size=2048),
       method=st.sampled_from(["GET", "POST"]),
       target=st.from_regex(r"/[a-z0-9/]{0,30}(\?[a-z]=[0-9]{1,4})?", fullmatch=True))
def test_any_request_signed_with_any_key_verifies(key: bytes, body: bytes, method: str,
                                                   target: str) -> None:
    headers = sign(key, body, method=method, target=target, now=NOW)
    verify([key], headers, body, method=method, target=target, now=NOW)


def test_every_signature_has_a_fresh_nonce() -> None:
    assert signed()[NONCE_HEADER] != signed()[NONCE_HEADER]


def test_wrong_key_is_refused() -> None:
    assert refusal([KEY], signed(b"somebody-else")) == "signature does not match"


def test_tampered_body_is_refused() -> None:
    assert refusal([KEY], signed(), BODY.replace(b"70000", b"70001")) == \
        "signature does not match"


@pytest.mark.parametrize("header, value", [(TIMESTAMP_HEADER, str(NOW + 1)),
                                           (NONCE_HEADER, "another-nonce-0123456789")])
def test_tampered_timestamp_or_nonce_is_refused(header: str, value: str) -> None:
    headers = signed()
    headers[header] = value

    assert refusal([KEY], headers) == "signature does not match"


@pytest.mark.parametrize("other", [{"method": "GET"}, {"target": "/v1/transfers/status"},
                                   {"target": "/v1/transfers?x=1"}])
def test_signature_is_bound_to_method_and_target(other: dict) -> None:
    assert refusal([KEY], signed(), **other) == "signature does not match"


@pytest.mark.parametrize("age_seconds", [MAX_CLOCK_SKEW_SECONDS + 1, 86_400])
def test_stale_timestamp_is_refused(age_seconds: int) -> None:
    assert refusal([KEY], signed(now=NOW - age_seconds)) == \
        f"timestamp outside the {MAX_CLOCK_SKEW_SECONDS}s window"


def test_timestamp_from_the_future_is_refused() -> None:
    assert refusal([KEY], signed(now=NOW + MAX_CLOCK_SKEW_SECONDS + 1)) == \
        f"timestamp outside the {MAX_CLOCK_SKEW_SECONDS}s window"


@pytest.mark.parametrize("skew_seconds", [-MAX_CLOCK_SKEW_SECONDS, MAX_CLOCK_SKEW_SECONDS])
def test_skew_at_the_window_edge_is_accepted(skew_seconds: int) -> None:
    check([KEY], signed(now=NOW + skew_seconds))


def test_either_key_verifies_during_a_rotation() -> None:
    active = [KEY, OLD_KEY]

    assert check(active, signed(KEY)).key_index == 0
    assert check(active, signed(OLD_KEY)).key_index == 1
    assert refusal(active, signed(b"retired-key")) == "signature does not match"


def test_retired_key_is_refused_after_the_rotation() -> None:
    assert refusal([KEY], signed(OLD_KEY)) == "signature does not match"


def test_a_replayed_nonce_is_refused() -> None:
    nonces = MemoryNonces()
    headers = signed()

    check([KEY], headers, nonces=nonces)

    assert refusal([KEY], headers, nonces=nonces) == \
        "nonce already used: replayed message refused"
    with pytest.raises(ReplayError):
        check([KEY], headers, nonces=nonces)
    check([KEY], signed(), nonces=nonces)          # a fresh nonce passes


def test_a_badly_signed_message_does_not_spend_the_nonce() -> None:
    nonces = MemoryNonces()
    headers = signed()
    forged = {**headers, SIGNATURE_HEADER: "v2=" + "0" * 64}

    assert refusal([KEY], forged, nonces=nonces) == "signature does not match"
    check([KEY], headers, nonces=nonces)


MISSING = f"missing {TIMESTAMP_HEADER}, {NONCE_HEADER} or {SIGNATURE_HEADER} header"


@pytest.mark.parametrize("dropped", [TIMESTAMP_HEADER, NONCE_HEADER, SIGNATURE_HEADER])
def test_missing_header_is_refused(dropped: str) -> None:
    headers = signed()
    del headers[dropped]

    assert refusal([KEY], headers) == MISSING


def test_no_headers_at_all_is_refused() -> None:
    assert refusal([KEY], {}) == MISSING


@pytest.mark.parametrize("timestamp", ["2026-12-05T10:00:00Z", "-1", "1.5", " 1790000000",
                                       "\u0661\u0667\u0669"])
def test_timestamp_not_in_unix_seconds_is_refused(timestamp: str) -> None:
    headers = signed()
    headers[TIMESTAMP_HEADER] = timestamp

    assert refusal([KEY], headers) == f"{TIMESTAMP_HEADER} is not Unix seconds"


@pytest.mark.parametrize("nonce", ["short", "x" * 65, "has space in it 0123"])
def test_malformed_nonce_is_refused(nonce: str) -> None:
    headers = signed()
    headers[NONCE_HEADER] = nonce

    assert refusal([KEY], headers) == \
        f"{NONCE_HEADER} must be 16-64 characters [A-Za-z0-9_-]"


def test_unknown_signature_scheme_is_refused() -> None:
    headers = signed()
    headers[SIGNATURE_HEADER] = "v1=" + headers[SIGNATURE_HEADER][3:]

    assert refusal([KEY], headers) == "signature scheme is not v2"


def test_no_active_key_verifies_nothing() -> None:
    assert refusal([], signed()) == "signature does not match"


def test_request_target_adds_the_query_only_when_there_is_one() -> None:
    assert request_target("/v1/x", b"") == "/v1/x"
    assert request_target("/v1/x", b"since=2026-12-01") == "/v1/x?since=2026-12-01"


def test_signature_is_hmac_sha256_of_the_canonical_request() -> None:
    # Pinned so a partner implementing the scheme from the docs interoperates:
    # HMAC-SHA256(key, "POST\n/v1/transfers\n1700000000\n<nonce>\n" + body).
    headers = sign(b"key", b"{}", method="post", target="/v1/transfers", now=1_700_000_000,
                   nonce="n0nce-n0nce-n0nce")

    assert headers == {
        TIMESTAMP_HEADER: "1700000000", NONCE_HEADER: "n0nce-n0nce-n0nce",
        SIGNATURE_HEADER:
            "v2=ea28a04211f3839a46041fd8e5ad971f82f080899795ed9d0462a1b1b9be1aeb"}
