"""INSERT ... ON CONFLICT for both dialects we run on."""
from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session


def _dialect_insert(session: Session, table: Table) -> postgresql.Insert | sqlite.Insert:
    if session.get_bind().dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


def upsert(session: Session, table: Table, rows: list[dict], key: list[str],
           keep: Sequence[str] = ()) -> None:
    """Inserts rows; on a key conflict updates every column except the key,
    the primary key and `keep`."""
    stmt = _dialect_insert(session, table)
    skip = set(key) | set(keep) | {c.name for c in table.primary_key.columns}
    stmt = stmt.on_conflict_do_update(
        index_elements=key,
        set_={c.name: stmt.excluded[c.name] for c in table.columns if c.name not in skip})
    session.execute(stmt, rows)


def insert_ignore(session: Session, table: Table, rows: list[dict], key: list[str]):
    """Inserts rows, silently skipping those whose key exists (idempotency)."""
    stmt = _dialect_insert(session, table).on_conflict_do_nothing(index_elements=key)
    return session.execute(stmt, rows)


def insert_ignore_one(session: Session, table: Table, row: dict, key: list[str]) -> bool:
    """Inserts one row unless its key exists; True when it was inserted.
    Asks RETURNING rather than rowcount: psycopg reports a rowcount of -1 for
    INSERT ... ON CONFLICT DO NOTHING, which reads as "inserted"."""
    stmt = (_dialect_insert(session, table).values(**row)
            .on_conflict_do_nothing(index_elements=key)
            .returning(*table.primary_key.columns))
    return session.execute(stmt).first() is not None


def insert_ignore_returning(session: Session, table: Table, rows: list[dict], key: list[str],
                            returning: str) -> set:
    """Inserts rows unless their key exists (in the rows' order: callers sort
    them so two transactions never wait on each other in opposite orders);
    returns the `returning` column of the rows inserted. A row whose key a
    concurrent transaction is inserting waits for that one to end."""
    if not rows:
        return set()
    stmt = (_dialect_insert(session, table).on_conflict_do_nothing(index_elements=key)
            .returning(table.c[returning]))
    return set(session.scalars(stmt, rows))
