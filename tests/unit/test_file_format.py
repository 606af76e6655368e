"""The file-exchange CSV format: what one side writes the other side verifies,
and any cut, any altered trailer, any altered byte is caught and named."""
from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from connectors import file_format as ff

references = st.text(alphabet="ABCDEFGHJKLMNPQRSTUVWXYZ0123456789", min_size=1, max_size=16)
rows = st.lists(st.fixed_dictionaries({
    "reference": references,
    "amount_centimes": st.integers(min_value=1, max_value=10**12),
    "currency": st.just("MAD"), "status": st.just("paid"),
    "value_date": st.just("2026-12-05"),
    "service_point": st.text(alphabet="SP-0123456789é,\"", max_size=10)}), max_size=30)
NAME = "SETTLE-000001.csv"


@given(rows)
def test_what_is_written_verifies_with_its_count_and_exact_total(written) -> None:
    data = ff.render(ff.SETTLEMENT_COLUMNS, written)

    verified = ff.verify(NAME, data, ff.checksum_file(NAME, data))

    assert [{k: v for k, v in r.items() if k != "_line"} for r in verified.rows] == \
        [{k: str(v) for k, v in r.items()} for r in written]
    assert verified.total_centimes == sum(r["amount_centimes"] for r in written)


@given(rows.filter(bool), st.data())
def test_a_file_cut_anywhere_is_refused_even_with_a_matching_checksum(written, data) -> None:
    full = ff.render(ff.SETTLEMENT_COLUMNS, written)
    cut = full[:data.draw(st.integers(min_value=0, max_value=len(full) - 2))]

    with pytest.raises(ff.FileProblem):
        ff.verify(NAME, cut, ff.checksum_file(NAME, cut))


@given(rows.filter(bool), st.integers(min_value=1, max_value=5))
def test_a_trailer_disagreeing_with_its_lines_names_the_trailer_line(written, off_by) -> None:
    head, _, trailer = ff.render(ff.SETTLEMENT_COLUMNS, written).rstrip(b"\n").rpartition(b"\n")
    _, count, total = trailer.decode().split(",")
    for bad in (f"TRAILER,{int(count) + off_by},{total}", f"TRAILER,{count},{int(total) + off_by}"):
        data = head + b"\n" + bad.encode() + b"\n"
        with pytest.raises(ff.FileProblem) as caught:
            ff.verify(NAME, data, ff.checksum_file(NAME, data))
        assert caught.value.line == len(written) + 2 and "trailer says" in str(caught.value)


def test_a_checksum_mismatch_names_both_digests() -> None:
    data = ff.render(ff.STATUS_COLUMNS, [])
    with pytest.raises(ff.FileProblem, match="checksum mismatch") as caught:
        ff.verify("STATUS-000001.csv", data + b" ", ff.checksum_file("STATUS-000001.csv", data))
    assert ff.sha256_hex(data) in str(caught.value)


@pytest.mark.parametrize("line, problem", [
    ("D1,paid,-5,MAD,,,", "amount_centimes '-5'"),
    ("D1,paid,12.5,MAD,,,", "amount_centimes '12.5'"),
    ("D1,paid,100,MAD", "4 fields, expected 7"),
    (",paid,100,MAD,,,", "reference is empty"),
])
def test_a_bad_line_is_named_by_its_number(line, problem) -> None:
    data = ("\n".join([",".join(ff.STATUS_COLUMNS), "D0,paid,100,MAD,,,", line,
                       "TRAILER,2,200"]) + "\n").encode()
    with pytest.raises(ff.FileProblem, match=problem) as caught:
        ff.verify("STATUS-000009.csv", data, ff.checksum_file("STATUS-000009.csv", data))
    assert caught.value.line == 3 and "STATUS-000009.csv line 3" in str(caught.value)


def test_unknown_names_and_missing_checksums_are_refused() -> None:
    data = ff.render(ff.STATUS_COLUMNS, [])
    with pytest.raises(ff.FileProblem, match="unknown name prefix"):
        ff.verify("REPORT-1.csv", data, ff.checksum_file("REPORT-1.csv", data))
    with pytest.raises(ff.FileProblem, match="is missing"):
        ff.verify("STATUS-1.csv", data, None)
