"""exactness under concurrency and crashes (issue 10)

What the partner last said of each transfer (`partner_status`, even when we
could not apply it: the partners' books beside ours), and the identity of each
partner message (the reference it was about and a hash of its payload, so the
same event id with another payload is a conflict, not a silent duplicate).
Additive only.

Revision ID: 0007
Revises: 0006
"""
import sqlalchemy as sa
from alembic import op

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('transfers') as batch:
        batch.add_column(sa.Column('partner_status', sa.String(length=16), nullable=True))
        batch.add_column(sa.Column('partner_status_at', sa.DateTime(timezone=True),
                                   nullable=True))
    with op.batch_alter_table('inbound_messages') as batch:
        batch.add_column(sa.Column('reference', sa.String(length=16), nullable=True))
        batch.add_column(sa.Column('payload_hash', sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('inbound_messages') as batch:
        batch.drop_column('payload_hash')
        batch.drop_column('reference')
    with op.batch_alter_table('transfers') as batch:
        batch.drop_column('partner_status_at')
        batch.drop_column('partner_status')
