"""Typed access to a parsed TOML file, each read naming its file and key.

Every loader of `disbursement.configuration` reads through `Table`, so every
error says the same three things (file, dotted key, expectation) in the same
words, and no loader repeats the checks for an integer, a list of strings or
a sub-table.
"""
from __future__ import annotations

import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from disbursement.configuration.errors import MISSING, ConfigError

NON_NEGATIVE_INTEGER = "a non-negative integer"


def read_toml(path: Path) -> Table:
    """The whole file as a table; a missing file or a syntax error is a ConfigError."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(path, "(file)", "an existing file") from None
    try:
        return Table(path, "", tomllib.loads(text))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(path, "(syntax)", f"valid TOML ({exc})") from None


@dataclass(frozen=True)
class Table:
    file: Path
    path: str                     # dotted key of this table; "" for the file itself
    data: Mapping[str, object]

    def key(self, name: str) -> str:
        return f"{self.path}.{name}" if self.path else name

    def error(self, name: str, expected: str, found: object = MISSING) -> ConfigError:
        return ConfigError(self.file, self.key(name), expected, found)

    def has(self, name: str) -> bool:
        return name in self.data

    def raw(self, name: str, default: object = MISSING) -> object:
        if name in self.data:
            return self.data[name]
        if default is MISSING:
            raise self.error(name, "a value")
        return default

    def text(self, name: str, default: object = MISSING) -> str:
        value = self._value(name, default, "a string")
        if not isinstance(value, str) or not value:
            raise self.error(name, "a non-empty string", value)
        return value

    def optional_text(self, name: str) -> str | None:
        return self.text(name) if name in self.data else None

    def integer(self, name: str, default: object = MISSING,
                expected: str = NON_NEGATIVE_INTEGER, minimum: int = 0) -> int:
        value = self._value(name, default, expected)
        # bool is an int to Python, never to whoever wrote the file
        if type(value) is not int or value < minimum:
            raise self.error(name, expected, value)
        return value

    def flag(self, name: str, default: bool) -> bool:
        value = self.data.get(name, default)
        if type(value) is not bool:
            raise self.error(name, "true or false", value)
        return value

    def texts(self, name: str, default: object = MISSING) -> tuple[str, ...]:
        value = self._value(name, default, "a list of strings")
        if not isinstance(value, list | tuple) or not all(
                isinstance(v, str) and v for v in value):
            raise self.error(name, "a list of strings", value)
        return tuple(value)

    def table(self, name: str, default: object = MISSING) -> Table:
        value = self._value(name, default, "a table")
        if not isinstance(value, Mapping):
            raise self.error(name, "a table", value)
        return Table(self.file, self.key(name), value)

    def tables(self) -> Iterator[tuple[str, Table]]:
        """Each entry of this table, which must itself be a table."""
        for name in self.data:
            yield name, self.table(name)

    def _value(self, name: str, default: object, expected: str) -> object:
        if name in self.data:
            return self.data[name]
        if default is MISSING:
            raise self.error(name, expected)
        return default
