"""Tables of the money path: officers, registry, cycles, instructions, batches,
transfers and their events, inbound messages, the outbox, ledger postings and
statements. Invariants live here too: unique keys for idempotency, CHECKs on
money, a partial unique index for "one live attempt per instruction"."""
from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from disbursement.db.models.base import LIVE_ATTEMPT_WHERE, Base, BigId, JSONType, ts_column
from disbursement.domain import books
from disbursement.domain.books import Disagreement


def _sql_in(values: tuple[str, ...]) -> str:
    return "(" + ", ".join(f"'{v}'" for v in values) + ")"


# Where the partners' books and ours disagree on a transfer (`disburse ledger
# check`, the scrape-time gauge): one predicate per kind, each the condition of
# a partial index that holds only the disagreements, so the check reads a few
# index entries, not 4 million rows. The queries use these very texts (constants
# inlined, never bound) so that PostgreSQL's planner sees they imply the index.
# Kinds that need another table (missing from a statement) are not here.
BOOKS_WHERE: dict[Disagreement, str] = {
    Disagreement.PAID_AT_PARTNER_NOT_HERE:
        f"partner_status = '{books.PARTNER_PAID}' AND status <> 'paid'",
    Disagreement.ON_STATEMENT_NOT_PAID_HERE:
        f"recon_outcome IN {_sql_in(books.STATEMENT_SAYS_PAID)} AND status <> 'paid'",
    Disagreement.PAID_HERE_PARTNER_SAYS_NOT:
        f"status = 'paid' AND partner_status IN {_sql_in(books.PARTNER_DENIES_PAYMENT)}",
    Disagreement.PAID_WITHOUT_PAYMENT_POSTING:
        "status = 'paid' AND payment_posting_id IS NULL",
    Disagreement.PAYMENT_POSTING_NOT_PAID:
        "payment_posting_id IS NOT NULL AND status <> 'paid'",
}
BOOKS_INDEX: dict[Disagreement, str] = {
    Disagreement.PAID_AT_PARTNER_NOT_HERE: "ix_transfers_books_partner_paid",
    Disagreement.ON_STATEMENT_NOT_PAID_HERE: "ix_transfers_books_statement_paid",
    Disagreement.PAID_HERE_PARTNER_SAYS_NOT: "ix_transfers_books_partner_denies",
    Disagreement.PAID_WITHOUT_PAYMENT_POSTING: "ix_transfers_books_no_posting",
    Disagreement.PAYMENT_POSTING_NOT_PAID: "ix_transfers_books_posting_unpaid",
}


class User(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(120))
    password_hash: Mapped[str] = mapped_column(String(200))
    roles: Mapped[str] = mapped_column(String(200))  # comma-separated Role values
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = ts_column()


class ApiToken(Base):
    __tablename__ = "api_tokens"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)  # sha256 hex
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = ts_column()


class AuditEntry(Base):
    """Append-only, hash-chained: each row's hash covers the previous one."""
    __tablename__ = "audit_log"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    at: Mapped[datetime] = ts_column()
    actor: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(64))
    object_type: Mapped[str] = mapped_column(String(32))
    object_id: Mapped[str] = mapped_column(String(64))
    detail: Mapped[dict] = mapped_column(JSONType, default=dict)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64), unique=True)


class AuditHead(Base):
    """One row; its lock serialises appends so the chain never forks."""
    __tablename__ = "audit_head"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    last_hash: Mapped[str] = mapped_column(String(64))
    entries: Mapped[int] = mapped_column(BigInteger, default=0)


class RegistryImport(Base):
    __tablename__ = "registry_imports"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    filename: Mapped[str] = mapped_column(String(255))
    checksum: Mapped[str] = mapped_column(String(64))  # sha256 of the file
    file_format: Mapped[str] = mapped_column(String(8))
    status: Mapped[str] = mapped_column(String(16))  # imported | partial | rejected
    rows_total: Mapped[int] = mapped_column(Integer, default=0)
    rows_valid: Mapped[int] = mapped_column(Integer, default=0)
    rows_invalid: Mapped[int] = mapped_column(Integer, default=0)
    rows_imported: Mapped[int] = mapped_column(Integer, default=0)
    imported_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = ts_column()
    # A file is imported once; a rejected attempt does not block importing its
    # valid rows later.
    __table_args__ = (
        Index("uq_registry_imports_effective_checksum", "checksum", unique=True,
              postgresql_where=text("status IN ('imported', 'partial')"),
              sqlite_where=text("status IN ('imported', 'partial')")),
    )


class RegistryImportError(Base):
    __tablename__ = "registry_import_errors"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    import_id: Mapped[int] = mapped_column(ForeignKey("registry_imports.id"), index=True)
    line: Mapped[int] = mapped_column(Integer)
    household_id: Mapped[str | None] = mapped_column(String(64))
    field: Mapped[str] = mapped_column(String(64))
    message: Mapped[str] = mapped_column(Text)


class Household(Base):
    """Latest registry snapshot of a household. National ID, phones and account
    are encrypted together in `pii` (AES-GCM, key id inside); `cin_hash` is a
    keyed hash so officers can search by national ID without decrypting."""
    __tablename__ = "households"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    household_id: Mapped[str] = mapped_column(String(32), unique=True)
    cin_hash: Mapped[str] = mapped_column(String(64), index=True)
    # Keyed hashes (console, issue 5): the same phone or payout account (bank
    # account or wallet number) on several households is flagged at review.
    phone_hash: Mapped[str | None] = mapped_column(String(64), index=True)
    account_hash: Mapped[str | None] = mapped_column(String(64), index=True)
    pii: Mapped[bytes] = mapped_column(LargeBinary)
    head_name: Mapped[str] = mapped_column(String(120))
    region_code: Mapped[str] = mapped_column(String(2))
    province_code: Mapped[str] = mapped_column(String(3))
    commune_code: Mapped[str] = mapped_column(String(10))
    score_micro: Mapped[int] = mapped_column(BigInteger)
    children_0_5: Mapped[int] = mapped_column(Integer)
    children_schooled_6_20: Mapped[int] = mapped_column(Integer)
    children_unschooled_6_20: Mapped[int] = mapped_column(Integer)
    disabled_children: Mapped[int] = mapped_column(Integer)
    orphan: Mapped[bool] = mapped_column(Boolean)
    flat_rate: Mapped[bool] = mapped_column(Boolean)
    channel: Mapped[str] = mapped_column(String(8))
    partner_code: Mapped[str | None] = mapped_column(String(16))
    # Bank Al-Maghrib wallet tier (1-3) when the registry gives it (issue 3).
    wallet_tier: Mapped[int | None] = mapped_column(Integer)
    suspended: Mapped[bool] = mapped_column(Boolean, default=False)
    import_id: Mapped[int] = mapped_column(ForeignKey("registry_imports.id"))
    updated_at: Mapped[datetime] = ts_column()
    __table_args__ = (
        CheckConstraint("children_0_5 >= 0 AND children_schooled_6_20 >= 0 "
                        "AND children_unschooled_6_20 >= 0 AND disabled_children >= 0",
                        name="counts_non_negative"),
    )


class Cycle(Base):
    __tablename__ = "cycles"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    program: Mapped[str] = mapped_column(String(16))
    period: Mapped[str] = mapped_column(String(7))  # YYYY-MM
    planned_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = ts_column()
    __table_args__ = (UniqueConstraint("program", "period"),)


class PaymentInstruction(Base):
    """What a household is owed in one cycle, with the rule lines behind it.
    One per program, period and household: the database says so."""
    __tablename__ = "payment_instructions"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    cycle_id: Mapped[int] = mapped_column(ForeignKey("cycles.id"), index=True)
    program: Mapped[str] = mapped_column(String(16))
    period: Mapped[str] = mapped_column(String(7))
    household_pk: Mapped[int] = mapped_column(ForeignKey("households.id"))
    amount_centimes: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    lines: Mapped[list] = mapped_column(JSONType)
    partner_code: Mapped[str | None] = mapped_column(String(16))
    route_reason: Mapped[str] = mapped_column(String(200))
    # Every step of the routing decision (issue 3, routing explain).
    route_explanation_id: Mapped[int | None] = mapped_column(ForeignKey("route_explanations.id"))
    created_at: Mapped[datetime] = ts_column()
    __table_args__ = (
        UniqueConstraint("program", "period", "household_pk"),
        CheckConstraint("amount_centimes > 0", name="amount_positive"),
        # A household's earlier instructions (batch review: its usual amount).
        Index("ix_payment_instructions_household_pk", "household_pk"),
    )


class Batch(Base):
    __tablename__ = "batches"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    cycle_id: Mapped[int] = mapped_column(ForeignKey("cycles.id"), index=True)
    partner_code: Mapped[str] = mapped_column(String(16))
    seq: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16))
    transfer_count: Mapped[int] = mapped_column(Integer)
    total_centimes: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    approvals_required: Mapped[int] = mapped_column(Integer)
    # Sum of its transfers' partner fees (issue 3, routing).
    fee_total_centimes: Mapped[int] = mapped_column(BigInteger, default=0,
                                                    server_default=text("0"))
    created_by: Mapped[str] = mapped_column(String(64))
    submitted_by: Mapped[str | None] = mapped_column(String(64))
    released_by: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = ts_column()
    updated_at: Mapped[datetime] = ts_column()
    __table_args__ = (UniqueConstraint("cycle_id", "partner_code", "seq"),
                      CheckConstraint("total_centimes >= 0", name="total_non_negative"))


class BatchDecision(Base):
    __tablename__ = "batch_decisions"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    batch_id: Mapped[int] = mapped_column(ForeignKey("batches.id"), index=True)
    username: Mapped[str] = mapped_column(String(64))
    decision: Mapped[str] = mapped_column(String(16))  # submit | approve | reject | release
    reason: Mapped[str | None] = mapped_column(Text)
    at: Mapped[datetime] = ts_column()
    __table_args__ = (UniqueConstraint("batch_id", "username", "decision"),)


class Transfer(Base):
    """One attempt to pay an instruction. Never two live attempts."""
    __tablename__ = "transfers"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    instruction_id: Mapped[int] = mapped_column(ForeignKey("payment_instructions.id"))
    batch_id: Mapped[int] = mapped_column(ForeignKey("batches.id"))
    reference: Mapped[str] = mapped_column(String(16), unique=True)
    attempt: Mapped[int] = mapped_column(Integer, default=1)
    partner_code: Mapped[str] = mapped_column(String(16))
    channel: Mapped[str] = mapped_column(String(8))
    amount_centimes: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    # The partner's fee for carrying this transfer (config/partners.toml fee table).
    fee_centimes: Mapped[int] = mapped_column(BigInteger, default=0, server_default=text("0"))
    status: Mapped[str] = mapped_column(String(20))
    chunk_no: Mapped[int] = mapped_column(Integer, default=0)
    status_reason: Mapped[str | None] = mapped_column(String(200))
    service_point: Mapped[str | None] = mapped_column(String(32))
    # Cash: the first day the beneficiary may collect at the service point.
    pickup_from: Mapped[date | None] = mapped_column(Date)
    recon_outcome: Mapped[str | None] = mapped_column(String(48))
    # What the partner last said of it (a connectors.base.PartnerStatus value), kept even
    # when it could not move our state: the partner's books beside ours (`ledger check`).
    partner_status: Mapped[str | None] = mapped_column(String(16))
    partner_status_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # The payment posting that booked it paid (set by `ledger.post_payments`):
    # the ledger and the states checked against each other transfer by transfer.
    payment_posting_id: Mapped[int | None] = mapped_column(ForeignKey("ledger_postings.id"))
    updated_at: Mapped[datetime] = ts_column()
    __table_args__ = (
        CheckConstraint("amount_centimes > 0", name="amount_positive"),
        CheckConstraint("fee_centimes >= 0", name="fee_non_negative"),
        Index("uq_transfers_live_attempt", "instruction_id", unique=True,
              postgresql_where=LIVE_ATTEMPT_WHERE, sqlite_where=LIVE_ATTEMPT_WHERE),
        Index("ix_transfers_batch_chunk", "batch_id", "chunk_no", "status"),
        Index("ix_transfers_partner_status", "partner_code", "status"),
        *(Index(BOOKS_INDEX[kind], "partner_code", postgresql_where=text(where),
                sqlite_where=text(where)) for kind, where in BOOKS_WHERE.items()),
    )


class TransferEvent(Base):
    """Append-only history of a transfer."""
    __tablename__ = "transfer_events"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    transfer_id: Mapped[int] = mapped_column(ForeignKey("transfers.id"), index=True)
    at: Mapped[datetime] = ts_column()
    from_status: Mapped[str | None] = mapped_column(String(20))
    to_status: Mapped[str] = mapped_column(String(20))
    source: Mapped[str] = mapped_column(String(16))  # officer | dispatch | partner | system
    actor: Mapped[str] = mapped_column(String(64))
    detail: Mapped[str | None] = mapped_column(String(300))


class InboundMessage(Base):
    """Partner event ids seen, so a replayed confirmation is recognised."""
    __tablename__ = "inbound_messages"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    partner_code: Mapped[str] = mapped_column(String(16))
    event_id: Mapped[str] = mapped_column(String(64))
    # The message's identity: same event id with another payload is a conflict.
    reference: Mapped[str | None] = mapped_column(String(16))
    payload_hash: Mapped[str | None] = mapped_column(String(64))
    at: Mapped[datetime] = ts_column()
    __table_args__ = (UniqueConstraint("partner_code", "event_id"),)


class OutboxItem(Base):
    """Work implied by a committed state change; RQ jobs carry only its id."""
    __tablename__ = "outbox"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    batch_id: Mapped[int] = mapped_column(ForeignKey("batches.id"))
    chunk_no: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16), default="pending")  # pending | done | dead
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    # Earliest time the sweeper re-enqueues it (backoff, open breaker) (issue 3).
    next_attempt_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = ts_column()
    updated_at: Mapped[datetime] = ts_column()
    __table_args__ = (UniqueConstraint("kind", "batch_id", "chunk_no"),
                      Index("ix_outbox_status", "status"))


class LedgerPosting(Base):
    __tablename__ = "ledger_postings"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))  # release | payment | return | correction
    program: Mapped[str] = mapped_column(String(16))
    period: Mapped[str] = mapped_column(String(7))
    partner_code: Mapped[str] = mapped_column(String(16))
    memo: Mapped[str] = mapped_column(String(200))
    at: Mapped[datetime] = ts_column()


class LedgerLine(Base):
    """A leg of a posting: positive = debit, negative = credit. The legs of a
    posting sum to zero."""
    __tablename__ = "ledger_lines"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    posting_id: Mapped[int] = mapped_column(ForeignKey("ledger_postings.id"), index=True)
    account: Mapped[str] = mapped_column(String(64), index=True)
    amount_centimes: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    __table_args__ = (CheckConstraint("amount_centimes <> 0", name="amount_non_zero"),)


class Statement(Base):
    __tablename__ = "statements"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    partner_code: Mapped[str] = mapped_column(String(16))
    filename: Mapped[str] = mapped_column(String(255))
    checksum: Mapped[str] = mapped_column(String(64), unique=True)
    line_count: Mapped[int] = mapped_column(Integer)
    total_centimes: Mapped[int] = mapped_column(BigInteger)
    imported_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = ts_column()
    # Reconciliation (issue 4): the format read and, when it carries them, the
    # balances; opening - payments + returns - closing must be 0.
    format: Mapped[str] = mapped_column(String(8), default="csv", server_default=text("'csv'"))
    opening_balance_centimes: Mapped[int | None] = mapped_column(BigInteger)
    closing_balance_centimes: Mapped[int | None] = mapped_column(BigInteger)
    balance_difference_centimes: Mapped[int | None] = mapped_column(BigInteger)


class ReconItem(Base):
    """One outcome per statement line, plus one per expected transfer missing
    from the statement."""
    __tablename__ = "recon_items"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    statement_id: Mapped[int] = mapped_column(ForeignKey("statements.id"), index=True)
    line_no: Mapped[int | None] = mapped_column(Integer)
    reference: Mapped[str] = mapped_column(String(32))
    amount_centimes: Mapped[int | None] = mapped_column(BigInteger)
    currency: Mapped[str | None] = mapped_column(String(3))
    transfer_id: Mapped[int | None] = mapped_column(ForeignKey("transfers.id"), index=True)
    outcome: Mapped[str] = mapped_column(String(48))
    detail: Mapped[str | None] = mapped_column(String(200))
    value_date: Mapped[date | None] = mapped_column(Date)  # issue 4
