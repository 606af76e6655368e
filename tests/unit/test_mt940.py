"""SWIFT MT940 statements through the mt-940 library: bank samples with
multi-line `:86:` fields, references from `:61:` or `:86:`, returns, balances
across continuation pages, errors naming the line, bounded chunks."""
from __future__ import annotations

import io
from datetime import date
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from disbursement.domain.references import new_reference
from disbursement.domain.statements import EntryKind, StatementError, StatementSummary
from reconciliation.readers import mt940, reader
from reconciliation.readers.references import find_reference

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "statements"


def _read(data: bytes) -> tuple[list, StatementSummary]:
    summary = StatementSummary()
    return list(reader("mt940")(io.BytesIO(data), summary)), summary


def test_the_structured_sepa_sample_reads_references_from_61_and_86() -> None:
    entries, summary = _read((FIXTURES / "mt940_sepa_structured.sta").read_bytes())
    assert [(e.locator, e.reference, e.amount_centimes, e.kind,
             e.reason_code) for e in entries] == [
        # :86: ?20EREF+ over two lines
        ("line 5", "DK7QYZ5TX8T5PVY", 85000, EntryKind.PAYMENT, None),
        ("line 9", "DXZ48Q3N2Z3FX1B", 120000, EntryKind.PAYMENT, None),   # :61: customer reference
        ("line 11", "D9DDE2T7VFD8TVY", 50000, EntryKind.PAYMENT, None),   # split across ?20 / ?21
        ("line 14", "D95PFXXK4QKFTHZ", 30000, EntryKind.RETURN, "AC04"),  # C credit with funds code
        ("line 17", "DCNY57BXPRM17WD", 25050, EntryKind.RETURN, None),    # RD reversal
        ("line 27", "D9AA7ANVG3DDSJJ", 200000, EntryKind.PAYMENT, None)]  # second page
    assert entries[0].line_no == 5 and entries[0].value_date == date(2024, 5, 3)
    assert (summary.statement_id, summary.account, summary.currency) == \
        ("T089413946000001", "011780000001234567890187", "MAD")
    assert (summary.opening_balance_centimes,
            summary.closing_balance_centimes) == (12000000, 11598550)
    assert summary.other_movements_centimes == -1500 and summary.balance_difference() == 0


def test_the_free_text_sample_with_routing_lines_and_wrapped_reference_reads() -> None:
    entries, summary = _read((FIXTURES / "mt940_abnamro_freetext.sta").read_bytes())
    assert [(e.reference, e.amount_centimes, e.kind, e.reason_code) for e in entries] == [
        ("DB3GBZ61963N16S", 900, EntryKind.PAYMENT, None),
        ("DJ98DAKWNC549GL", 1159, EntryKind.PAYMENT, None),    # wrapped over two :86: lines
        ("DX2PDY8V89Z2ZHK", 949, EntryKind.PAYMENT, None),
        ("DTRGQFBJBT1QP04", 1500, EntryKind.RETURN, "AC01")]
    assert (summary.opening_balance_centimes, summary.closing_balance_centimes) == (323628, 311420)
    assert summary.to_date == date(2024, 5, 4) and summary.balance_difference() == 0
    assert summary.notes == [
        "line 15: D 10700 centimes names no transfer reference; not a transfer of ours"]


STATEMENT = """:20:STMT1
:25:011780000001234567890187
:28C:1/1
:60F:C240502MAD1000,00
:61:2405030503D100,00NTRF{ref}//BANK1
:86:ASD
:62F:C240503MAD900,00
-
"""


@pytest.mark.parametrize(("change", "message"), [
    (("D100,00", "X100,00"), "line 5: malformed field"),
    (("D100,00", "D100,005"), "line 5: amount 100.005 has more than 2 decimals"),
    ((":62F:C240503MAD900,00\n", ""), "line 1: statement has no closing balance"),
    ((":60F:C240502MAD1000,00\n", ""), "line 1: statement has no opening balance"),
    ((":25:011780000001234567890187\n", ""), "line 1: statement has no account"),
    ((":61:2405030503D100,00", ":61:2413030503D100,00"), "line 5: statement not readable"),
    ((":62F:C240503", ":62F:C240532"), "line 7: statement not readable"),
])
def test_a_malformed_statement_names_the_line(change, message) -> None:
    text = STATEMENT.format(ref=new_reference()).replace(*change)
    with pytest.raises(StatementError, match=message):
        _read(text.encode())


def test_a_page_that_does_not_continue_the_previous_balance_is_refused() -> None:
    first = STATEMENT.format(ref=new_reference())
    second = first.replace(":60F:C240502MAD1000,00", ":60M:C240503MAD901,00")
    with pytest.raises(StatementError,
                       match="line 9: opening balance 90100 centimes does not continue"):
        _read((first + second).encode())


def test_a_file_without_a_statement_is_refused() -> None:
    with pytest.raises(StatementError, match="no MT940 statement"):
        _read(b"hello\nworld\n")


def test_binary_garbage_names_its_line() -> None:
    with pytest.raises(StatementError, match="line 2: not UTF-8"):
        _read(b":20:X\n\xff\xfe\n")


@settings(max_examples=30, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 10**9), st.sampled_from(["D", "C", "RD"])),
                min_size=1, max_size=30),
       st.integers(0, 10**10))
def test_amounts_and_balances_round_trip_through_a_generated_statement(lines, opening) -> None:
    refs = [new_reference() for _ in lines]
    closing = opening + sum(-amount if mark == "D" else amount for amount, mark in lines)
    body = "".join(f":61:2405030503{mark}{_amount(amount)}NTRFNONREF//B{i}\n"
                   f":86:ASD PAIEMENT\n REF {ref}\n"
                   for i, ((amount, mark), ref) in enumerate(zip(lines, refs, strict=True)))
    text = (f":20:S\n:25:011780000001234567890187\n:28C:1/1\n:60F:{_balance(opening, '240502')}\n"
            f"{body}:62F:{_balance(closing, '240503')}\n-\n")
    entries, summary = _read(text.encode())
    assert [(e.reference, e.amount_centimes)
            for e in entries] == [(r, a) for r, (a, _) in zip(refs, lines, strict=True)]
    assert summary.balance_difference() == 0


def test_a_long_statement_is_fed_to_the_library_in_chunks(monkeypatch) -> None:
    monkeypatch.setattr(mt940, "CHUNK_TRANSACTIONS", 7)
    count = 50
    refs = [new_reference() for _ in range(count)]
    body = "".join(f":61:2405030503D1,00NTRF{ref}//B\n:86:ASD\n" for ref in refs)
    text = f":20:S\n:25:A\n:28C:1/1\n:60F:C240502MAD100,00\n{body}:62F:C240503MAD50,00\n-\n"
    entries, summary = _read(text.encode())
    assert [e.reference for e in entries] == refs
    assert [e.line_no for e in entries[:2]] == [5, 7]
    assert (summary.opening_balance_centimes, summary.closing_balance_centimes) == (10000, 5000)


def test_find_reference_rejects_look_alikes_and_finds_wrapped_ones() -> None:
    ref = new_reference()
    wrong_check = ref[:-1] + ("0" if ref[-1] != "0" else "1")
    assert find_reference(f"?20EREF+{ref[:6]}?21{ref[6:]}") == ref
    assert find_reference(f"PAIEMENT {wrong_check} MERCI") is None
    assert find_reference(f"X{ref}") is None


def _amount(centimes: int) -> str:
    return f"{centimes // 100},{centimes % 100:02d}"


def _balance(centimes: int, day: str) -> str:
    return f"{'C' if centimes >= 0 else 'D'}{day}MAD{_amount(abs(centimes))}"
