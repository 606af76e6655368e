"""camt.053 statements and camt.054 notifications: our writers validate
against the XSDs and round-trip to the centime; the readers read files written
by other software; every malformed file is refused naming the element."""
from __future__ import annotations

import io
import re
import tracemalloc
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connectors.iso20022.camt_writer import (
    AccountReport,
    BookedEntry,
    BookedTransaction,
    CamtWriteError,
    write_camt053,
    write_camt054,
)
from disbursement.domain.statements import EntryKind, StatementError, StatementSummary
from disbursement.iso20022 import schemas
from disbursement.iso20022.xml import CAMT_053, CAMT_054
from reconciliation.readers import reader
from reconciliation.readers.camt import read_camt053, read_camt054
from tests.support.iso20022 import amounts, references, rib

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "statements"
DAY = date(2024, 5, 3)
CREATED = datetime(2024, 5, 3, 23, 0, tzinfo=UTC)
ACCOUNT = rib("011", "780", "0000012345678901")


def _read(reader_fn, data: bytes) -> tuple[list, StatementSummary]:
    summary = StatementSummary()
    return list(reader_fn(io.BytesIO(data), summary)), summary


def _statement(entries, opening=1_000_000, **kwargs) -> bytes:
    out = io.BytesIO()
    report = AccountReport("STMT-1", ACCOUNT, "MAD", entries, DAY, DAY,
                           opening_balance_centimes=opening, **kwargs)
    write_camt053(out, "MSG-1", CREATED, [report])
    return out.getvalue()


_transactions = st.builds(BookedTransaction, references, amounts, st.just("MAD"),
                          st.sampled_from(EntryKind),
                          st.none() | st.sampled_from(["AC04", "MD07", "AC01"]))


@st.composite
def _entries(draw) -> list[BookedEntry]:
    entries = []
    for _ in range(draw(st.integers(0, 12))):
        kind = draw(st.sampled_from(EntryKind))
        txs = draw(st.lists(_transactions, min_size=1, max_size=4))
        entries.append(BookedEntry([BookedTransaction(t.reference, t.amount_centimes, kind=kind,
                                                      reason_code=t.reason_code
                                                      if kind == EntryKind.RETURN
                                                      else None) for t in txs], DAY, DAY,
                                   reversal=kind == EntryKind.RETURN and draw(st.booleans())))
    return entries


@settings(max_examples=40, deadline=None)
@given(_entries(), st.integers(-10**12, 10**12))
def test_a_generated_camt053_validates_and_round_trips_to_the_centime(entries, opening) -> None:
    data = _statement(entries, opening)
    assert schemas.validate(io.BytesIO(data)) == CAMT_053
    read, summary = _read(read_camt053, data)
    expected = [(t.reference, t.amount_centimes, t.kind, t.reason_code) for e in entries
                for t in e.transactions]
    assert [(e.reference, e.amount_centimes, e.kind, e.reason_code) for e in read] == expected
    assert summary.opening_balance_centimes == opening
    assert summary.balance_difference() == 0
    assert summary.payments_centimes == sum(a for _, a, k, _ in expected if k == EntryKind.PAYMENT)


@settings(max_examples=25, deadline=None)
@given(_entries())
def test_a_generated_camt054_validates_and_round_trips(entries) -> None:
    out = io.BytesIO()
    write_camt054(out, "MSG-2", CREATED, [AccountReport("NTF-1", ACCOUNT, "MAD", entries)])
    assert schemas.validate(io.BytesIO(out.getvalue())) == CAMT_054
    read, summary = _read(read_camt054, out.getvalue())
    assert [(e.reference, e.amount_centimes, e.kind) for e in read] == \
        [(t.reference, t.amount_centimes, t.kind) for e in entries for t in e.transactions]
    assert summary.opening_balance_centimes is None and summary.balance_difference() is None


def test_the_bank_camt053_sample_reads_with_returns_batches_and_balances() -> None:
    data = (FIXTURES / "camt053_bank_sample.xml").read_bytes()
    schemas.validate(io.BytesIO(data))
    entries, summary = _read(reader("camt053"), data)
    assert [(e.reference, e.amount_centimes, e.kind, e.reason_code) for e in entries] == [
        ("DK7QYZ5TX8T5PVY", 75425, EntryKind.PAYMENT, None),
        ("DXZ48Q3N2Z3FX1B", 56405, EntryKind.RETURN, "AC04"),
        ("D9DDE2T7VFD8TVY", 100000, EntryKind.PAYMENT, None),
        ("D95PFXXK4QKFTHZ", 140531, EntryKind.PAYMENT, None),
        ("DCNY57BXPRM17WD", 50000, EntryKind.PAYMENT, None)]
    assert entries[3].locator == "Stmt[1]/Ntry[3]/NtryDtls/TxDtls[2]"
    assert (summary.statement_id, summary.account, summary.currency) == \
        ("1234Test/1", "011780000001234567890187", "MAD")
    assert (summary.opening_balance_centimes,
            summary.closing_balance_centimes) == (1556827, 1245776)
    assert summary.other_movements_centimes == -1500 and summary.balance_difference() == 0
    assert any("Ntry[4]" in note for note in summary.notes)


def test_the_bank_camt054_sample_reads() -> None:
    data = (FIXTURES / "camt054_bank_sample.xml").read_bytes()
    schemas.validate(io.BytesIO(data))
    entries, summary = _read(reader("camt054"), data)
    assert [(e.reference, e.amount_centimes, e.kind, e.reason_code,
             e.value_date) for e in entries] == [
        ("DKMGPAN70A5XC4T", 85000, EntryKind.PAYMENT, None, DAY),
        ("DTRGQFBJBT1QP04", 120000, EntryKind.PAYMENT, None, DAY),
        ("D1BKJ72YGKXBVKW", 30000, EntryKind.RETURN, "MD07", date(2024, 5, 4))]
    assert (summary.account, summary.currency, summary.payments_centimes,
            summary.returns_centimes) == \
        ("190810000998877665544361", "MAD", 205000, 30000)


def _sample(old: str = "", new: str = "", count: int = 1) -> bytes:
    """The bank sample with its first `count` `old` replaced by `new`."""
    text = (FIXTURES / "camt053_bank_sample.xml").read_text()
    assert old in text
    return (text.replace(old, new, count) if old else text).encode()


@pytest.mark.parametrize(("data", "message"), [
    (lambda: _sample('<Amt Ccy="MAD">754.25</Amt>', '<Amt Ccy="MAD">754.255</Amt>'),
     r'Stmt\[1\]/Ntry\[1\]/Amt: "754.255" has more than 2 decimals'),
    (lambda: _sample('<Amt Ccy="MAD">1405.31</Amt>', '<Amt Ccy="MAD">1405,31</Amt>'),
     r'Stmt\[1\]/Ntry\[3\]/NtryDtls/TxDtls\[2\]/Amt: "1405,31" is not an amount'),
    (lambda: _sample('<Amt Ccy="MAD">754.25</Amt>', '<Amt Ccy="dirham">754.25</Amt>'),
     r'Stmt\[1\]/Ntry\[1\]/Amt/@Ccy: "dirham" is not an ISO 4217 currency code'),
    (lambda: _sample('<Amt Ccy="MAD">754.25</Amt>', '<Amt>754.25</Amt>'),
     r"Stmt\[1\]/Ntry\[1\]/Amt/@Ccy: missing"),
    (lambda: _sample("<CdtDbtInd>DBIT</CdtDbtInd>", ""), r"Stmt\[1\]/Ntry\[1\]/CdtDbtInd: missing"),
    (lambda: _sample("<CdtDbtInd>CRDT</CdtDbtInd>", "<CdtDbtInd>PLUS</CdtDbtInd>"),
     r"Stmt\[1\]/Bal\[1\]/CdtDbtInd: 'PLUS' is neither CRDT nor DBIT"),
    (lambda: _sample("<Amt Ccy=\"MAD\">2905.31</Amt>", "<Amt Ccy=\"MAD\">2905.30</Amt>"),
     r"Stmt\[1\]/Ntry\[3\]/Amt: the entry says 2905.30, its TxDtls add up to 2905.31"),
    (lambda: _sample("<NbOfNtries>4</NbOfNtries>", "<NbOfNtries>5</NbOfNtries>"),
     r"Stmt\[1\]/TxsSummry/TtlNtries/NbOfNtries: declares 5 entries, the report holds 4"),
    (lambda: re.sub(rb"<ValDt>\s*<Dt>2024-05-03</Dt>\s*</ValDt>\s*<BkTxCd>", b"<BkTxCd>",
                    re.sub(rb"<BookgDt>\s*<Dt>2024-05-03</Dt>\s*</BookgDt>", b"",
                           _sample(), count=1), count=1),
     r"Stmt\[1\]/Ntry\[1\]/ValDt: missing, and no BookgDt either"),
    (lambda: _sample("<Dt>2024-05-03</Dt>", "<Dt>2024-02-30</Dt>"),
     r'Stmt\[1\]/Bal\[1\]/Dt/Dt: "2024-02-30" is not a date'),
    (lambda: _sample("xsd:camt.053.001.08\"", "xsd:camt.053.001.02\""),
     "message camt.053.001.02, expected camt.053.001.08"),
    (lambda: _sample()[:3000], "not well-formed or truncated"),
])
def test_a_malformed_camt053_is_refused_naming_where(data, message) -> None:
    with pytest.raises(StatementError, match=message):
        _read(read_camt053, data())


def test_an_entity_attack_in_a_statement_is_a_statement_error() -> None:
    attack = (b'<?xml version="1.0"?><!DOCTYPE d [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
              b'<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.08"><BkToCstmrStmt>'
              b"<Stmt><Id>&x;</Id></Stmt></BkToCstmrStmt></Document>")
    with pytest.raises(StatementError, match="DOCTYPE"):
        _read(read_camt053, attack)


def test_a_camt054_given_as_a_statement_names_the_message() -> None:
    data = (FIXTURES / "camt054_bank_sample.xml").read_bytes()
    with pytest.raises(StatementError,
                       match=re.escape("message camt.054.001.08, expected camt.053.001.08")):
        _read(read_camt053, data)


def test_a_notification_cannot_carry_balances() -> None:
    with pytest.raises(CamtWriteError, match="carries no balances"):
        write_camt054(io.BytesIO(), "M", CREATED,
                      [AccountReport("N", ACCOUNT, "MAD", [], opening_balance_centimes=1)])


def test_a_200000_entry_statement_is_read_in_bounded_memory(tmp_path: Path) -> None:
    count = 200_000
    # Format only: the reader does not check the check character.
    refs = [f"D{n:014d}" for n in range(count)]
    entries = _LazyEntries(refs)
    path = tmp_path / "big.camt053.xml"
    write_camt053(path, "BIG", CREATED, [AccountReport("BIG-1", ACCOUNT, "MAD", entries, DAY, DAY,
                                                       opening_balance_centimes=10**12)])
    size = path.stat().st_size
    summary = StatementSummary()
    tracemalloc.start()
    try:
        with open(path, "rb") as stream:
            read = sum(1 for _ in read_camt053(stream, summary))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert read == count and summary.balance_difference() == 0
    # The whole file would be hundreds of megabytes as a tree; streaming holds one entry.
    assert peak < size / 50, f"peak {peak} bytes for a {size}-byte file"


class _LazyEntries:
    """A sequence of entries made on demand, so writing the big file holds none."""

    def __init__(self, refs: list[str]) -> None:
        self.refs = refs

    def __len__(self) -> int:
        return len(self.refs)

    def __getitem__(self, index: int) -> BookedEntry:
        return BookedEntry([BookedTransaction(self.refs[index], 10_000 + index % 997)], DAY, DAY)

    def __iter__(self):
        return (self[i] for i in range(len(self)))
