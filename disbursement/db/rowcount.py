"""How many rows an UPDATE changed.

Conditional updates (`... WHERE status = :expected`) decide races by this count.
`Session.execute` is typed as returning a plain `Result`; for an UPDATE or DELETE it is a
`CursorResult`, the one that carries the count.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

from sqlalchemy import CursorResult, Executable
from sqlalchemy.orm import Session


def rows_changed(session: Session, statement: Executable,
                 params: Mapping[str, Any] | None = None) -> int:
    result = cast(CursorResult[Any], session.execute(statement, params))
    return result.rowcount
