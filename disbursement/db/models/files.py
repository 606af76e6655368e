"""Files exchanged with partners over SFTP: instruction, status and settlement files (issue 3).

Tables of this area live here so that each area's schema reads on its own;
`disbursement.db.models` imports this module, so `Base.metadata` holds them."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from disbursement.db.models.base import Base, BigId, ts_column

ACCEPTED_WHERE = text("status = 'accepted'")


class PartnerFile(Base):
    """A file collected from a partner (status, settlement, pain.002, camt.054...):
    which one, its content digest, and whether it passed its checks. A file name
    is collected once; the same content accepted twice is refused by the database."""
    __tablename__ = "partner_files"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    partner_code: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(160))
    kind: Mapped[str] = mapped_column(String(24))
    sha256: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))      # accepted | rejected
    error: Mapped[str | None] = mapped_column(Text)
    lines: Mapped[int] = mapped_column(Integer, default=0)
    total_centimes: Mapped[int] = mapped_column(BigInteger, default=0)
    applied: Mapped[int] = mapped_column(Integer, default=0)
    duplicates: Mapped[int] = mapped_column(Integer, default=0)
    stale: Mapped[int] = mapped_column(Integer, default=0)
    # settlement files are kept on disk for reconciliation
    stored_path: Mapped[str | None] = mapped_column(String(500))
    received_at: Mapped[datetime] = ts_column()
    __table_args__ = (
        UniqueConstraint("partner_code", "name"),
        CheckConstraint("status IN ('accepted', 'rejected')", name="status_known"),
        Index("uq_partner_files_accepted_content", "partner_code", "sha256", unique=True,
              postgresql_where=ACCEPTED_WHERE, sqlite_where=ACCEPTED_WHERE),
        Index("ix_partner_files_status", "status"),
    )
