"""Settling transfers whose fate we do not know: `sending` (a durable mark
committed before the partner call: a crash, a killed worker or a database
restart left it there) and `unknown` (the call timed out). Each is settled by
asking the partner, never by a blind resend, and whatever the partner answers
is applied (`chunks.settle_in_doubt`). Those it never received go back to
`queued`, and their chunk's outbox item is opened again so the sweeper sends
them (with the same reference: the partner's idempotency key).

The scheduler runs `query_in_doubt` every minute; `disburse recover` runs it
once, after a fault.
"""
from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy import select, tuple_, update

from connectors.base import ConnectorError
from disbursement.db.models import OutboxItem, Transfer, utcnow
from disbursement.domain.breaker import Admission
from disbursement.domain.states import OutboxStatus
from disbursement.domain.states import TransferStatus as S
from disbursement.services.dispatch import chunks, partner_health
from disbursement.services.ports import JobName, Services

log = logging.getLogger(__name__)
REFERENCES_PER_QUERY = 1_000
DISPATCH_KIND = "dispatch_chunk"


@dataclass
class RecoveryReport:
    asked: int = 0
    settled: dict[str, int] = field(default_factory=dict)   # our resulting state -> transfers
    requeued: int = 0     # the partner never received them: the outbox sends them again
    reopened: list[int] = field(default_factory=list)        # outbox items opened again
    unreachable: list[str] = field(default_factory=list)     # partners that did not answer

    def as_dict(self) -> dict:
        return {"asked": self.asked, "settled": self.settled, "requeued": self.requeued,
                "reopened": len(self.reopened), "unreachable": self.unreachable}


def query_in_doubt(svc: Services, older_than_seconds: float | None = None) -> RecoveryReport:
    """Asks each partner about its transfers in `sending` or `unknown` for
    longer than `older_than_seconds` (default `settings.in_doubt_after_seconds`),
    applies the answers, and sends again what the partner never received."""
    report = RecoveryReport()
    wait = svc.settings.in_doubt_after_seconds if older_than_seconds is None \
        else older_than_seconds
    cutoff = utcnow() - timedelta(seconds=wait)
    policy = partner_health.policy_from(svc.settings)
    touched: set[tuple[int, int]] = set()    # (batch, chunk) of requeued transfers
    for partner, references, keys in _in_doubt(svc, cutoff):
        with svc.uow() as session:
            decision = partner_health.admit(session, partner, policy)
            session.commit()
        if decision.admission is Admission.DEFER:
            report.unreachable.append(partner)
            continue
        connector = svc.connector(partner)
        try:
            settled = chunks.settle_in_doubt(svc, connector, references,
                                             detail="asked after a crash or timeout")
        except ConnectorError as exc:
            log.warning("in-doubt query failed", extra={"partner": partner,
                                                         "error": type(exc).__name__})
            with svc.uow() as session:
                partner_health.record(session, partner, False, policy)
                session.commit()
            report.unreachable.append(partner)
            continue
        finally:
            getattr(connector, "close", lambda: None)()
        report.asked += len(references)
        for state, count in settled.items():
            report.settled[state] = report.settled.get(state, 0) + count
        report.requeued += settled.get(S.QUEUED.value, 0)
        if settled.get(S.QUEUED.value):
            touched |= keys
    if touched:
        report.reopened = _reopen_outbox(svc, sorted(touched))
    for outbox_id in report.reopened:
        svc.queue.enqueue(JobName.DISPATCH_CHUNK, outbox_id)
    report.unreachable = sorted(set(report.unreachable))
    return report


def _in_doubt(svc: Services,
              cutoff) -> Iterator[tuple[str, list[str], set[tuple[int, int]]]]:
    """(partner, references, their (batch, chunk) pairs) in pages, keyset by transfer id."""
    after = 0
    while True:
        with svc.uow() as session:
            rows = session.execute(
                select(Transfer.id, Transfer.partner_code, Transfer.reference,
                       Transfer.batch_id, Transfer.chunk_no)
                .where(Transfer.status.in_(chunks.IN_DOUBT), Transfer.updated_at < cutoff,
                       Transfer.id > after)
                .order_by(Transfer.id).limit(REFERENCES_PER_QUERY)).all()
        if not rows:
            return
        after = rows[-1].id
        by_partner: dict[str, tuple[list[str], set[tuple[int, int]]]] = {}
        for row in rows:
            references, keys = by_partner.setdefault(row.partner_code, ([], set()))
            references.append(row.reference)
            keys.add((row.batch_id, row.chunk_no))
        for partner, (references, keys) in by_partner.items():
            yield partner, references, keys


def _reopen_outbox(svc: Services, chunk_keys: list[tuple[int, int]]) -> list[int]:
    """Opens again the finished dispatch items of these chunks, and returns
    them with those still pending (a dead letter stays dead: an officer
    retries it). A reopened item with nothing queued finishes at once."""
    reopened: set[int] = set()
    with svc.uow() as session:
        for start in range(0, len(chunk_keys), REFERENCES_PER_QUERY):
            keys = chunk_keys[start:start + REFERENCES_PER_QUERY]
            in_keys = tuple_(OutboxItem.batch_id, OutboxItem.chunk_no).in_(keys)
            session.execute(
                update(OutboxItem)
                .where(OutboxItem.kind == DISPATCH_KIND,
                       OutboxItem.status == OutboxStatus.DONE.value, in_keys)
                .values(status=OutboxStatus.PENDING.value, next_attempt_at=None,
                        updated_at=utcnow()), execution_options={"synchronize_session": False})
            reopened.update(session.execute(select(OutboxItem.id).where(
                OutboxItem.kind == DISPATCH_KIND,
                OutboxItem.status == OutboxStatus.PENDING.value, in_keys)).scalars())
        session.commit()
    return sorted(reopened)
