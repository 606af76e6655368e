"""file exchange and ISO 20022 bank files (issue 3)

Revision ID: 0004
Revises: 0003
"""
import sqlalchemy as sa
from alembic import op

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None

ACCEPTED_WHERE = sa.text("status = 'accepted'")


def upgrade() -> None:
    op.create_table(
        "partner_files",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("partner_code", sa.String(16), nullable=False),
        sa.Column("name", sa.String(160), nullable=False),
        sa.Column("kind", sa.String(24), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("lines", sa.Integer(), nullable=False),
        sa.Column("total_centimes", sa.BigInteger(), nullable=False),
        sa.Column("applied", sa.Integer(), nullable=False),
        sa.Column("duplicates", sa.Integer(), nullable=False),
        sa.Column("stale", sa.Integer(), nullable=False),
        sa.Column("stored_path", sa.String(500), nullable=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_partner_files")),
        sa.UniqueConstraint("partner_code", "name", name=op.f("uq_partner_files_partner_code_name")),
        sa.CheckConstraint("status IN ('accepted', 'rejected')", name=op.f("ck_partner_files_status_known")),
    )
    op.create_index(op.f("uq_partner_files_accepted_content"), "partner_files", ["partner_code", "sha256"],
                    unique=True, postgresql_where=ACCEPTED_WHERE, sqlite_where=ACCEPTED_WHERE)
    op.create_index(op.f("ix_partner_files_status"), "partner_files", ["status"])


def downgrade() -> None:
    op.drop_index("ix_partner_files_status", table_name="partner_files")
    op.drop_index("uq_partner_files_accepted_content", table_name="partner_files")
    op.drop_table("partner_files")
