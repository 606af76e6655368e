"""service points, routing capacity, fees, notifications (issue 3)

Revision ID: 0005
Revises: 0004
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
JSONType = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "service_points",
        sa.Column("id", BigId, nullable=False),
        sa.Column("partner_code", sa.String(16), nullable=False),
        sa.Column("code", sa.String(32), nullable=False),
        sa.Column("name", sa.String(120), nullable=False),
        sa.Column("address", sa.String(200), nullable=False),
        sa.Column("region_code", sa.String(2), nullable=False),
        sa.Column("province_code", sa.String(3), nullable=False),
        sa.Column("commune_code", sa.String(10), nullable=False),
        sa.Column("latitude_micro", sa.BigInteger(), nullable=False),
        sa.Column("longitude_micro", sa.BigInteger(), nullable=False),
        sa.Column("opening_days", sa.String(7), nullable=False),
        sa.Column("daily_capacity_transfers", sa.Integer(), nullable=False),
        sa.Column("daily_capacity_centimes", sa.BigInteger(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("daily_capacity_transfers >= 0 AND daily_capacity_centimes >= 0",
                           name="ck_service_points_capacity_non_negative"),
        sa.PrimaryKeyConstraint("id", name="pk_service_points"),
        sa.UniqueConstraint("partner_code", "code", name="uq_service_points_partner_code_code"),
    )
    op.create_index("ix_service_points_partner_code_province_code", "service_points",
                    ["partner_code", "province_code"])
    op.create_table(
        "route_explanations",
        sa.Column("id", BigId, nullable=False),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("steps", JSONType, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_route_explanations"),
        sa.UniqueConstraint("digest", name="uq_route_explanations_digest"),
    )
    op.create_table(
        "notifications",
        sa.Column("id", BigId, nullable=False),
        sa.Column("transfer_id", sa.BigInteger(), nullable=False),
        sa.Column("reference", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("code_hash", sa.String(64), nullable=False),
        sa.Column("gateway_id", sa.String(64), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["transfer_id"], ["transfers.id"],
                                name="fk_notifications_transfer_id_transfers"),
        sa.PrimaryKeyConstraint("id", name="pk_notifications"),
        sa.UniqueConstraint("transfer_id", name="uq_notifications_transfer_id"),
    )
    op.create_index("ix_notifications_status", "notifications", ["status"])
    with op.batch_alter_table("payment_instructions") as batch:
        batch.add_column(sa.Column("route_explanation_id", sa.BigInteger(), nullable=True))
        batch.create_foreign_key("fk_payment_instructions_route_explanation_id_route_explanations",
                                 "route_explanations", ["route_explanation_id"], ["id"])
    with op.batch_alter_table("batches") as batch:
        batch.add_column(sa.Column("fee_total_centimes", sa.BigInteger(),
                                   server_default=sa.text("0"), nullable=False))
    with op.batch_alter_table("transfers") as batch:
        batch.add_column(sa.Column("pickup_from", sa.Date(), nullable=True))
    op.create_index("ix_transfers_service_point_pickup_from", "transfers",
                    ["service_point", "pickup_from"])


def downgrade() -> None:
    op.drop_index("ix_transfers_service_point_pickup_from", table_name="transfers")
    with op.batch_alter_table("transfers") as batch:
        batch.drop_column("pickup_from")
    with op.batch_alter_table("batches") as batch:
        batch.drop_column("fee_total_centimes")
    with op.batch_alter_table("payment_instructions") as batch:
        batch.drop_constraint("fk_payment_instructions_route_explanation_id_route_explanations",
                              type_="foreignkey")
        batch.drop_column("route_explanation_id")
    op.drop_index("ix_notifications_status", table_name="notifications")
    op.drop_table("notifications")
    op.drop_table("route_explanations")
    op.drop_table("service_points")
