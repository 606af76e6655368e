"""Console sessions and officers' second factor (issue 5).

Tables of this area live here so that each area's schema reads on its own;
`disbursement.db.models` imports this module, so `Base.metadata` holds them."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    ForeignKey,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from disbursement.db.models.base import Base, BigId, utcnow


class OfficerTotp(Base):
    """An officer's TOTP secret, sealed with the personal-data vault. The last
    time step used is kept so a code cannot confirm two decisions."""
    __tablename__ = "officer_totp"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), unique=True)
    secret_sealed: Mapped[bytes] = mapped_column(LargeBinary)
    last_step: Mapped[int] = mapped_column(BigInteger, default=0)
    enrolled_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class LoginThrottle(Base):
    """Failed console logins per username (known or not, so a lockout does not
    reveal which usernames exist)."""
    __tablename__ = "login_throttle"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class ConsoleJob(Base):
    """Long work started from the console (registry import, cycle planning) and
    its progress, so any page or worker can show how far it got."""
    __tablename__ = "console_jobs"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))  # import | plan
    status: Mapped[str] = mapped_column(String(16))  # queued | running | done | failed
    params: Mapped[dict] = mapped_column(JSON, default=dict)
    done: Mapped[int] = mapped_column(BigInteger, default=0)
    total: Mapped[int | None] = mapped_column(BigInteger)
    result: Mapped[dict | None] = mapped_column(JSON)
    error: Mapped[str | None] = mapped_column(Text)
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class HouseholdAccount(Base):
    """Every payout account (bank account or wallet number, keyed hash) a
    household has had, with when it was first seen: a batch review flags the
    first payment to an account newer than the household's last payment."""
    __tablename__ = "household_accounts"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    household_id: Mapped[str] = mapped_column(String(32))
    account_hash: Mapped[str] = mapped_column(String(64))
    first_seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    __table_args__ = (UniqueConstraint("household_id", "account_hash"),)
