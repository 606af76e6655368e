"""The one error a configuration file can cause.

Whoever edits `config/` reads this message and nothing else: it names the file,
the key (a dotted path such as `partners.BARID.fees.cash`, or a CSV line and
column) and what was expected there, so the fix needs no reading of code.
"""
from __future__ import annotations

from pathlib import Path

MISSING: object = object()  # `found` when the key is absent


class ConfigError(ValueError):
    """Raised at startup when a configuration file is missing, unreadable, or
    holds a value of the wrong type, shape or range."""

    def __init__(self, file: Path | str, key: str, expected: str,
                 found: object = MISSING) -> None:
        self.file = str(file)
        self.key = key
        self.expected = expected
        shown = "nothing (missing)" if found is MISSING else repr(found)
        super().__init__(f"{self.file}: {key}: expected {expected}, found {shown}")
