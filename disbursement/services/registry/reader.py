"""Stream raw rows out of a registry extract (CSV or JSON Lines).

The extract of the unified social registry can hold millions of households, so
the file is read line by line and never held in memory. Every byte read is fed
to an optional hash so the caller gets the file checksum in the same pass.

Nothing here judges the content of a row: that is `schema.validate_rows`. A
line that cannot even be turned into a row (bad JSON, wrong number of CSV
values, invalid UTF-8) becomes a `RawRowError` in the stream instead of
aborting the whole file, so one broken line costs one row, not the upload.
"""
from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import PurePath
from typing import Any, BinaryIO, Protocol

FORMATS_BY_EXTENSION = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl"}

# A registry row is a few hundred bytes; a line far longer than this is a
# broken file (or a hostile one) and must not be able to exhaust memory.
MAX_LINE_BYTES = 64 * 1024

_BOM = "\ufeff"


class RegistryFileError(ValueError):
    """Raised when the file as a whole is unusable (no CSV header, duplicate
    or empty column names), as opposed to a single bad line."""


@dataclass(frozen=True, slots=True)
class RawRowError:
    """Stands in the row stream for a line that could not be read as a row."""

    message: str
    household_id: str | None = None


RawRow = dict[str, Any]


class Digest(Protocol):
    def update(self, data: bytes, /) -> None: ...


def detect_format(filename: str) -> str:
    """'households.csv' -> 'csv'; refuses extensions we do not read."""
    suffix = PurePath(filename).suffix.lower()
    try:
        return FORMATS_BY_EXTENSION[suffix]
    except KeyError:
        supported = ", ".join(sorted(FORMATS_BY_EXTENSION))
        raise ValueError(
            f"cannot tell the format of {filename!r}: supported extensions are {supported}"
        ) from None


def iter_raw_rows(
    stream: BinaryIO, fmt: str, *, digest: Digest | None = None
) -> Iterator[tuple[int, RawRow | RawRowError]]:
    """Yield (line number, row) pairs; line 1 is the first line of the file.

    `digest` (e.g. `hashlib.sha256()`) receives every byte of the file; it is
    complete once the iterator is exhausted.
    """
    lines = _physical_lines(stream, digest)
    if fmt == "csv":
        return _csv_rows(lines)
    if fmt == "jsonl":
        return _jsonl_rows(lines)
    raise ValueError(f"unknown registry format {fmt!r}: expected 'csv' or 'jsonl'")


@dataclass(frozen=True, slots=True)
class _Line:
    number: int
    text: str
    problem: str | None  # why the line is unreadable, if it is


def _physical_lines(stream: BinaryIO, digest: Digest | None) -> Iterator[_Line]:
    number = 0
    while True:
        raw = stream.readline(MAX_LINE_BYTES + 1)
        if not raw:
            return
        number += 1
        if digest is not None:
            digest.update(raw)
        problem = None
        if len(raw) > MAX_LINE_BYTES and not raw.endswith(b"\n"):
            problem = f"line is longer than {MAX_LINE_BYTES} bytes"
            raw = b"\n"
            _skip_rest_of_line(stream, digest)
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            problem = f"is not valid UTF-8 (byte {exc.start + 1} of the line)"
            text = raw.decode("utf-8", errors="replace")
        if number == 1 and text.startswith(_BOM):
            text = text[1:]
        yield _Line(number, text, problem)


def _skip_rest_of_line(stream: BinaryIO, digest: Digest | None) -> None:
    while True:
        chunk = stream.readline(MAX_LINE_BYTES)
        if digest is not None:
            digest.update(chunk)
        if not chunk or chunk.endswith(b"\n"):
            return


def _csv_rows(lines: Iterator[_Line]) -> Iterator[tuple[int, RawRow | RawRowError]]:
    # csv.reader may pull several physical lines for one record (a quoted
    # value with a newline inside); we remember which lines it consumed so the
    # row is reported at the line where it starts and a bad line inside it
    # spoils only that row.
    consumed: list[_Line] = []

    def texts() -> Iterator[str]:
        for line in lines:
            consumed.append(line)
            yield line.text

    reader = csv.reader(texts(), strict=True)
    header = _read_header(reader, consumed)
    while True:
        consumed.clear()
        try:
            values = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            start = consumed[0].number if consumed else reader.line_num
            yield start, RawRowError(f"is not valid CSV: {exc}")
            continue
        start = consumed[0].number
        problem = next((line.problem for line in consumed if line.problem), None)
        if problem is not None:
            yield start, RawRowError(problem)
        elif not values:  # a blank line
            continue
        elif len(values) != len(header):
            yield start, RawRowError(
                f"has {len(values)} values but the header has {len(header)} columns"
            )
        else:
            yield start, dict(zip(header, values, strict=True))


def _read_header(reader: Any, consumed: list[_Line]) -> list[str]:
    try:
        header = next(reader)
    except StopIteration:
        raise RegistryFileError("CSV file is empty: expected a header row") from None
    except csv.Error as exc:
        raise RegistryFileError(f"CSV header is not valid CSV: {exc}") from None
    problem = next((line.problem for line in consumed if line.problem), None)
    if problem is not None:
        raise RegistryFileError(f"CSV header {problem}")
    header = [name.strip() for name in header]
    if "" in header:
        raise RegistryFileError("CSV header has an empty column name "
                                f"(column {header.index('') + 1})")
    seen: set[str] = set()
    for name in header:
        if name in seen:
            raise RegistryFileError(f"CSV header names column {name!r} twice")
        seen.add(name)
    return header


def _jsonl_rows(lines: Iterator[_Line]) -> Iterator[tuple[int, RawRow | RawRowError]]:
    for line in lines:
        if line.problem is not None:
            yield line.number, RawRowError(line.problem)
            continue
        if not line.text.strip():
            continue
        try:
            # Decimal, never float: the score must reach the schema exactly.
            value = json.loads(line.text.rstrip("\r\n"), parse_float=Decimal)
        except json.JSONDecodeError as exc:
            yield line.number, RawRowError(f"is not valid JSON: {exc.msg} (column {exc.colno})")
            continue
        if not isinstance(value, dict):
            yield line.number, RawRowError(f"is not a JSON object (got {type(value).__name__})")
            continue
        yield line.number, value
