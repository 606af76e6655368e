"""The partner's CSV settlement statement: a good file reads back line by line,
every malformed one is refused with a message naming the line; then each
statement line meets its transfer in exactly one outcome."""
from __future__ import annotations

import io
from datetime import date

import pytest
from hypothesis import given, strategies as st

from reconciliation.matcher import EXCEPTIONS, KnownTransfer, Outcome, match_line
from reconciliation.statement_csv import HEADER, StatementError, StatementLine, Trailer, read_lines

HEADER_ROW = "reference,amount_centimes,currency,status,value_date,service_point"
ROW_1 = "D1234567890ABCX,70000,MAD,paid,2026-12-05,SP-0001"
ROW_2 = "D1234567890ABCY,35000,mad,PAID,2026-12-06,"


def statement(*rows: str, newline: str = "\n") -> io.BytesIO:
    return io.BytesIO(newline.join(rows).encode("utf-8") + newline.encode())


def read(*rows: str) -> tuple[list[StatementLine], Trailer]:
    trailer = Trailer()
    return list(read_lines(statement(*rows), trailer)), trailer


def refusal(*rows: str) -> str:
    with pytest.raises(StatementError) as caught:
        read(*rows)
    return str(caught.value)


# --- reading ------------------------------------------------------------------

def test_good_statement_reads_every_line_and_the_trailer() -> None:
    lines, trailer = read(HEADER_ROW, ROW_1, ROW_2, "TRAILER,2,105000")

    assert lines == [
        StatementLine(2, "D1234567890ABCX", 70000, "MAD", "paid", date(2026, 12, 5), "SP-0001"),
        StatementLine(3, "D1234567890ABCY", 35000, "MAD", "paid", date(2026, 12, 6), None),
    ]
    assert (trailer.count, trailer.total_centimes) == (2, 105000)


def test_statement_with_byte_order_mark_and_crlf_reads() -> None:
    body = "\r\n".join([HEADER_ROW, ROW_1, "TRAILER,1,70000"]) + "\r\n"

    lines = list(read_lines(io.BytesIO(b"\xef\xbb\xbf" + body.encode()), Trailer()))

    assert [line.reference for line in lines] == ["D1234567890ABCX"]


def test_empty_statement_with_only_a_trailer_reads() -> None:
    lines, trailer = read(HEADER_ROW, "TRAILER,0,0")

    assert lines == []
    assert (trailer.count, trailer.total_centimes) == (0, 0)


def test_header_in_the_wrong_order_is_refused() -> None:
    assert refusal("amount_centimes,reference,currency,status,value_date,service_point",
                   ROW_1, "TRAILER,1,70000") == (
        "line 1: header must be reference,amount_centimes,currency,status,value_date,service_point, "
        "got amount_centimes,reference,currency,status,value_date,service_point")


def test_empty_file_is_refused_at_the_header() -> None:
    with pytest.raises(StatementError) as caught:
        list(read_lines(io.BytesIO(b""), Trailer()))

    assert str(caught.value) == f"line 1: header must be {','.join(HEADER)}, got "


@pytest.mark.parametrize("row, fields", [
    ("D1234567890ABCX,70000,MAD,paid,2026-12-05", 5),
    ("D1234567890ABCX,70000,MAD,paid,2026-12-05,SP-0001,extra", 7),
    ("D1234567890ABCX", 1),
])
def test_line_with_the_wrong_number_of_fields_is_refused(row: str, fields: int) -> None:
    assert refusal(HEADER_ROW, ROW_1, row, "TRAILER,2,70000") == \
        f"line 3: expected 6 fields, got {fields}"


@pytest.mark.parametrize("amount", ["700.00", "-70000", "7e4", "abc", "", "70 000", "²", "٧٠٠٠٠"])
def test_amount_that_is_not_whole_centimes_is_refused(amount: str) -> None:
    assert refusal(HEADER_ROW, f"D1234567890ABCX,{amount},MAD,paid,2026-12-05,SP-0001",
                   "TRAILER,1,70000") == \
        f"line 2: amount_centimes {amount.strip()!r} is not a whole number of centimes"


@pytest.mark.parametrize("value_date", ["2026-13-05", "2026-02-30", "05/12/2026", "", "yesterday",
                                        "20261205", "2026-W49-1", "2026-12-05T10:00"])
def test_value_date_that_is_not_yyyy_mm_dd_is_refused(value_date: str) -> None:
    assert refusal(HEADER_ROW, f"D1234567890ABCX,70000,MAD,paid,{value_date},SP-0001",
                   "TRAILER,1,70000") == \
        f"line 2: value_date {value_date!r} is not YYYY-MM-DD"


def test_empty_reference_is_refused() -> None:
    assert refusal(HEADER_ROW, " ,70000,MAD,paid,2026-12-05,SP-0001", "TRAILER,1,70000") == \
        "line 2: empty reference"


@pytest.mark.parametrize("currency", ["MA", "MADX", "M4D", ""])
def test_currency_that_is_not_three_letters_is_refused(currency: str) -> None:
    assert refusal(HEADER_ROW, f"D1234567890ABCX,70000,{currency},paid,2026-12-05,SP-0001",
                   "TRAILER,1,70000") == \
        f"line 2: currency {currency!r} is not an ISO 4217 code"


def test_statement_without_trailer_is_refused_as_truncated() -> None:
    assert refusal(HEADER_ROW, ROW_1, ROW_2) == "statement has no TRAILER line (truncated file?)"


@pytest.mark.parametrize("trailer_row, count, total", [
    ("TRAILER,3,105000", 3, 105000),
    ("TRAILER,2,105001", 2, 105001),
    ("TRAILER,1,70000", 1, 70000),
])
def test_trailer_that_disagrees_with_the_lines_is_refused(trailer_row: str, count: int,
                                                         total: int) -> None:
    assert refusal(HEADER_ROW, ROW_1, ROW_2, trailer_row) == \
        f"trailer says {count} lines totalling {total}, file has 2 lines totalling 105000"


@pytest.mark.parametrize("trailer_row", ["TRAILER,2", "TRAILER,two,105000", "TRAILER,2,105000,x",
                                         "TRAILER,-2,105000", "TRAILER,2,1.5", "TRAILER,²,105000"])
def test_malformed_trailer_is_refused(trailer_row: str) -> None:
    assert refusal(HEADER_ROW, ROW_1, ROW_2, trailer_row) == \
        "line 4: TRAILER must be TRAILER,<count>,<total_centimes>"


@pytest.mark.parametrize("after", [ROW_1, "TRAILER,2,105000", ","])
def test_anything_after_the_trailer_is_refused(after: str) -> None:
    rows = [HEADER_ROW, ROW_1, ROW_2, "TRAILER,2,105000", after]
    data = io.BytesIO(("\n".join(rows) + "\n").encode())

    with pytest.raises(StatementError) as caught:
        list(read_lines(data, Trailer()))

    assert str(caught.value) == "line 5: data after the TRAILER line"


def test_lines_before_a_bad_line_are_yielded_first() -> None:
    lines = read_lines(statement(HEADER_ROW, ROW_1, "broken", "TRAILER,2,70000"), Trailer())

    assert next(lines).reference == "D1234567890ABCX"
    with pytest.raises(StatementError, match="^line 3: "):
        next(lines)


STATEMENT_LINES = st.lists(st.tuples(
    st.text(alphabet="0123456789ABCDEFGHJKMNPQRSTVWXYZ", min_size=1, max_size=16),
    st.integers(min_value=0, max_value=10**12),
    st.sampled_from(["MAD", "EUR"]),
    st.sampled_from(["paid", "available", "returned"]),
    st.dates(min_value=date(2000, 1, 1), max_value=date(2099, 12, 31)),
    st.one_of(st.none(), st.text(alphabet="SP-0123456789", min_size=1, max_size=8)),
), max_size=20)


@given(rows=STATEMENT_LINES)
def test_any_well_formed_statement_reads_back_what_was_written(rows) -> None:
    text_rows = [f"{r},{a},{c},{s},{d.isoformat()},{sp or ''}" for r, a, c, s, d, sp in rows]
    total = sum(a for _, a, *_ in rows)

    lines, trailer = read(HEADER_ROW, *text_rows, f"TRAILER,{len(rows)},{total}")

    assert [(x.reference, x.amount_centimes, x.currency, x.status, x.value_date, x.service_point)
            for x in lines] == rows
    assert [x.line_no for x in lines] == list(range(2, len(rows) + 2))
    assert (trailer.count, trailer.total_centimes) == (len(rows), total)


@given(rows=STATEMENT_LINES, count_off=st.integers(-3, 3), total_off=st.integers(-10**6, 10**6))
def test_any_trailer_off_by_anything_is_refused(rows, count_off: int, total_off: int) -> None:
    text_rows = [f"{r},{a},{c},{s},{d.isoformat()},{sp or ''}" for r, a, c, s, d, sp in rows]
    total = sum(a for _, a, *_ in rows)
    count = len(rows) + count_off
    if (count_off, total_off) == (0, 0) or count < 0:
        count, total_off = len(rows), total_off or 1

    with pytest.raises(StatementError, match="^trailer says"):
        read(HEADER_ROW, *text_rows, f"TRAILER,{count},{total + total_off}")


# --- matching -----------------------------------------------------------------------

LINE = StatementLine(2, "D1234567890ABCX", 70000, "MAD", "paid", date(2026, 12, 5), "SP-0001")
PAID = KnownTransfer(id=7, amount_centimes=70000, currency="MAD", status="paid")


def test_paid_transfer_with_same_amount_and_currency_matches() -> None:
    assert match_line(LINE, PAID, already_seen=False) == (Outcome.MATCHED, None)


def test_second_line_for_a_reference_is_a_duplicate_whatever_else() -> None:
    for transfer in (PAID, None, KnownTransfer(7, 1, "EUR", "sent")):
        assert match_line(LINE, transfer, already_seen=True) == (
            Outcome.DUPLICATE_LINE, "reference D1234567890ABCX appears earlier in the statement")


def test_line_without_a_transfer_is_an_unknown_reference() -> None:
    assert match_line(LINE, None, already_seen=False) == (
        Outcome.UNKNOWN_REFERENCE, "no transfer D1234567890ABCX for this partner")


def test_line_in_another_currency_is_a_currency_mismatch() -> None:
    transfer = KnownTransfer(7, 70000, "EUR", "paid")

    assert match_line(LINE, transfer, already_seen=False) == (
        Outcome.CURRENCY_MISMATCH, "statement MAD, transfer EUR")


@pytest.mark.parametrize("expected, difference", [(69999, 1), (70500, -500)])
def test_line_with_another_amount_is_an_amount_mismatch(expected: int, difference: int) -> None:
    transfer = KnownTransfer(7, expected, "MAD", "paid")

    assert match_line(LINE, transfer, already_seen=False) == (
        Outcome.AMOUNT_MISMATCH,
        f"statement 70000, transfer {expected} (difference {difference})")


def test_currency_is_checked_before_amount() -> None:
    transfer = KnownTransfer(7, 1, "EUR", "paid")

    assert match_line(LINE, transfer, already_seen=False)[0] == Outcome.CURRENCY_MISMATCH


@pytest.mark.parametrize("status", ["sent", "available", "unknown", "expired", "returned"])
def test_line_for_a_transfer_not_paid_in_our_records(status: str) -> None:
    transfer = KnownTransfer(7, 70000, "MAD", status)

    assert match_line(LINE, transfer, already_seen=False) == (
        Outcome.NOT_PAID_HERE, f"transfer is {status} in our records")


def test_every_outcome_but_matched_is_an_exception() -> None:
    assert EXCEPTIONS == frozenset(Outcome) - {Outcome.MATCHED}
    assert Outcome.MISSING_FROM_STATEMENT in EXCEPTIONS


@given(amount=st.integers(0, 10**9), expected=st.integers(0, 10**9),
       currency=st.sampled_from(["MAD", "EUR"]), status=st.sampled_from(["paid", "sent", "returned"]),
       known=st.booleans(), seen=st.booleans())
def test_each_line_ends_in_exactly_one_outcome_explained_unless_matched(
        amount: int, expected: int, currency: str, status: str, known: bool, seen: bool) -> None:
    line = StatementLine(2, "DREF", amount, "MAD", "paid", date(2026, 12, 5), None)
    transfer = KnownTransfer(1, expected, currency, status) if known else None

    outcome, detail = match_line(line, transfer, already_seen=seen)

    matched = not seen and known and currency == "MAD" and amount == expected and status == "paid"
    assert (outcome == Outcome.MATCHED) == matched
    assert (detail is None) == matched
