"""Personal data at rest: sealed blobs open only unaltered and under the key
that made them; search hashes are keyed and forgiving of case and spaces."""
from __future__ import annotations

import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from disbursement.crypto import KEY_ID, NONCE_BYTES, PersonalDataVault, SealError, mask

KEY = bytes(range(32))
OTHER_KEY = bytes(range(1, 33))
FIELDS = {"national_id": "AB123456", "full_name": "فاطمة الزهراء بنعلي",
          "phone": "+212612345678", "account": None, "address": "درب السلطان، الدار البيضاء"}


@pytest.fixture(scope="module")
def vault() -> PersonalDataVault:
    return PersonalDataVault(KEY)


def refusal(vault: PersonalDataVault, blob: bytes) -> str:
    with pytest.raises(SealError) as caught:
        vault.open(blob)
    return str(caught.value)


def test_sealed_arabic_text_opens_to_the_same_fields(vault) -> None:
    assert vault.open(vault.seal(FIELDS)) == FIELDS


def test_sealed_blob_shows_nothing_of_the_fields(vault) -> None:
    blob = vault.seal(FIELDS)

    assert b"AB123456" not in blob
    assert "فاطمة".encode() not in blob and b"\\u0641" not in blob


def test_same_fields_sealed_twice_give_different_blobs(vault) -> None:
    assert vault.seal(FIELDS) != vault.seal(FIELDS)


def test_blob_opens_in_another_vault_with_the_same_key(vault) -> None:
    assert PersonalDataVault(KEY).open(vault.seal(FIELDS)) == FIELDS


@given(fields=st.dictionaries(st.text(max_size=20), st.one_of(st.none(), st.text(max_size=60)),
                              max_size=6))
def test_any_fields_round_trip(fields: dict[str, str | None]) -> None:
    vault = PersonalDataVault(KEY)

    assert vault.open(vault.seal(fields)) == fields


@given(data=st.data())
def test_any_altered_byte_after_the_key_id_is_refused(data) -> None:
    vault = PersonalDataVault(KEY)
    blob = vault.seal(FIELDS)
    position = data.draw(st.integers(len(KEY_ID), len(blob) - 1))
    flip = data.draw(st.integers(1, 255))
    altered = blob[:position] + bytes([blob[position] ^ flip]) + blob[position + 1:]

    assert refusal(vault, altered) == "sealed personal data failed authentication"


@pytest.mark.parametrize("cut", [1, 16, NONCE_BYTES + 16])
def test_truncated_blob_is_refused(vault, cut: int) -> None:
    blob = vault.seal(FIELDS)

    assert refusal(vault, blob[:-cut]) == "sealed personal data failed authentication"


def test_blob_sealed_under_another_master_key_is_refused(vault) -> None:
    blob = PersonalDataVault(OTHER_KEY).seal(FIELDS)

    assert refusal(vault, blob) == "sealed personal data failed authentication"


@pytest.mark.parametrize("key_id", [b"k2", b"K1", b"k0"])
def test_blob_with_an_unknown_key_id_is_refused(vault, key_id: bytes) -> None:
    blob = key_id + vault.seal(FIELDS)[len(KEY_ID):]

    assert refusal(vault, blob) == f"unknown key id {key_id!r}"


def test_empty_blob_is_refused(vault) -> None:
    assert refusal(vault, b"") == "unknown key id b''"


@pytest.mark.parametrize("length", [0, 16, 31])
def test_master_key_shorter_than_32_bytes_is_refused(length: int) -> None:
    with pytest.raises(ValueError, match="at least 32 bytes"):
        PersonalDataVault(bytes(length))


def test_search_hash_is_stable_across_vaults_with_the_same_key(vault) -> None:
    assert vault.search_hash("AB123456") == PersonalDataVault(KEY).search_hash("AB123456")


@pytest.mark.parametrize("typed", ["ab123456", " AB123456", "AB123456  ", "\tAb123456\n"])
def test_search_hash_ignores_case_and_surrounding_spaces(vault, typed: str) -> None:
    assert vault.search_hash(typed) == vault.search_hash("AB123456")


def test_search_hash_tells_different_ids_apart(vault) -> None:
    assert vault.search_hash("AB123456") != vault.search_hash("AB123457")


@given(value=st.text(min_size=1, max_size=30))
def test_search_hash_depends_on_the_key(value: str) -> None:
    assert (PersonalDataVault(KEY).search_hash(value)
            != PersonalDataVault(OTHER_KEY).search_hash(value))


def test_search_hash_is_not_the_plain_sha256(vault) -> None:
    assert vault.search_hash("AB123456") != hashlib.sha256(b"AB123456").hexdigest()
    assert len(vault.search_hash("AB123456")) == 64


@pytest.mark.parametrize("value, keep, masked", [
    ("AB123456", 3, "*****456"),
    ("+212612345678", 4, "*********5678"),
    ("ABC", 3, "ABC"),
    ("", 3, ""),
    (None, 3, ""),
])
def test_mask_keeps_only_the_last_characters(value: str | None, keep: int, masked: str) -> None:
    assert mask(value, keep) == masked


@given(value=st.text(min_size=1, max_size=30), keep=st.integers(0, 8))
def test_mask_hides_all_but_the_last_keep_characters(value: str, keep: int) -> None:
    masked = mask(value, keep)
    hidden = max(len(value) - keep, 0)

    assert len(masked) == len(value)
    assert masked[:hidden] == "*" * hidden
    assert masked[hidden:] == value[hidden:]
