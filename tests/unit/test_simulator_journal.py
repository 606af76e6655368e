"""The partner simulator's journal as a file: what it replays to, a torn last
line (a kill in the middle of a write) dropped and cut, corruption refused."""
from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from connectors.base import PartnerStatus
from connectors.simulators.journal import Journal, JournalCorrupt, read, replay
from connectors.simulators.rest_book import Faults, PartnerBook

NOW = datetime(2026, 12, 5, 10, 0, tzinfo=UTC)


def _items(*references: str) -> list[dict]:
    return [{"reference": r, "amount_centimes": 90_000, "currency": "MAD"} for r in references]


@pytest.fixture
def open_book():
    """Factory: a book on the journal at `path`, reloaded from it; closed after the test."""
    books: list[PartnerBook] = []

    def make(path, **faults) -> PartnerBook:
        journal, state = Journal.open(path)
        book = PartnerBook("BARID", 3, Faults(**faults), journal=journal)
        book.restore(state)
        books.append(book)
        return book

    yield make
    for book in books:
        book.close()


def test_a_book_reloaded_from_its_journal_is_the_same_book(tmp_path, open_book):
    path = tmp_path / "barid.jsonl"
    book = open_book(path, reject_rate=0.3, uncollected_rate=0.3)
    book.receive(_items(*(f"REF{i:04d}" for i in range(40))))
    book.advance(NOW)
    book.receive(_items("REF0001", "LATE1"))          # a resend and a new one
    book.cancel("LATE1")
    first = book.pending_batch(10)
    book.record_delivery(len(first), 1, None)         # our service took ten

    again = open_book(path)
    references = [f"REF{i:04d}" for i in range(40)] + ["LATE1"]
    assert all(again.transfer(r) == book.transfer(r) for r in references)
    snapshot, restored = book.snapshot(), again.snapshot()
    for key in ("transfers", "by_status", "duplicate_sends", "callbacks_pending"):
        assert restored[key] == snapshot[key], key
    assert again.pending_batch(1000) == book.pending_batch(1000)
    assert {e["event_id"] for e in first}.isdisjoint(e["event_id"]
                                                     for e in again.pending_batch(1000))
    # The open ones go on: every available transfer moves at the next advance.
    available = snapshot["by_status"].get("available", 0)
    assert available and sum(again.advance(NOW).values()) == available


def test_a_torn_last_line_is_dropped_and_cut(tmp_path, open_book):
    path = tmp_path / "barid.jsonl"
    book = open_book(path)
    book.receive(_items("REF1", "REF2"))
    whole = path.read_bytes()
    path.write_bytes(whole + b'{"t":"transfer","reference":"REF3","sta')   # killed mid-write

    again = open_book(path)
    assert again.snapshot()["transfers"] == 2 and not again.holds("REF3")
    again.receive(_items("REF4"))
    records = list(read(path))
    assert [r["reference"] for r in records if r["t"] == "transfer"] == ["REF1", "REF2", "REF4"]
    assert path.read_bytes().startswith(whole) and path.read_bytes().endswith(b"\n")


def test_a_line_that_is_not_json_before_the_end_is_corruption(tmp_path):
    path = tmp_path / "barid.jsonl"
    path.write_bytes(b'{"t":"start"}\nnot json\n{"t":"start"}\n')
    with pytest.raises(JournalCorrupt, match="line 2"):
        Journal.open(path)


def test_replay_counts_each_arrival_at_paid_once():
    records = [{"t": "transfer", "reference": "R1", "status": s, "amount_centimes": 1,
                "currency": "MAD"} for s in ("received", "available", "paid", "paid")]
    records += [{"t": "transfer", "reference": "R2", "status": s, "amount_centimes": 1,
                 "currency": "MAD"} for s in ("paid", "received", "paid")]
    state = replay(records)
    assert state.paid_count == {"R1": 1, "R2": 2}
    assert state.transfers["R1"]["status"] == PartnerStatus.PAID


def test_without_a_journal_nothing_is_written(tmp_path):
    book = PartnerBook("BARID", 3, Faults())
    book.receive(_items("REF1"))
    book.advance(NOW)
    assert list(tmp_path.iterdir()) == []
    assert json.loads(json.dumps(book.snapshot()))["transfers"] == 1
