"""A simulated partner's durable journal: append-only JSON lines, written and
fsynced before the partner answers, so a partner killed with SIGKILL still
knows, when it starts again, every transfer it took, what became of each one,
and which confirmations our service has not acknowledged yet.

Records (one JSON object a line, key `t` says which):

    {"t": "start", "partner": ..., "at": ...}         the simulator started
    {"t": "transfer", "reference": ..., "status": ..., ...}
                                                       a transfer as it stands after
                                                       receipt or a status change
    {"t": "duplicate", "reference": ..., "conflicting": bool}
                                                       a resend of a held reference
    {"t": "callback", "event": {...}}                  a confirmation queued for us
    {"t": "acknowledged", "event_ids": [...]}          confirmations our service took

A kill can leave half a line at the end: it was never fsynced as a whole, so
no answer depended on it; it is dropped (and cut from the file) on opening.
Anything unreadable before the last line is corruption and raises.

Standard library only: the chaos runner reads the same journals to compare
our database with what each partner knows (`replay`).
"""
from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

# Statuses at which a partner has paid the beneficiary: a reference reaching
# one of them twice would be a double payment.
PAID = "paid"


class JournalCorrupt(ValueError):
    """Raised when a line other than the last cannot be read: the journal was
    changed by something other than a simulator appending to it."""


@dataclass
class JournalState:
    """What a journal says, replayed: the book a restarted simulator reloads
    and the partner's truth the chaos runner compares with."""

    transfers: dict[str, dict[str, Any]] = field(default_factory=dict)
    # confirmations queued and not acknowledged, in the order they were queued
    pending: list[dict[str, Any]] = field(default_factory=list)
    acknowledged: set[str] = field(default_factory=set)
    # reference -> how many times it reached `paid` (more than one: paid twice)
    paid_count: Counter[str] = field(default_factory=Counter)
    duplicate_sends: int = 0
    conflicting_duplicates: int = 0
    callbacks_queued: int = 0
    starts: int = 0


def replay(records: Iterable[dict[str, Any]]) -> JournalState:
    """The state the records build, applied in order."""
    state = JournalState()
    queued: dict[str, dict[str, Any]] = {}
    for record in records:
        kind = record.get("t")
        if kind == "transfer":
            entry = {k: v for k, v in record.items() if k != "t"}
            before = state.transfers.get(entry["reference"])
            if entry["status"] == PAID and (before is None or before["status"] != PAID):
                state.paid_count[entry["reference"]] += 1
            state.transfers[entry["reference"]] = entry
        elif kind == "callback":
            event = record["event"]
            queued[event["event_id"]] = event
            state.callbacks_queued += 1
        elif kind == "acknowledged":
            for event_id in record["event_ids"]:
                state.acknowledged.add(event_id)
                queued.pop(event_id, None)
        elif kind == "duplicate":
            state.duplicate_sends += 1
            state.conflicting_duplicates += bool(record.get("conflicting"))
        elif kind == "start":
            state.starts += 1
    state.pending = list(queued.values())
    return state


def read(path: Path) -> Iterator[dict[str, Any]]:
    """The complete records of the journal at `path` (none when it does not
    exist); a torn last line is skipped, not repaired (see `Journal.open`)."""
    if not path.exists():
        return
    lines = path.read_bytes().split(b"\n")
    # The part after the last newline is either empty or a torn record.
    for number, line in enumerate(lines[:-1], start=1):
        if not line.strip():
            continue
        try:
            yield json.loads(line)
        except ValueError as exc:
            raise JournalCorrupt(f"{path}: line {number} is not JSON: {exc}") from exc


class Journal:
    """The append side. Not thread-safe by itself: the book calls it under its lock."""

    def __init__(self, path: Path, handle: Any) -> None:
        self.path = path
        self._handle = handle
        self._buffer: list[bytes] = []

    @classmethod
    def open(cls, path: Path) -> tuple[Journal, JournalState]:
        """Opens (creating) the journal for appending, after cutting a torn last
        line; returns it with the state its records replay to."""
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.exists():
            data = path.read_bytes()
            complete = data.rfind(b"\n") + 1
            if complete != len(data):
                with path.open("r+b") as stream:
                    stream.truncate(complete)
                    os.fsync(stream.fileno())
        state = replay(read(path))
        journal = cls(path, path.open("ab"))
        return journal, state

    def add(self, record: dict[str, Any]) -> None:
        """Buffers one record; nothing is durable until `commit`."""
        self._buffer.append(json.dumps(record, separators=(",", ":"), default=str).encode()
                            + b"\n")

    def commit(self) -> None:
        """Writes the buffered records and fsyncs them: call before answering."""
        if not self._buffer:
            return
        self._handle.write(b"".join(self._buffer))
        self._buffer.clear()
        self._handle.flush()
        os.fsync(self._handle.fileno())

    def started(self, partner_code: str) -> None:
        self.add({"t": "start", "partner": partner_code,
                  "at": datetime.now(UTC).isoformat(timespec="milliseconds")})
        self.commit()

    def close(self) -> None:
        self._handle.close()
