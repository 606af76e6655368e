"""Confirmation latency: from a transfer's sent event to the partner's first
`available` or `paid` confirmation (for the histogram per partner)."""
from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from disbursement.db.models import TransferEvent, as_utc, utcnow
from disbursement.domain.states import TransferStatus as S

LOOKUP_CHUNK = 5_000
CONFIRMED = {S.AVAILABLE.value, S.PAID.value}


def sent_to_confirmed_seconds(session: Session, looked_up: Iterable[tuple[int, str]],
                              entered: dict[int, set[str]]) -> list[float]:
    """Seconds since the last `sent` event of each transfer that was `sent`
    before this request and has just entered `available` or `paid` (its first
    confirmation). One grouped query per 5,000 such transfers."""
    ids = [tid for tid, status in looked_up
           if status == S.SENT.value and entered.get(tid, set()) & CONFIRMED]
    now = utcnow()
    seconds: list[float] = []
    for i in range(0, len(ids), LOOKUP_CHUNK):
        sent_at = session.execute(
            select(func.max(TransferEvent.at))
            .where(TransferEvent.transfer_id.in_(ids[i:i + LOOKUP_CHUNK]),
                   TransferEvent.to_status == S.SENT.value)
            .group_by(TransferEvent.transfer_id)).scalars()
        seconds.extend(max((now - as_utc(at)).total_seconds(), 0.0) for at in sent_at)
    return seconds
