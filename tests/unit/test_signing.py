"""HMAC signing of partner messages: each refusal names its exact reason."""
from __future__ import annotations

import pytest
from hypothesis import given, strategies as st

from connectors.signing import (MAX_CLOCK_SKEW_SECONDS, SIGNATURE_HEADER, TIMESTAMP_HEADER,
                                SignatureError, sign, verify)

KEY = b"current-key"
OLD_KEY = b"previous-key"
BODY = b'{"transfers":[{"reference":"D0000000000001","amount_centimes":70000}]}'
NOW = 1_790_000_000


def refusal(keys: list[bytes], headers: dict[str, str], body: bytes = BODY,
            now: float = NOW) -> str:
    with pytest.raises(SignatureError) as caught:
        verify(keys, headers, body, now=now)
    return str(caught.value)


def test_signature_made_with_the_key_verifies() -> None:
    headers = sign(KEY, BODY, now=NOW)

    verify([KEY], headers, BODY, now=NOW)

    assert headers[TIMESTAMP_HEADER] == str(NOW)
    assert headers[SIGNATURE_HEADER].startswith("v1=")


@given(key=st.binary(min_size=1, max_size=64), body=st.binary(max_size=2048))
def test_any_body_signed_with_any_key_verifies(key: bytes, body: bytes) -> None:
    verify([key], sign(key, body, now=NOW), body, now=NOW)


def test_wrong_key_is_refused() -> None:
    headers = sign(b"somebody-else", BODY, now=NOW)

    assert refusal([KEY], headers) == "signature does not match"


def test_tampered_body_is_refused() -> None:
    headers = sign(KEY, BODY, now=NOW)

    assert refusal([KEY], headers, BODY.replace(b"70000", b"70001")) == \
        "signature does not match"


def test_tampered_timestamp_is_refused() -> None:
    headers = sign(KEY, BODY, now=NOW)
    headers[TIMESTAMP_HEADER] = str(NOW + 1)

    assert refusal([KEY], headers) == "signature does not match"


@pytest.mark.parametrize("age_seconds", [MAX_CLOCK_SKEW_SECONDS + 1, 86_400])
def test_stale_timestamp_is_refused(age_seconds: int) -> None:
    headers = sign(KEY, BODY, now=NOW - age_seconds)

    assert refusal([KEY], headers) == \
        f"timestamp outside the {MAX_CLOCK_SKEW_SECONDS}s window"


def test_timestamp_from_the_future_is_refused() -> None:
    headers = sign(KEY, BODY, now=NOW + MAX_CLOCK_SKEW_SECONDS + 1)

    assert refusal([KEY], headers) == \
        f"timestamp outside the {MAX_CLOCK_SKEW_SECONDS}s window"


@pytest.mark.parametrize("skew_seconds", [-MAX_CLOCK_SKEW_SECONDS, MAX_CLOCK_SKEW_SECONDS])
def test_skew_at_the_window_edge_is_accepted(skew_seconds: int) -> None:
    verify([KEY], sign(KEY, BODY, now=NOW + skew_seconds), BODY, now=NOW)


def test_either_key_verifies_during_a_rotation() -> None:
    active = [KEY, OLD_KEY]

    verify(active, sign(KEY, BODY, now=NOW), BODY, now=NOW)
    verify(active, sign(OLD_KEY, BODY, now=NOW), BODY, now=NOW)
    assert refusal(active, sign(b"retired-key", BODY, now=NOW)) == "signature does not match"


def test_retired_key_is_refused_after_the_rotation() -> None:
    assert refusal([KEY], sign(OLD_KEY, BODY, now=NOW)) == "signature does not match"


MISSING = f"missing {TIMESTAMP_HEADER} or {SIGNATURE_HEADER} header"


@pytest.mark.parametrize("dropped", [TIMESTAMP_HEADER, SIGNATURE_HEADER])
def test_missing_header_is_refused(dropped: str) -> None:
    headers = sign(KEY, BODY, now=NOW)
    del headers[dropped]

    assert refusal([KEY], headers) == MISSING


def test_no_headers_at_all_is_refused() -> None:
    assert refusal([KEY], {}) == MISSING


def test_empty_header_is_refused_as_missing() -> None:
    headers = sign(KEY, BODY, now=NOW)
    headers[SIGNATURE_HEADER] = ""

    assert refusal([KEY], headers) == MISSING


@pytest.mark.parametrize("timestamp", ["2026-12-05T10:00:00Z", "-1", "1.5", " 1790000000"])
def test_timestamp_not_in_unix_seconds_is_refused(timestamp: str) -> None:
    headers = sign(KEY, BODY, now=NOW)
    headers[TIMESTAMP_HEADER] = timestamp

    assert refusal([KEY], headers) == f"{TIMESTAMP_HEADER} is not Unix seconds"


def test_unknown_signature_scheme_is_refused() -> None:
    headers = sign(KEY, BODY, now=NOW)
    headers[SIGNATURE_HEADER] = "v0=" + headers[SIGNATURE_HEADER][3:]

    assert refusal([KEY], headers) == "signature scheme is not v1"


def test_no_active_key_verifies_nothing() -> None:
    assert refusal([], sign(KEY, BODY, now=NOW)) == "signature does not match"


def test_signature_is_hmac_sha256_of_timestamp_dot_body() -> None:
    # Pinned so a partner implementing the scheme from the docs interoperates.
    headers = sign(b"key", b"{}", now=1_700_000_000)

    assert headers == {
        TIMESTAMP_HEADER: "1700000000",
        SIGNATURE_HEADER:
            "v1=9d713ed406bb7076d4123f0dc2c39d2df5c654ed4b0cd56b52c8b4c940bd63ae"}
