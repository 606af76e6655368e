"""What every table module shares: the declarative base, naming convention,
column types and timestamp helpers."""
from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    Integer,
    MetaData,
    Table,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from disbursement.domain.states import CLOSED_ATTEMPT

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
JSONType = JSON().with_variant(JSONB(), "postgresql")
# BIGINT primary keys do not autoincrement on SQLite; INTEGER there is 64-bit anyway.
BigId = BigInteger().with_variant(Integer(), "sqlite")
_closed = ", ".join(f"'{s.value}'" for s in sorted(CLOSED_ATTEMPT))
LIVE_ATTEMPT_WHERE = text(f"status NOT IN ({_closed})")


def utcnow() -> datetime:
    return datetime.now(UTC)


def as_utc(at: datetime) -> datetime:
    """SQLite hands stored timestamps back without their zone; they are UTC."""
    return at if at.tzinfo else at.replace(tzinfo=UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    if TYPE_CHECKING:
        # SQLAlchemy types `__table__` as any FromClause because a class may be mapped
        # onto a select; every model here is mapped onto a Table, which the bulk writers
        # (COPY, ON CONFLICT) need.
        __table__: ClassVar[Table]


def ts_column(**kw) -> Mapped[datetime]:
    return mapped_column(DateTime(timezone=True), default=utcnow, **kw)
