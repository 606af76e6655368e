"""The CSV files of the file-exchange protocol: writing them and verifying them.

Every file is UTF-8 CSV: one header line naming the columns, one line per
record, then a trailer `TRAILER,<count>,<total_centimes>` (the total sums the
`amount_centimes` column; 0 for files without one). Next to each file
`<name>.sha256` holds `<hex digest>  <name>` (sha256sum's format). A reader
verifies the checksum, then the header, every line, and the trailer, and says
which line is wrong. Shared by our connector and the partner simulator, so both
sides read the same rules.
"""
from __future__ import annotations

import csv
import hashlib
import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

TRAILER = "TRAILER"
CHECKSUM_SUFFIX = ".sha256"

INSTRUCTION_COLUMNS = ("reference", "amount_centimes", "currency", "channel", "beneficiary_name",
                       "national_id", "phone", "account", "region_code", "service_point",
                       "withdrawal_code")
STATUS_COLUMNS = ("reference", "status", "amount_centimes", "currency", "reason",
                  "service_point", "occurred_at")
# The same columns as the REST partners' settlement statement, so reconciliation
# reads a collected settlement file as it reads theirs.
SETTLEMENT_COLUMNS = ("reference", "amount_centimes", "currency", "status", "value_date",
                      "service_point")
REQUEST_COLUMNS = ("reference",)
FILE_REJECTION_COLUMNS = ("file", "problem")

# What a file's name says it is: the prefix before the first '-'.
KIND_BY_PREFIX = {"INS": "instruction", "STATUS": "status", "SETTLE": "settlement",
                  "STATUSREQ": "status_request", "CANCELREQ": "cancel_request",
                  "ANSWER": "answer", "FILEREJ": "file_rejection"}
COLUMNS_BY_KIND = {"instruction": INSTRUCTION_COLUMNS, "status": STATUS_COLUMNS,
                   "answer": STATUS_COLUMNS, "settlement": SETTLEMENT_COLUMNS,
                   "status_request": REQUEST_COLUMNS, "cancel_request": REQUEST_COLUMNS,
                   "file_rejection": FILE_REJECTION_COLUMNS}


class FileProblem(ValueError):
    """Raised when a file fails verification (checksum, encoding, header, a
    line, the trailer); the message names the file and the line."""

    def __init__(self, name: str, problem: str, line: int | None = None) -> None:
        where = f"{name} line {line}" if line is not None else name
        super().__init__(f"{where}: {problem}")
        self.name = name
        self.problem = problem
        self.line = line


@dataclass(frozen=True)
class VerifiedFile:
    name: str
    kind: str
    sha256: str
    rows: list[dict[str, str]]     # each with "_line": its line number in the file
    total_centimes: int


def kind_of(name: str) -> str | None:
    """The kind a data file's name announces, or None for names outside the protocol."""
    if not name.endswith(".csv"):
        return None
    return KIND_BY_PREFIX.get(name.split("-", 1)[0])


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def checksum_file(name: str, data: bytes) -> bytes:
    return f"{sha256_hex(data)}  {name}\n".encode()


def render(columns: tuple[str, ...], rows: Sequence[Mapping[str, object]]) -> bytes:
    """A whole file: header, one line per row (missing values empty), trailer."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    total = 0
    for row in rows:
        writer.writerow(["" if row.get(c) is None else row[c] for c in columns])
        total += int(str(row.get("amount_centimes") or 0))
    writer.writerow([TRAILER, len(rows), total])
    return out.getvalue().encode("utf-8")


def verify(name: str, data: bytes, checksum: bytes | None) -> VerifiedFile:
    """Checks the file against its checksum file and its own trailer.

    Raises FileProblem naming the first problem found; a file that passes is
    whole and agrees with itself."""
    kind = kind_of(name)
    if kind is None:
        raise FileProblem(name, "not a file of the exchange protocol (unknown name prefix)")
    digest = sha256_hex(data)
    if checksum is None:
        raise FileProblem(name, f"checksum file {name}{CHECKSUM_SUFFIX} is missing")
    claimed = checksum.decode("ascii", "replace").split()
    if not claimed or claimed[0].lower() != digest:
        said = claimed[0] if claimed else "(empty)"
        raise FileProblem(name, f"checksum mismatch: {name}{CHECKSUM_SUFFIX} says "
                                f"{said}, the file hashes to {digest}")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        raise FileProblem(name, "not UTF-8", line) from None
    lines = list(csv.reader(io.StringIO(text)))
    columns = COLUMNS_BY_KIND[kind]
    if not lines or tuple(lines[0]) != columns:
        raise FileProblem(name, f"header must be {','.join(columns)}", 1)
    if len(lines) < 2 or not lines[-1] or lines[-1][0] != TRAILER:
        raise FileProblem(name, f"truncated: no {TRAILER} line (file ends at line {len(lines)})",
                          len(lines))
    rows, total = _rows(name, columns, lines[1:-1], amount_optional=kind == "answer")
    _check_trailer(name, lines[-1], len(lines), len(rows), total)
    return VerifiedFile(name, kind, digest, rows, total)


def _rows(name: str, columns: tuple[str, ...], lines: list[list[str]], *,
          amount_optional: bool) -> tuple[list[dict], int]:
    rows: list[dict[str, str]] = []
    total = 0
    for number, fields in enumerate(lines, start=2):
        if fields and fields[0] == TRAILER:
            raise FileProblem(name, f"{TRAILER} line before the end of the file", number)
        if len(fields) != len(columns):
            raise FileProblem(name, f"{len(fields)} fields, expected {len(columns)}", number)
        row = dict(zip(columns, fields, strict=True))
        if not row[columns[0]]:
            raise FileProblem(name, f"{columns[0]} is empty", number)
        if "amount_centimes" in row and not (amount_optional and row["amount_centimes"] == ""):
            # An answer about a reference the partner never received has no amount.
            amount = row["amount_centimes"]
            if not amount.isdigit() or int(amount) <= 0:
                raise FileProblem(name, f"amount_centimes {amount!r} is not a positive "
                                        "whole number of centimes", number)
            total += int(amount)
        row["_line"] = str(number)
        rows.append(row)
    return rows, total


def _check_trailer(name: str, trailer: list[str], line: int, count: int, total: int) -> None:
    if len(trailer) != 3 or not trailer[1].isdigit() or not trailer[2].isdigit():
        raise FileProblem(name, f"trailer must be {TRAILER},<count>,<total_centimes>", line)
    if int(trailer[1]) != count:
        raise FileProblem(name, f"trailer says {trailer[1]} lines, the file has {count}", line)
    if int(trailer[2]) != total:
        raise FileProblem(name, f"trailer says a total of {trailer[2]} centimes, "
                                f"the lines add up to {total}", line)
