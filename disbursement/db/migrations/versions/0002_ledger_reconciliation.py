"""ledger accounts, reconciliation exceptions, expiry and returns (issue 4)

The ledger's own rules go into the database too. On PostgreSQL: a deferred
constraint trigger checks at commit that each posting's legs sum to zero per
currency, and triggers refuse any UPDATE or DELETE of postings and lines (a
correction is a new posting). On SQLite (embedded mode) the refusal triggers
exist too; the balance rule is the application's there (SQLite has no
deferred triggers).

Revision ID: 0002
Revises: 0001
"""
import sqlalchemy as sa
from alembic import op

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
EXPECTED_WHERE = ("type = 'paid_in_records_missing_from_statement' "
                  "AND resolution IS NULL")

PG_TRIGGERS = """
CREATE FUNCTION ledger_posting_balanced() RETURNS trigger AS $$
DECLARE bad record;
BEGIN
    SELECT currency, sum(amount_centimes) AS total INTO bad FROM ledger_lines
     WHERE posting_id = NEW.posting_id GROUP BY currency HAVING sum(amount_centimes) <> 0
     LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'unbalanced ledger posting %: % legs sum to %',
            NEW.posting_id, bad.currency, bad.total USING ERRCODE = '23514';
    END IF;
    RETURN NULL;
END $$ LANGUAGE plpgsql;

CREATE CONSTRAINT TRIGGER ledger_lines_balanced AFTER INSERT ON ledger_lines
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION ledger_posting_balanced();

CREATE FUNCTION ledger_refuse_change() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION '% rows are never changed: % refused (post a correction instead)',
        TG_TABLE_NAME, TG_OP USING ERRCODE = '42501';
END $$ LANGUAGE plpgsql;

CREATE TRIGGER ledger_postings_immutable BEFORE UPDATE OR DELETE ON ledger_postings
    FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change();
CREATE TRIGGER ledger_lines_immutable BEFORE UPDATE OR DELETE ON ledger_lines
    FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change();
"""
PG_DROP = """
DROP TRIGGER IF EXISTS ledger_lines_immutable ON ledger_lines;
DROP TRIGGER IF EXISTS ledger_postings_immutable ON ledger_postings;
DROP TRIGGER IF EXISTS ledger_lines_balanced ON ledger_lines;
DROP FUNCTION IF EXISTS ledger_refuse_change();
DROP FUNCTION IF EXISTS ledger_posting_balanced();
"""
SQLITE_TRIGGERS = [
    f"CREATE TRIGGER ledger_{table}_no_{op_name.lower()} BEFORE {op_name} ON ledger_{table} "
    f"BEGIN SELECT RAISE(ABORT, 'ledger_{table} rows are never changed: {op_name} refused'); END"
    for table in ("postings", "lines") for op_name in ("UPDATE", "DELETE")]


def upgrade() -> None:
    with op.batch_alter_table("transfers") as batch:
        batch.add_column(sa.Column("fee_centimes", sa.BigInteger(), server_default=sa.text("0"),
                                   nullable=False))
        batch.create_check_constraint("fee_non_negative", "fee_centimes >= 0")
    with op.batch_alter_table("statements") as batch:
        batch.add_column(sa.Column("format", sa.String(length=8), server_default=sa.text("'csv'"),
                                   nullable=False))
        batch.add_column(sa.Column("opening_balance_centimes", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("closing_balance_centimes", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("balance_difference_centimes", sa.BigInteger(), nullable=True))
    with op.batch_alter_table("recon_items") as batch:
        batch.add_column(sa.Column("value_date", sa.Date(), nullable=True))
    op.create_table(
        "recon_exceptions",
        sa.Column("id", BigId, nullable=False),
        sa.Column("type", sa.String(length=48), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("partner_code", sa.String(length=16), nullable=False),
        sa.Column("program", sa.String(length=16), nullable=True),
        sa.Column("period", sa.String(length=7), nullable=True),
        sa.Column("statement_id", BigId, nullable=True),
        sa.Column("line_no", sa.Integer(), nullable=True),
        sa.Column("transfer_id", BigId, nullable=True),
        sa.Column("reference", sa.String(length=32), nullable=True),
        sa.Column("amount_centimes", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("detail", sa.String(length=200), nullable=True),
        sa.Column("since", sa.DateTime(timezone=True), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("resolution", sa.String(length=20), nullable=True),
        sa.Column("resolution_reason", sa.String(length=500), nullable=True),
        sa.Column("resolved_by", sa.String(length=64), nullable=True),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("posting_id", BigId, nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["posting_id"], ["ledger_postings.id"],
                                name=op.f("fk_recon_exceptions_posting_id_ledger_postings")),
        sa.ForeignKeyConstraint(["statement_id"], ["statements.id"],
                                name=op.f("fk_recon_exceptions_statement_id_statements")),
        sa.ForeignKeyConstraint(["transfer_id"], ["transfers.id"],
                                name=op.f("fk_recon_exceptions_transfer_id_transfers")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_recon_exceptions")),
    )
    op.create_index("ix_recon_exceptions_status_type_partner", "recon_exceptions",
                    ["status", "type", "partner_code"])
    op.create_index(op.f("ix_recon_exceptions_transfer_id"), "recon_exceptions", ["transfer_id"])
    op.create_index("uq_recon_exceptions_expected_transfer", "recon_exceptions", ["transfer_id"],
                    unique=True, postgresql_where=sa.text(EXPECTED_WHERE),
                    sqlite_where=sa.text(EXPECTED_WHERE))
    op.create_table(
        "arrears",
        sa.Column("id", BigId, nullable=False),
        sa.Column("household_pk", BigId, nullable=False),
        sa.Column("transfer_id", BigId, nullable=False),
        sa.Column("program", sa.String(length=16), nullable=False),
        sa.Column("period", sa.String(length=7), nullable=False),
        sa.Column("amount_centimes", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("settled_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["household_pk"], ["households.id"],
                                name=op.f("fk_arrears_household_pk_households")),
        sa.ForeignKeyConstraint(["transfer_id"], ["transfers.id"],
                                name=op.f("fk_arrears_transfer_id_transfers")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_arrears")),
        sa.UniqueConstraint("transfer_id", name=op.f("uq_arrears_transfer_id")),
    )
    op.create_index(op.f("ix_arrears_household_pk"), "arrears", ["household_pk"])
    op.create_table(
        "fund_returns",
        sa.Column("id", BigId, nullable=False),
        sa.Column("transfer_id", BigId, nullable=False),
        sa.Column("partner_code", sa.String(length=16), nullable=False),
        sa.Column("amount_centimes", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("reason_code", sa.String(length=16), nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["transfer_id"], ["transfers.id"],
                                name=op.f("fk_fund_returns_transfer_id_transfers")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_fund_returns")),
        sa.UniqueConstraint("transfer_id", name=op.f("uq_fund_returns_transfer_id")),
    )
    op.create_index("ix_arrears_program_settled", "arrears", ["program", "settled_at"])
    if op.get_bind().dialect.name == "postgresql":
        op.execute(PG_TRIGGERS)
    elif op.get_bind().dialect.name == "sqlite":
        for statement in SQLITE_TRIGGERS:
            op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(PG_DROP)
    elif op.get_bind().dialect.name == "sqlite":
        for table in ("postings", "lines"):
            for op_name in ("update", "delete"):
                op.execute(f"DROP TRIGGER IF EXISTS ledger_{table}_no_{op_name}")
    op.drop_table("fund_returns")
    op.drop_table("arrears")
    op.drop_table("recon_exceptions")
    with op.batch_alter_table("recon_items") as batch:
        batch.drop_column("value_date")
    with op.batch_alter_table("statements") as batch:
        for column in ("balance_difference_centimes", "closing_balance_centimes",
                       "opening_balance_centimes", "format"):
            batch.drop_column(column)
    with op.batch_alter_table("transfers") as batch:
        batch.drop_constraint("ck_transfers_fee_non_negative", type_="check")
        batch.drop_column("fee_centimes")
