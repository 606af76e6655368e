"""Service points, routing explanations and beneficiary notifications (issue 3).

Tables of this area live here so that each area's schema reads on its own;
`disbursement.db.models` imports this module, so `Base.metadata` holds them."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from disbursement.db.models.base import Base, BigId, JSONType, utcnow
from disbursement.db.models.core import Transfer


class ServicePoint(Base):
    """A place where a partner pays cash: its agencies and the extra points it
    opens for a program. Coordinates in integer micro-degrees."""
    __tablename__ = "service_points"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    partner_code: Mapped[str] = mapped_column(String(16))
    code: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(120))
    address: Mapped[str] = mapped_column(String(200))
    region_code: Mapped[str] = mapped_column(String(2))
    province_code: Mapped[str] = mapped_column(String(3))
    commune_code: Mapped[str] = mapped_column(String(10))
    latitude_micro: Mapped[int] = mapped_column(BigInteger)
    longitude_micro: Mapped[int] = mapped_column(BigInteger)
    opening_days: Mapped[str] = mapped_column(String(7))  # Monday-first 0/1 mask
    daily_capacity_transfers: Mapped[int] = mapped_column(Integer)
    daily_capacity_centimes: Mapped[int] = mapped_column(BigInteger)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    __table_args__ = (
        UniqueConstraint("partner_code", "code"),
        Index("ix_service_points_partner_code_province_code", "partner_code", "province_code"),
        CheckConstraint("daily_capacity_transfers >= 0 AND daily_capacity_centimes >= 0",
                        name="capacity_non_negative"),
    )


class RouteExplanation(Base):
    """The steps of one routing decision (rules tried, partners skipped and
    why, how the service point was chosen). Many instructions share the same
    steps, so each distinct list is stored once and found by its digest."""
    __tablename__ = "route_explanations"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    digest: Mapped[str] = mapped_column(String(64), unique=True)  # sha256 of the steps
    steps: Mapped[list] = mapped_column(JSONType)


class Notification(Base):
    """One SMS per cash transfer, telling the beneficiary where and from when
    to collect. Unique per transfer: a retried job never sends twice. The
    withdrawal code is never stored; only a keyed hash to verify it."""
    __tablename__ = "notifications"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    transfer_id: Mapped[int] = mapped_column(ForeignKey("transfers.id"), unique=True)
    reference: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))  # pending | sent | no_phone
    code_hash: Mapped[str] = mapped_column(String(64))
    gateway_id: Mapped[str | None] = mapped_column(String(64))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    __table_args__ = (Index("ix_notifications_status", "status"),)


# Per-point load ("how many collect at point X from day D") is read by point
# and day; the index lives on `transfers` but belongs to this area.
Index("ix_transfers_service_point_pickup_from", Transfer.service_point, Transfer.pickup_from)
