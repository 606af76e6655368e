"""the ledger checked against the partners' books (issue 10)

Each transfer names the payment posting that booked it paid, so the ledger and
the states are checked against each other transfer by transfer; and one
partial index per kind of disagreement between the partners' books and ours,
each nearly empty when all is well, so `disburse ledger check` and the scrape
read a few index entries whatever the number of transfers. Additive.

Backfill: a transfer paid before this revision is attributed to the last
payment posting of its program, period and partner when the ledger's paid
figure there equals the paid transfers' sum (the ledger check agreed); where it
does not, the link stays empty and the check names those transfers.

Revision ID: 0008
Revises: 0007
"""
import sqlalchemy as sa
from alembic import op

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None

# The predicates as they were at this revision (disbursement.db.models.core.BOOKS_WHERE).
BOOKS_INDEXES = {
    'ix_transfers_books_partner_paid': "partner_status = 'paid' AND status <> 'paid'",
    'ix_transfers_books_statement_paid':
        "recon_outcome IN ('matched', 'paid_but_cancelled', 'paid_but_expired', "
        "'paid_but_returned', 'paid_in_statement_not_in_records', 'amount_over', "
        "'amount_under', 'currency_mismatch') AND status <> 'paid'",
    'ix_transfers_books_partner_denies':
        "status = 'paid' AND partner_status IN ('rejected', 'not_found', 'cancelled', "
        "'expired')",
    'ix_transfers_books_no_posting': "status = 'paid' AND payment_posting_id IS NULL",
    'ix_transfers_books_posting_unpaid': "payment_posting_id IS NOT NULL AND status <> 'paid'",
}

BACKFILL = """
WITH paid AS (
    SELECT pi.program, pi.period, t.partner_code, SUM(t.amount_centimes) AS amount
    FROM transfers t JOIN payment_instructions pi ON pi.id = t.instruction_id
    WHERE t.status = 'paid'
    GROUP BY pi.program, pi.period, t.partner_code),
booked AS (
    SELECT lp.program, lp.period, lp.partner_code, SUM(ll.amount_centimes) AS amount,
           MAX(lp.id) AS posting_id
    FROM ledger_postings lp JOIN ledger_lines ll ON ll.posting_id = lp.id
    WHERE lp.kind = 'payment' AND ll.account LIKE 'paid:%'
    GROUP BY lp.program, lp.period, lp.partner_code),
agreed AS (
    SELECT b.program, b.period, b.partner_code, b.posting_id
    FROM booked b JOIN paid p ON p.program = b.program AND p.period = b.period
                             AND p.partner_code = b.partner_code
    WHERE p.amount = b.amount)
UPDATE transfers SET payment_posting_id = agreed.posting_id
FROM payment_instructions, agreed
WHERE payment_instructions.id = transfers.instruction_id AND transfers.status = 'paid'
  AND agreed.program = payment_instructions.program
  AND agreed.period = payment_instructions.period
  AND agreed.partner_code = transfers.partner_code
"""


def upgrade() -> None:
    with op.batch_alter_table('transfers') as batch:
        batch.add_column(sa.Column('payment_posting_id', sa.BigInteger(), nullable=True))
        batch.create_foreign_key('fk_transfers_payment_posting_id_ledger_postings',
                                 'ledger_postings', ['payment_posting_id'], ['id'])
    op.execute(BACKFILL)
    for name, where in BOOKS_INDEXES.items():
        op.create_index(name, 'transfers', ['partner_code'], postgresql_where=sa.text(where),
                        sqlite_where=sa.text(where))


def downgrade() -> None:
    for name in BOOKS_INDEXES:
        op.drop_index(name, table_name='transfers')
    with op.batch_alter_table('transfers') as batch:
        batch.drop_constraint('fk_transfers_payment_posting_id_ledger_postings',
                              type_='foreignkey')
        batch.drop_column('payment_posting_id')
