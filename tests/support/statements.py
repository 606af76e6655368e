"""Counting the SQL statements a piece of code sends, for the tests that bound
them (a page's queries must not grow with the batch: no N+1)."""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import event
from sqlalchemy.engine import Engine


@contextmanager
def counted(engine: Engine) -> Iterator[list[str]]:
    """Yields the list of statements `engine` executes inside the block."""
    statements: list[str] = []

    def count(conn, cursor, statement: str, parameters, context, executemany) -> None:
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", count)
