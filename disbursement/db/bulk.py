"""Bulk writes at COPY speed on PostgreSQL, executemany on SQLite.

Planning writes three rows per household (instruction, transfer, event); a
multi-row INSERT ... RETURNING spends most of its time building and parsing
giant statements. Here ids are reserved from the table's sequence first, then
rows go in with COPY (PostgreSQL) or executemany (SQLite, where the whole
transaction already holds the database's write lock).
"""
from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, cast

import psycopg
from sqlalchemy import Table, func, insert, select, text
from sqlalchemy.orm import Session


def reserve_ids(session: Session, table: Table, count: int) -> list[int]:
    if count == 0:
        return []
    if session.get_bind().dialect.name == "postgresql":
        return list(session.execute(text(
            "SELECT nextval(pg_get_serial_sequence(:t, 'id')) FROM generate_series(1, :n)"),
            {"t": table.name, "n": count}).scalars())
    # SQLite: this transaction holds the write lock, so max(id) cannot move under us.
    start = session.execute(select(func.coalesce(func.max(table.c.id), 0))).scalar_one() + 1
    return list(range(start, start + count))


def write_rows(session: Session, table: Table, columns: Sequence[str],
               rows: Sequence[Sequence[object]], json_columns: Sequence[str] = ()) -> None:
    if not rows:
        return
    if session.get_bind().dialect.name != "postgresql":
        session.execute(insert(table), [dict(zip(columns, row, strict=True)) for row in rows])
        return
    json_at = [columns.index(c) for c in json_columns]
    # psycopg's own connection: COPY is not part of the DB-API that SQLAlchemy types.
    raw = cast("psycopg.Connection[Any]", session.connection().connection.dbapi_connection)
    names = ", ".join(columns)
    with raw.cursor() as cursor, cursor.copy(f"COPY {table.name} ({names}) FROM STDIN") as copy:
        for row in rows:
            if json_at:
                row = list(row)
                for i in json_at:
                    row[i] = json.dumps(row[i], separators=(",", ":"))
            copy.write_row(row)
