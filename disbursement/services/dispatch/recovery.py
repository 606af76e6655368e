"""Settling transfers whose fate we do not know: `sending` (a durable mark
committed before the partner call; a crash left it there) and `unknown` (the
call timed out). Each is settled by asking the partner, never by a blind
resend, and whatever the partner answers is applied.

(Issue 10: filled in by the exactness work; the scheduler calls `query_in_doubt`.)
"""
from __future__ import annotations

from dataclasses import dataclass, field

from disbursement.services.ports import Services


@dataclass
class RecoveryReport:
    asked: int = 0
    settled: dict[str, int] = field(default_factory=dict)   # our target state -> transfers
    requeued: int = 0     # the partner never received them: the outbox sends them again

    def as_dict(self) -> dict:
        return {"asked": self.asked, "settled": self.settled, "requeued": self.requeued}


def query_in_doubt(svc: Services, older_than_seconds: float = 60) -> RecoveryReport:
    """Asks each partner about its transfers in `sending` or `unknown` for
    longer than `older_than_seconds`, and applies the answers."""
    return RecoveryReport()
