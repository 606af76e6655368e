"""console sessions and second factor (issue 5)

Officers' TOTP secrets, login throttling, console job progress, the payout
accounts each household has had, and keyed hashes of phone and account on
households. Additive only: existing rows keep NULL hashes until their next
registry import.

Revision ID: 0006
Revises: 0005
"""
import sqlalchemy as sa
from alembic import op

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    op.create_table('console_jobs',
    sa.Column('id', BigId, nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('params', sa.JSON(), nullable=False),
    sa.Column('done', sa.BigInteger(), nullable=False),
    sa.Column('total', sa.BigInteger(), nullable=True),
    sa.Column('result', sa.JSON(), nullable=True),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('created_by', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_console_jobs'))
    )
    op.create_table('household_accounts',
    sa.Column('id', BigId, nullable=False),
    sa.Column('household_id', sa.String(length=32), nullable=False),
    sa.Column('account_hash', sa.String(length=64), nullable=False),
    sa.Column('first_seen_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_household_accounts')),
    sa.UniqueConstraint('household_id', 'account_hash',
                        name=op.f('uq_household_accounts_household_id_account_hash'))
    )
    op.create_table('login_throttle',
    sa.Column('id', BigId, nullable=False),
    sa.Column('username', sa.String(length=64), nullable=False),
    sa.Column('failures', sa.Integer(), nullable=False),
    sa.Column('locked_until', sa.DateTime(timezone=True), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_login_throttle')),
    sa.UniqueConstraint('username', name=op.f('uq_login_throttle_username'))
    )
    op.create_table('officer_totp',
    sa.Column('id', BigId, nullable=False),
    sa.Column('user_id', BigId, nullable=False),
    sa.Column('secret_sealed', sa.LargeBinary(), nullable=False),
    sa.Column('last_step', sa.BigInteger(), nullable=False),
    sa.Column('enrolled_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_officer_totp_user_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_officer_totp')),
    sa.UniqueConstraint('user_id', name=op.f('uq_officer_totp_user_id'))
    )
    with op.batch_alter_table('households') as batch:
        batch.add_column(sa.Column('phone_hash', sa.String(length=64), nullable=True))
        batch.add_column(sa.Column('account_hash', sa.String(length=64), nullable=True))
        batch.create_index(batch.f('ix_households_account_hash'), ['account_hash'], unique=False)
        batch.create_index(batch.f('ix_households_phone_hash'), ['phone_hash'], unique=False)
    op.create_index('ix_payment_instructions_household_pk', 'payment_instructions',
                    ['household_pk'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_payment_instructions_household_pk', table_name='payment_instructions')
    with op.batch_alter_table('households') as batch:
        batch.drop_index(batch.f('ix_households_phone_hash'))
        batch.drop_index(batch.f('ix_households_account_hash'))
        batch.drop_column('account_hash')
        batch.drop_column('phone_hash')
    op.drop_table('officer_totp')
    op.drop_table('login_throttle')
    op.drop_table('household_accounts')
    op.drop_table('console_jobs')
