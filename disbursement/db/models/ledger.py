"""Ledger accounts, reconciliation exceptions and their resolutions, expiry and returns (issue 4).

Tables of this area live here so that each area's schema reads on its own;
`disbursement.db.models` imports this module, so `Base.metadata` holds them.

The ledger tables themselves (`ledger_postings`, `ledger_lines`) predate this
area and stay in models.py; the database rules that guard them (balanced at
commit, never updated or deleted) are triggers made by migration 0002."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, DateTime, ForeignKey, Index, Integer, String, text
from sqlalchemy.orm import Mapped, mapped_column

from disbursement.db.models.base import Base, BigId, ts_column


class ReconException(Base):
    """A reconciliation outcome that is not `matched`, waiting for an officer.

    `amount_centimes` is signed, "the partner's statement minus our records":
    positive when the partner claims more than we recorded (an amount over, an
    unknown reference), negative when it shows less (an amount under, a payment
    missing from the statement). A write-off books exactly this amount.

    `status`: expected (a payment missing from the statement, still within the
    partner's statement SLA) -> open -> resolved | reissue_requested."""
    __tablename__ = "recon_exceptions"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    type: Mapped[str] = mapped_column(String(48))
    status: Mapped[str] = mapped_column(String(20))
    partner_code: Mapped[str] = mapped_column(String(16))
    program: Mapped[str | None] = mapped_column(String(16))
    period: Mapped[str | None] = mapped_column(String(7))
    statement_id: Mapped[int | None] = mapped_column(ForeignKey("statements.id"))
    line_no: Mapped[int | None] = mapped_column(Integer)
    transfer_id: Mapped[int | None] = mapped_column(ForeignKey("transfers.id"), index=True)
    reference: Mapped[str | None] = mapped_column(String(32))
    amount_centimes: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    detail: Mapped[str | None] = mapped_column(String(200))
    # When the thing became exceptional (payment time for a missing item).
    since: Mapped[datetime] = ts_column()
    # The partner's statement SLA for expected items; null for the others.
    due_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    resolution: Mapped[str | None] = mapped_column(String(20))
    resolution_reason: Mapped[str | None] = mapped_column(String(500))
    resolved_by: Mapped[str | None] = mapped_column(String(64))
    resolved_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    posting_id: Mapped[int | None] = mapped_column(ForeignKey("ledger_postings.id"))
    created_at: Mapped[datetime] = ts_column()
    __table_args__ = (
        Index("ix_recon_exceptions_status_type_partner", "status", "type", "partner_code"),
        # One unsettled "missing from the statement" item per transfer, however
        # many statements leave it out.
        Index("uq_recon_exceptions_expected_transfer", "transfer_id", unique=True,
              postgresql_where=text("type = 'paid_in_records_missing_from_statement' "
                                    "AND resolution IS NULL"),
              sqlite_where=text("type = 'paid_in_records_missing_from_statement' "
                                "AND resolution IS NULL")),
    )


class Arrears(Base):
    """A household whose transfer came back (expired, then returned): the next
    cycle may pay the arrears when the program says so (`pay_arrears`)."""
    __tablename__ = "arrears"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    household_pk: Mapped[int] = mapped_column(ForeignKey("households.id"), index=True)
    transfer_id: Mapped[int] = mapped_column(ForeignKey("transfers.id"), unique=True)
    program: Mapped[str] = mapped_column(String(16))
    period: Mapped[str] = mapped_column(String(7))
    amount_centimes: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    created_at: Mapped[datetime] = ts_column()
    # Set by the planner of a later cycle when it pays the arrears.
    settled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    __table_args__ = (Index("ix_arrears_program_settled", "program", "settled_at"),)


class FundReturn(Base):
    """Money a partner gave back for one transfer: an expired transfer (which
    becomes `returned`) or a rejected / failed attempt whose funds sat in the
    partner's clearing account. One per transfer: a second return of the same
    transfer is a duplicate and changes nothing."""
    __tablename__ = "fund_returns"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    transfer_id: Mapped[int] = mapped_column(ForeignKey("transfers.id"), unique=True)
    partner_code: Mapped[str] = mapped_column(String(16))
    amount_centimes: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    source: Mapped[str] = mapped_column(String(16))  # api | statement | file
    reason_code: Mapped[str | None] = mapped_column(String(16))
    at: Mapped[datetime] = ts_column()
