"""The partner's CSV settlement statement: a good file reads back line by line,
every malformed one is refused with a message naming the line; then each
statement line meets its transfer in exactly one outcome."""
from __future__ import annotations

import io
from datetime import date, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from disbursement.domain.statements import EntryKind
from reconciliation.matcher import (
    EXCEPTIONS,
    Action,
    Decision,
    KnownTransfer,
    Outcome,
    ageing_bucket,
    match_entry,
)
from reconciliation.readers.csv_statement import (
    HEADER,
    StatementError,
    StatementLine,
    Trailer,
    read_lines,
)

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
        "line 1: header must be "
        "reference,amount_centimes,currency,status,value_date,service_point, "
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
    with pytest.raises(StatementError, match=r"^line 3: "):
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

    with pytest.raises(StatementError, match=r"^trailer says"):
        read(HEADER_ROW, *text_rows, f"TRAILER,{count},{total + total_off}")


# --- matching -----------------------------------------------------------------------

REF = "D1234567890ABCX"
PAID = KnownTransfer(id=7, amount_centimes=70000, currency="MAD", status="paid")


def decide(transfer, *, amount=70000, currency="MAD", kind=EntryKind.PAYMENT, seen=False):
    return match_entry(REF, amount, currency, kind, transfer, seen)


def test_paid_transfer_with_same_amount_and_currency_matches() -> None:
    assert decide(PAID) == Decision(Outcome.MATCHED)


def test_second_line_for_a_reference_is_a_duplicate_whatever_else() -> None:
    for transfer in (PAID, None, KnownTransfer(7, 1, "EUR", "sent")):
        assert decide(transfer, seen=True) == Decision(
            Outcome.DUPLICATE_LINE, f"reference {REF} appears earlier in the statement")


def test_line_for_a_transfer_reconciled_on_an_earlier_statement_is_a_duplicate() -> None:
    earlier = KnownTransfer(7, 70000, "MAD", "paid", recon_outcome="matched")

    assert decide(earlier).outcome == Outcome.DUPLICATE_LINE


def test_line_for_a_transfer_missing_from_an_earlier_statement_matches_now() -> None:
    missing = KnownTransfer(7, 70000, "MAD", "paid",
                            recon_outcome=Outcome.MISSING_FROM_STATEMENT.value)

    assert decide(missing) == Decision(Outcome.MATCHED)


def test_line_without_a_transfer_is_an_unknown_reference() -> None:
    assert decide(None) == Decision(Outcome.UNKNOWN_REFERENCE,
                                    f"no transfer {REF} for this partner")


def test_line_in_another_currency_is_a_currency_mismatch() -> None:
    assert decide(KnownTransfer(7, 70000, "EUR", "paid")) == Decision(
        Outcome.CURRENCY_MISMATCH, "statement MAD, transfer EUR")


@pytest.mark.parametrize("expected, outcome, difference", [
    (69999, Outcome.AMOUNT_OVER, 1), (70500, Outcome.AMOUNT_UNDER, -500)])
def test_line_with_another_amount_is_over_or_under(expected: int, outcome: Outcome,
                                                   difference: int) -> None:
    transfer = KnownTransfer(7, expected, "MAD", "paid")

    decision = decide(transfer)

    assert decision == Decision(outcome,
                                f"statement 70000, transfer {expected} (difference {difference})")
    assert decision.exposure(70000, transfer) == difference


def test_currency_is_checked_before_amount() -> None:
    assert decide(KnownTransfer(7, 1, "EUR", "paid")).outcome == Outcome.CURRENCY_MISMATCH


@pytest.mark.parametrize("status, outcome", [
    ("cancelled", Outcome.PAID_BUT_CANCELLED), ("expired", Outcome.PAID_BUT_EXPIRED),
    ("returned", Outcome.PAID_BUT_RETURNED), ("rejected", Outcome.NOT_PAID_HERE),
    ("failed", Outcome.NOT_PAID_HERE), ("approved", Outcome.NOT_PAID_HERE)])
def test_line_paid_for_a_transfer_closed_or_never_sent_here(status: str, outcome: Outcome) -> None:
    assert decide(KnownTransfer(7, 70000, "MAD", status)) == Decision(
        outcome, f"transfer is {status} in our records")


# The partner's word ahead of ours (a crash left it queued or sending) confirms too.
@pytest.mark.parametrize("status", ["queued", "sending", "sent", "available", "unknown"])
def test_line_paid_for_a_transfer_still_out_confirms_the_payment(status: str) -> None:
    decision = decide(KnownTransfer(7, 70000, "MAD", status))

    assert (decision.outcome, decision.action) == (Outcome.MATCHED, Action.CONFIRM_PAID)


@pytest.mark.parametrize("status, outcome, action", [
    ("expired", Outcome.RETURNED, Action.BOOK_RETURN),
    ("rejected", Outcome.RETURNED, Action.BOOK_RETURN),
    ("failed", Outcome.RETURNED, Action.BOOK_RETURN),
    ("returned", Outcome.DUPLICATE_LINE, None),
    ("paid", Outcome.RETURN_OF_PAID, None),
    ("available", Outcome.RETURN_NOT_ALLOWED, None)])
def test_return_entry(status: str, outcome: Outcome, action) -> None:
    decision = decide(KnownTransfer(7, 70000, "MAD", status), kind=EntryKind.RETURN)

    assert (decision.outcome, decision.action) == (outcome, action)


def test_return_of_funds_already_returned_is_a_duplicate() -> None:
    transfer = KnownTransfer(7, 70000, "MAD", "rejected", funds_returned=True)

    assert decide(transfer, kind=EntryKind.RETURN).outcome == Outcome.DUPLICATE_LINE


def test_every_outcome_but_matched_and_returned_is_an_exception() -> None:
    assert frozenset(Outcome) - {Outcome.MATCHED, Outcome.RETURNED} == EXCEPTIONS
    assert Outcome.MISSING_FROM_STATEMENT in EXCEPTIONS


@pytest.mark.parametrize("days, bucket", [(0, "0-7"), (7, "0-7"), (8, "8-30"), (30, "8-30"),
                                          (31, "31-60"), (60, "31-60"), (61, ">60"), (400, ">60")])
def test_ageing_buckets(days: int, bucket: str) -> None:
    assert ageing_bucket(date(2026, 12, 31) - timedelta(days=days), date(2026, 12, 31)) == bucket


@given(amount=st.integers(1, 10**9), expected=st.integers(1, 10**9),
       currency=st.sampled_from(["MAD", "EUR"]),
       status=st.sampled_from(["paid", "sent", "returned", "expired", "rejected"]),
       kind=st.sampled_from(list(EntryKind)), known=st.booleans(), seen=st.booleans())
def test_each_line_ends_in_exactly_one_outcome_explained_unless_matched(
        amount: int, expected: int, currency: str, status: str, kind: EntryKind, known: bool,
        seen: bool) -> None:
    transfer = KnownTransfer(1, expected, currency, status) if known else None

    decision = decide(transfer, amount=amount, kind=kind, seen=seen)

    agrees = not seen and known and currency == "MAD" and amount == expected and (
        status in ("paid", "sent")
        if kind == EntryKind.PAYMENT else status in ("expired", "rejected"))
    assert (decision.outcome in (Outcome.MATCHED, Outcome.RETURNED)) == agrees
    assert (decision.outcome in EXCEPTIONS) == (not agrees)
    assert decision.detail is not None or decision.outcome == Outcome.MATCHED
