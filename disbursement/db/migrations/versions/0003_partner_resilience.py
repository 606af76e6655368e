"""partner nonces, circuit breakers, outbox retry schedule, wallet tiers (issue 3)

Expand only: two new tables and two nullable columns, so code of the previous
release keeps working on the migrated schema.

Revision ID: 0003
Revises: 0002
"""
import sqlalchemy as sa
from alembic import op

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "partner_nonces",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("partner_code", sa.String(length=16), nullable=False),
        sa.Column("nonce", sa.String(length=64), nullable=False),
        sa.Column("signed_at", sa.BigInteger(), nullable=False),
        sa.Column("seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_partner_nonces")),
        sa.UniqueConstraint("partner_code", "nonce",
                            name=op.f("uq_partner_nonces_partner_code_nonce")),
    )
    op.create_index(op.f("ix_partner_nonces_seen_at"), "partner_nonces", ["seen_at"])
    op.create_table(
        "partner_breakers",
        sa.Column("partner_code", sa.String(length=16), nullable=False),
        sa.Column("state", sa.String(length=10), nullable=False),
        sa.Column("consecutive_failures", sa.Integer(), nullable=False),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("probe_started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("state IN ('closed', 'open', 'half_open')",
                           name=op.f("ck_partner_breakers_state_known")),
        sa.CheckConstraint("consecutive_failures >= 0",
                           name=op.f("ck_partner_breakers_failures_non_negative")),
        sa.PrimaryKeyConstraint("partner_code", name=op.f("pk_partner_breakers")),
    )
    with op.batch_alter_table("outbox") as batch:
        batch.add_column(sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table("households") as batch:
        batch.add_column(sa.Column("wallet_tier", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("households") as batch:
        batch.drop_column("wallet_tier")
    with op.batch_alter_table("outbox") as batch:
        batch.drop_column("next_attempt_at")
    op.drop_table("partner_breakers")
    op.drop_index(op.f("ix_partner_nonces_seen_at"), table_name="partner_nonces")
    op.drop_table("partner_nonces")
