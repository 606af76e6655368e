"""Reading extracts: line numbers, BOM, broken lines, checksum, streaming."""
from __future__ import annotations

import hashlib
import io
from decimal import Decimal

import pytest

from disbursement.services.registry.reader import (
    MAX_LINE_BYTES,
    RawRowError,
    RegistryFileError,
    detect_format,
    iter_raw_rows,
)


def rows(data: bytes, fmt: str) -> list[tuple[int, object]]:
    return list(iter_raw_rows(io.BytesIO(data), fmt))


@pytest.mark.parametrize(("filename", "fmt"), [
    ("households.csv", "csv"), ("EXPORT.CSV", "csv"), ("a.jsonl", "jsonl"),
    ("dir.v2/a.ndjson", "jsonl"),
])
def test_the_format_comes_from_the_extension(filename: str, fmt: str) -> None:
    assert detect_format(filename) == fmt


def test_an_unknown_extension_names_the_supported_ones() -> None:
    with pytest.raises(ValueError, match=r"supported extensions are \.csv, \.jsonl, \.ndjson"):
        detect_format("households.xlsx")


def test_an_unknown_format_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown registry format 'xml'"):
        iter_raw_rows(io.BytesIO(b""), "xml")


# --- CSV -----------------------------------------------------------------------

def test_csv_rows_carry_their_physical_line_number() -> None:
    data = "household_id,head_name\nRSU-1,Fatima\n\nRSU-2,محمد\n".encode()
    assert rows(data, "csv") == [(2, {"household_id": "RSU-1", "head_name": "Fatima"}),
                                 (4, {"household_id": "RSU-2", "head_name": "محمد"})]


def test_a_byte_order_mark_and_crlf_line_ends_are_accepted() -> None:
    data = "\ufeffhousehold_id , cin\r\nRSU-1,AB1\r\n".encode()
    assert rows(data, "csv") == [(2, {"household_id": "RSU-1", "cin": "AB1"})]


def test_a_quoted_newline_keeps_the_line_where_the_row_starts() -> None:
    data = b'household_id,head_name\nRSU-1,"two\nlines"\nRSU-2,x\n'
    assert rows(data, "csv") == [(2, {"household_id": "RSU-1", "head_name": "two\nlines"}),
                                 (4, {"household_id": "RSU-2", "head_name": "x"})]


def test_a_row_with_the_wrong_number_of_values_is_a_row_error() -> None:
    data = b"household_id,cin\nRSU-1\nRSU-2,A1,extra\nRSU-3,A3\n"
    assert rows(data, "csv") == [
        (2, RawRowError("has 1 values but the header has 2 columns")),
        (3, RawRowError("has 3 values but the header has 2 columns")),
        (4, {"household_id": "RSU-3", "cin": "A3"}),
    ]


def test_invalid_utf8_spoils_only_its_row() -> None:
    data = b"household_id,head_name\nRSU-1,F\xe9tima\nRSU-2,ok\n"
    assert rows(data, "csv") == [(2, RawRowError("is not valid UTF-8 (byte 8 of the line)")),
                                 (3, {"household_id": "RSU-2", "head_name": "ok"})]


def test_a_bad_quote_is_a_row_error_and_reading_goes_on() -> None:
    data = b'household_id,cin\nRSU-1,"A1"x\nRSU-2,A2\n'
    result = rows(data, "csv")
    assert result[0][0] == 2 and isinstance(result[0][1], RawRowError)
    assert result[0][1].message.startswith("is not valid CSV: ")
    assert result[1] == (3, {"household_id": "RSU-2", "cin": "A2"})


def test_an_overlong_line_is_a_row_error_without_being_held() -> None:
    data = b"household_id,cin\nRSU-1," + b"A" * (3 * MAX_LINE_BYTES) + b"\nRSU-2,A2\n"
    assert rows(data, "csv") == [(2, RawRowError(f"line is longer than {MAX_LINE_BYTES} bytes")),
                                 (3, {"household_id": "RSU-2", "cin": "A2"})]


@pytest.mark.parametrize(("data", "message"), [
    (b"", "CSV file is empty: expected a header row"),
    (b"household_id,cin,household_id\n", "CSV header names column 'household_id' twice"),
    (b"household_id,,cin\n", r"CSV header has an empty column name \(column 2\)"),
])
def test_an_unusable_header_stops_the_file(data: bytes, message: str) -> None:
    with pytest.raises(RegistryFileError, match=message):
        rows(data, "csv")


# --- JSON Lines ----------------------------------------------------------------

def test_jsonl_skips_blank_lines_and_reports_broken_ones() -> None:
    data = (b'{"household_id": "RSU-1", "score": 9.743001}\n\n  \n'
            b'{"household_id": \n[1, 2]\n{"n": 3}')
    assert rows(data, "jsonl") == [
        (1, {"household_id": "RSU-1", "score": Decimal("9.743001")}),
        (4, RawRowError("is not valid JSON: Expecting value (column 18)")),
        (5, RawRowError("is not a JSON object (got list)")),
        (6, {"n": 3}),
    ]


def test_jsonl_numbers_never_become_floats() -> None:
    [(_, row)] = rows(b'{"a": 0.1, "b": 2}\n', "jsonl")
    assert row == {"a": Decimal("0.1"), "b": 2} and type(row["a"]) is Decimal


def test_jsonl_tolerates_a_byte_order_mark() -> None:
    assert rows('\ufeff{"a": "b"}\n'.encode(), "jsonl") == [(1, {"a": "b"})]


# --- checksum and streaming ----------------------------------------------------

@pytest.mark.parametrize(("fmt", "data"), [
    ("csv", "\ufeffhousehold_id,cin\r\nRSU-1,A1\r\nRSU-2\r\n\r\nRSU-3,\"x\"".encode()),
    ("jsonl", b'{"a": 1}\nnot json\n\n{"b": 2}\n'),
])
def test_the_digest_sees_every_byte_of_the_file(fmt: str, data: bytes) -> None:
    digest = hashlib.sha256()
    list(iter_raw_rows(io.BytesIO(data), fmt, digest=digest))
    assert digest.hexdigest() == hashlib.sha256(data).hexdigest()


def test_the_digest_covers_an_overlong_line() -> None:
    data = b'{"a": "' + b"x" * (2 * MAX_LINE_BYTES) + b'"}\n{"b": 1}\n'
    digest = hashlib.sha256()
    list(iter_raw_rows(io.BytesIO(data), "jsonl", digest=digest))
    assert digest.digest() == hashlib.sha256(data).digest()


class CountingStream(io.BytesIO):
    """Records how far the reader has read, to prove it streams."""

    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.furthest = 0

    def readline(self, size: int | None = -1) -> bytes:
        line = super().readline(size)
        self.furthest = self.tell()
        return line


@pytest.mark.parametrize(("fmt", "header", "line"), [
    ("csv", b"household_id,cin\n", b"RSU-1,A1\n"),
    ("jsonl", b"", b'{"household_id": "RSU-1"}\n'),
])
def test_the_reader_streams_instead_of_reading_the_whole_file(fmt: str,
                                                              header: bytes, line: bytes) -> None:
    stream = CountingStream(header + line * 100_000)
    iterator = iter_raw_rows(stream, fmt)
    next(iterator)
    assert stream.furthest < 4 * len(line) + len(header)
