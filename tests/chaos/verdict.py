"""The judgement after a chaos run: our database against each partner's
journal (the partner's truth), transfer by transfer.

- lost: an approved transfer the partner does not know, that we did not
  legitimately leave unsent (failed, cancelled, refused at send, on hold);
  and a reference the partner holds that we do not know;
- paid twice: an instruction with two paid attempts (ours, or at the
  partners), a transfer with two `paid` events, a reference paid twice in a
  journal;
- stuck: a transfer whose state differs from what the partner's journal says
  (received -> sent, available, paid, rejected, expired or returned, cancelled).

Every kind of mismatch is counted with a few example references, so the
report says what to look at."""
from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import create_engine, text

from connectors.simulators.journal import JournalState, read, replay

EXAMPLES = 5
# What our state must be for each state the partner's journal ends in.
EXPECTED = {"received": {"sent"}, "available": {"available"}, "paid": {"paid"},
            "rejected": {"rejected"}, "expired": {"expired", "returned"},
            "cancelled": {"cancelled"}}
# Ours, for an approved transfer the partner never took: legitimately not sent.
NOT_SENT = {"failed", "cancelled", "rejected", "on_hold"}


@dataclass
class Finding:
    count: int = 0
    examples: list[str] = field(default_factory=list)

    def add(self, reference: str) -> None:
        self.count += 1
        if len(self.examples) < EXAMPLES:
            self.examples.append(reference)


@dataclass
class Verdict:
    transfers: int = 0
    ours_by_status: dict[str, int] = field(default_factory=dict)
    partners: dict[str, dict[str, int]] = field(default_factory=dict)
    lost: dict[str, Finding] = field(default_factory=lambda: defaultdict(Finding))
    paid_twice: dict[str, Finding] = field(default_factory=lambda: defaultdict(Finding))
    stuck: dict[str, Finding] = field(default_factory=lambda: defaultdict(Finding))
    ledger_exit: int | None = None
    ledger_output: str = ""
    outbox: dict[str, int] = field(default_factory=dict)

    @staticmethod
    def total(findings: dict[str, Finding]) -> int:
        return sum(f.count for f in findings.values())

    @property
    def ok(self) -> bool:
        return (not self.total(self.lost) and not self.total(self.paid_twice)
                and not self.total(self.stuck) and self.ledger_exit == 0)


def judge(database_url: str, journals: dict[str, Path]) -> Verdict:
    verdict = Verdict()
    books = {code: replay(read(path)) for code, path in journals.items()}
    engine = create_engine(database_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(text(
                "SELECT t.reference, t.status, t.partner_code, t.instruction_id, "
                "(SELECT count(*) FROM transfer_events e WHERE e.transfer_id = t.id "
                " AND e.to_status = 'paid') AS paid_events FROM transfers t")).all()
            verdict.outbox = dict(conn.execute(text(
                "SELECT status, count(*) FROM outbox GROUP BY status")).all())
    finally:
        engine.dispose()
    verdict.transfers = len(rows)
    verdict.ours_by_status = dict(Counter(row.status for row in rows))
    for code, book in books.items():
        verdict.partners[code] = dict(Counter(t["status"] for t in book.transfers.values()))
    _compare(verdict, rows, books)
    return verdict


def _compare(verdict: Verdict, rows, books: dict[str, JournalState]) -> None:
    ours = {row.reference for row in rows}
    paid_by_instruction: dict[int, list[str]] = defaultdict(list)
    partner_paid_by_instruction: dict[int, list[str]] = defaultdict(list)
    for row in rows:
        book = books.get(row.partner_code)
        held = book.transfers.get(row.reference) if book else None
        if row.status == "paid":
            paid_by_instruction[row.instruction_id].append(row.reference)
        if row.paid_events > 1:
            verdict.paid_twice["transfer with two paid events"].add(row.reference)
        if held is None:
            if row.status not in NOT_SENT:
                verdict.lost[f"unknown to the partner, ours {row.status}"].add(row.reference)
            continue
        if held["status"] == "paid":
            partner_paid_by_instruction[row.instruction_id].append(row.reference)
        if row.status not in EXPECTED.get(held["status"], set()):
            verdict.stuck[f"partner {held['status']}, ours {row.status}"].add(row.reference)
    for references in paid_by_instruction.values():
        if len(references) > 1:
            verdict.paid_twice["instruction with two paid attempts (ours)"].add(references[0])
    for references in partner_paid_by_instruction.values():
        if len(references) > 1:
            verdict.paid_twice["instruction paid twice at the partners"].add(references[0])
    for code, book in books.items():
        for reference, count in book.paid_count.items():
            if count > 1:
                verdict.paid_twice[f"reference paid twice at {code}"].add(reference)
        for reference in book.transfers:
            if reference not in ours:
                verdict.lost[f"held by {code}, unknown to us"].add(reference)


def markdown(verdict: Verdict) -> list[str]:
    lines = [f"Transfers: {verdict.transfers:,}; ours by state "
             f"{_counts(verdict.ours_by_status)}."]
    for code, counts in sorted(verdict.partners.items()):
        lines.append(f"Partner {code}'s journal by state: {_counts(counts)}.")
    lines.append(f"Outbox by state: {_counts(verdict.outbox)}.")
    lines += ["", "| check | count | kind | examples |", "|---|---:|---|---|"]
    for title, findings in (("lost", verdict.lost), ("paid twice", verdict.paid_twice),
                            ("stuck", verdict.stuck)):
        if not findings:
            lines.append(f"| {title} | 0 | | |")
        for kind, finding in sorted(findings.items(), key=lambda kv: -kv[1].count):
            lines.append(f"| {title} | {finding.count:,} | {kind} | "
                         f"{', '.join(finding.examples)} |")
    ledger = "ok" if verdict.ledger_exit == 0 else f"FAILED (exit {verdict.ledger_exit})"
    lines += ["", f"`disburse ledger check`: {ledger}."]
    if verdict.ledger_exit != 0 and verdict.ledger_output:
        lines += ["", "```", verdict.ledger_output.strip()[-1500:], "```"]
    return lines


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{k} {v:,}" for k, v in sorted(counts.items())) or "none"
