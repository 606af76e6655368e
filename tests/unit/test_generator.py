"""The synthetic registry: valid, realistic in shape, reproducible."""
from __future__ import annotations

import io
import random
from collections import Counter

import pytest
from hypothesis import given
from hypothesis import strategies as st

from disbursement.configuration.regions import load_regions
from disbursement.services.registry.generator import (
    CIN_PREFIXES,
    PARTNER_CODES,
    SCORE_THRESHOLD_MICRO,
    BrokenRow,
    generate_households,
    make_rib,
    write_csv,
    write_jsonl,
)
from disbursement.services.registry.reader import iter_raw_rows
from disbursement.services.registry.schema import (
    COLUMNS,
    Channel,
    HouseholdRecord,
    RowError,
    RowOk,
    is_valid_rib,
    validate_rows,
)

REGIONS = load_regions()
N_HOUSEHOLDS = 10_000


def read_back(text: str, fmt: str) -> list[RowOk | RowError]:
    return list(validate_rows(iter_raw_rows(io.BytesIO(text.encode("utf-8")), fmt), REGIONS))


@pytest.fixture(scope="module")
def records() -> list[HouseholdRecord]:
    stream = io.StringIO()
    assert write_csv(stream, N_HOUSEHOLDS) == []
    outcomes = read_back(stream.getvalue(), "csv")
    refused = [outcome for outcome in outcomes if isinstance(outcome, RowError)]
    assert refused == []
    assert [outcome.line for outcome in outcomes] == list(range(2, N_HOUSEHOLDS + 2))
    return [outcome.record for outcome in outcomes]


def test_every_generated_household_validates(records: list[HouseholdRecord]) -> None:
    assert len(records) == N_HOUSEHOLDS
    assert records[0].household_id == "RSU-00000001" and records[-1].household_id == "RSU-00010000"


def test_cins_and_phones_are_unique_in_a_file(records: list[HouseholdRecord]) -> None:
    assert len({record.cin for record in records}) == N_HOUSEHOLDS
    phones = [record.phone for record in records if record.phone]
    assert len(set(phones)) == len(phones)


def test_the_mix_looks_like_the_registry(records: list[HouseholdRecord]) -> None:
    def share(predicate) -> float:
        return sum(1 for record in records if predicate(record)) / N_HOUSEHOLDS

    assert 0.08 < share(lambda r: r.children == 0) < 0.12
    assert 0.04 < share(lambda r: r.flat_rate) < 0.06
    assert 0.02 < share(lambda r: r.orphan) < 0.04
    assert 0.03 < share(lambda r: r.disabled_children > 0) < 0.05
    assert 0.82 < share(lambda r: r.score_micro < SCORE_THRESHOLD_MICRO) < 0.88
    assert share(lambda r: 1 <= r.children <= 4) > 0.7
    assert max(record.children for record in records) <= 8
    channels = Counter(record.channel for record in records)
    assert 0.72 < channels[Channel.CASH] / N_HOUSEHOLDS < 0.78
    assert 0.12 < channels[Channel.WALLET] / N_HOUSEHOLDS < 0.18
    assert 0.08 < channels[Channel.BANK] / N_HOUSEHOLDS < 0.12
    assert {record.partner_code for record in records} == {None, *PARTNER_CODES}
    assert 0.8 < share(lambda r: r.partner_code is None) < 0.9


def test_regions_follow_population_and_provinces_their_region(
        records: list[HouseholdRecord]) -> None:
    by_region = Counter(record.region_code for record in records)
    assert by_region.most_common(1)[0][0] == "06"  # Casablanca-Settat, ~20%
    assert set(by_region) == set(REGIONS)
    for record in records:
        assert record.province_code in REGIONS[record.region_code].provinces
        assert record.commune_code.startswith(record.province_code)
        assert record.cin.rstrip("0123456789") in CIN_PREFIXES[record.region_code]


def test_names_mix_arabic_script_and_transliteration(records: list[HouseholdRecord]) -> None:
    arabic = sum(1 for record in records if "\u0600" <= record.head_name[0] <= "\u06ff")
    assert 0.4 < arabic / N_HOUSEHOLDS < 0.6


def test_bank_and_wallet_households_carry_their_account(records: list[HouseholdRecord]) -> None:
    assert {Channel.BANK, Channel.WALLET} <= {record.channel for record in records}
    for record in records:
        if record.channel is Channel.BANK:
            assert record.account is not None and is_valid_rib(record.account)
        if record.channel is Channel.WALLET:
            assert record.wallet_phone is not None


def test_the_same_seed_gives_the_same_households() -> None:
    assert list(generate_households(500, seed=3)) == list(generate_households(500, seed=3))
    assert list(generate_households(500, seed=3)) != list(generate_households(500, seed=4))


def test_rows_are_strings_in_column_order() -> None:
    row = next(generate_households(1))
    assert tuple(row) == COLUMNS
    assert all(isinstance(value, str) for value in row.values())


def test_generation_streams() -> None:
    households = generate_households(10**9)
    assert next(households)["household_id"] == "RSU-00000001"


@pytest.mark.parametrize(("write", "fmt", "first_line"),
                         [(write_csv, "csv", 2), (write_jsonl, "jsonl", 1)])
def test_broken_rows_are_reported_at_their_lines(write, fmt: str, first_line: int) -> None:
    stream = io.StringIO()
    broken = write(stream, 1_000, seed=11, bad_rows=8)
    assert [row.field for row in broken] == ["cin", "children_0_5",
                                             "region_code", "household_id"] * 2
    # Spread evenly: data row index (k + 1) * n // (bad_rows + 1).
    assert [row.line for row in broken] == [first_line + (k + 1) * 1_000 // 9 for k in range(8)]
    refused = [outcome for outcome in read_back(stream.getvalue(), fmt)
               if isinstance(outcome, RowError)]
    assert [(outcome.line, outcome.household_id, outcome.errors[0][0]) for outcome in refused] == [
        (row.line, row.household_id, row.field) for row in broken]
    assert [len(outcome.errors) for outcome in refused] == [1] * 8
    duplicate = refused[3]
    assert duplicate.errors[0][1] == (
        f'duplicate household id "{duplicate.household_id}", '
        f"first seen on line {duplicate.line - 1}")


def test_broken_rows_are_at_the_same_place_for_csv_and_jsonl() -> None:
    csv_broken = write_csv(io.StringIO(), 300, bad_rows=3)
    jsonl_broken = write_jsonl(io.StringIO(), 300, bad_rows=3)
    assert [BrokenRow(row.line - 1, row.household_id, row.field)
            for row in csv_broken] == jsonl_broken


def test_too_many_broken_rows_are_refused() -> None:
    with pytest.raises(ValueError, match="bad_rows must be between 0 and n - 1"):
        write_csv(io.StringIO(), 5, bad_rows=5)


def test_a_file_path_is_written_as_utf8(tmp_path) -> None:
    path = tmp_path / "households.jsonl"
    write_jsonl(path, 50)
    assert len(path.read_text(encoding="utf-8").splitlines()) == 50
    outcomes = list(read_back(path.read_text(encoding="utf-8"), "jsonl"))
    assert len(outcomes) == 50 and all(isinstance(outcome, RowOk) for outcome in outcomes)


@given(st.integers(min_value=0, max_value=2**32), st.integers(min_value=0, max_value=4_000_000))
def test_generated_ribs_always_carry_a_correct_key(seed: int, index: int) -> None:
    rib = make_rib(random.Random(seed), index)
    assert len(rib) == 24 and is_valid_rib(rib)
