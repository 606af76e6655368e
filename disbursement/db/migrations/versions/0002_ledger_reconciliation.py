"""ledger accounts, reconciliation exceptions, expiry and returns (issue 4)

Revision ID: 0002
Revises: 0001
"""
from alembic import op  # noqa: F401
import sqlalchemy as sa  # noqa: F401

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("transfers") as batch:
        batch.add_column(sa.Column("fee_centimes", sa.BigInteger(), server_default=sa.text("0"),
                                   nullable=False))
        batch.create_check_constraint("fee_non_negative", "fee_centimes >= 0")


def downgrade() -> None:
    with op.batch_alter_table("transfers") as batch:
        batch.drop_constraint("ck_transfers_fee_non_negative", type_="check")
        batch.drop_column("fee_centimes")
