"""Partner-facing resilience: replay nonces and circuit breakers (issue 3).

Tables of this area live here so that each area's schema reads on its own;
`disbursement.db.models` imports this module, so `Base.metadata` holds them.
Dead letters are outbox items in status `dead` (see `OutboxItem`), and the
retry schedule is the outbox's `attempts` and `next_attempt_at`."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, DateTime, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from disbursement.db.models.base import Base, BigId, utcnow


class PartnerNonce(Base):
    """Nonces of signed partner callbacks seen within the replay window. The
    unique key makes "seen once" hold across every API process; rows older
    than the window are pruned."""
    __tablename__ = "partner_nonces"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    partner_code: Mapped[str] = mapped_column(String(16))
    nonce: Mapped[str] = mapped_column(String(64))
    signed_at: Mapped[int] = mapped_column(BigInteger)  # the message's Unix timestamp
    seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow,
                                              index=True)
    __table_args__ = (UniqueConstraint("partner_code", "nonce"),)


class PartnerBreaker(Base):
    """One circuit breaker per partner, shared by every worker and the embedded
    mode. Rows are created on first use; no row means closed."""
    __tablename__ = "partner_breakers"
    partner_code: Mapped[str] = mapped_column(String(16), primary_key=True)
    state: Mapped[str] = mapped_column(String(10), default="closed")
    consecutive_failures: Mapped[int] = mapped_column(Integer, default=0)
    opened_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    probe_started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    __table_args__ = (
        CheckConstraint("state IN ('closed', 'open', 'half_open')", name="state_known"),
        CheckConstraint("consecutive_failures >= 0", name="failures_non_negative"),
    )
