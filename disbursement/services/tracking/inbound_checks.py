"""The checks every partner message passes on the inbound path, whatever its
protocol and whatever it carries (confirmations, returns), so that hostile
input is refused with a 4xx naming what is wrong and never reaches a schema,
a connector's parser or the database in a shape they would choke on.

- the media type the protocol's callbacks use (`application/json`, with an
  optional `charset=utf-8`: JSON is UTF-8 by RFC 8259);
- nesting at most `MAX_NESTING_DEPTH`, counted on the raw bytes before any
  parser runs (the json module would recurse, then raise RecursionError);
- no C0 control character other than tab, newline and carriage return, and no
  lone UTF-16 surrogate, in any key or string: PostgreSQL cannot store NUL in a
  text column, the others have no business in a reference, an event id or a
  reason, and surrogates cannot be encoded to UTF-8.
"""
from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from connectors.base import JSON_MEDIA_TYPE
from disbursement.domain.errors import BadInput

JSON_CHARSET = "utf-8"
# Deeper than any real partner message (a list of objects is 2 deep).
MAX_NESTING_DEPTH = 32
# A JSON string literal, escapes included (unrolled so that the engine does
# not backtrack on long strings).
_STRING_LITERAL = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
# Keys longer than this are cut short where an error names them.
SHOWN_KEY_CHARS = 40
_BRACKET = re.compile(rb"[\[\]{}]")
_FORBIDDEN_CHARACTER = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff]")


class UnsupportedMediaType(BadInput, ValueError):
    """Raised when a partner message's Content-Type is not the one its
    protocol sends (or its charset is not UTF-8)."""


class NestedTooDeeply(BadInput, ValueError):
    """Raised when a partner message nests arrays or objects deeper than
    MAX_NESTING_DEPTH."""


class ForbiddenCharacter(BadInput, ValueError):
    """Raised when a key or string of a partner message holds a control
    character (other than tab, newline, carriage return) or a lone surrogate."""

    def __init__(self, field: str, position: int, character: str) -> None:
        super().__init__(f"{field}: character U+{ord(character):04X} at position {position} "
                         "is not allowed")
        self.details = {"field": field, "position": position}


def require_media_type(headers: Mapping[str, str], expected: str = JSON_MEDIA_TYPE) -> None:
    """Raises UnsupportedMediaType unless Content-Type is `expected` and its
    charset parameter, if any, is utf-8 (other parameters are ignored)."""
    value = headers.get("Content-Type") or ""
    media_type, *parameters = (part.strip().lower() for part in value.split(";"))
    named = {name.strip(): given.strip().strip('"')
             for name, _, given in (p.partition("=") for p in parameters)}
    if media_type != expected or named.get("charset", JSON_CHARSET) != JSON_CHARSET:
        raise UnsupportedMediaType(
            f"Content-Type must be {expected} (optionally with charset=utf-8), "
            f"not {value[:80]!r}")


def check_nesting(body: bytes, limit: int = MAX_NESTING_DEPTH) -> None:
    """Raises NestedTooDeeply when the JSON text in `body` opens more than
    `limit` arrays or objects inside one another. Brackets inside string
    literals do not count; the text need not be valid JSON (the parser that
    runs next says so)."""
    depth = 0
    for bracket in _BRACKET.finditer(_STRING_LITERAL.sub(b'""', body)):
        if bracket.group() in (b"[", b"{"):
            depth += 1
            if depth > limit:
                raise NestedTooDeeply(f"message nested too deeply (more than {limit} levels)")
        else:
            depth -= 1


def check_strings(payload: Any) -> None:
    """Raises ForbiddenCharacter naming the first key or string of `payload`
    (parsed JSON, nesting already bounded) that holds a forbidden character,
    by its path (`[0].reason`) and the character's position."""
    pending: list[tuple[str, Any]] = [("", payload)]
    while pending:
        path, value = pending.pop()
        if isinstance(value, str):
            _check_string(path or "body", value)
        elif isinstance(value, dict):
            children = []
            for key, item in value.items():
                child = f"{path}.{_shown(key)}" if path else _shown(key)
                _check_string(f"key {child}", key)
                children.append((child, item))
            pending.extend(reversed(children))
        elif isinstance(value, list):
            pending.extend((f"{path}[{index}]", value[index])
                           for index in reversed(range(len(value))))


def _check_string(field: str, value: str) -> None:
    found = _FORBIDDEN_CHARACTER.search(value)
    if found:
        raise ForbiddenCharacter(field, found.start(), found.group())


def _shown(key: str) -> str:
    """A key as a path names it: escaped, so that the message never carries
    the character it refuses, and cut short."""
    escaped = json.dumps(key)[1:-1]
    return escaped if len(escaped) <= SHOWN_KEY_CHARS else escaped[:SHOWN_KEY_CHARS] + "..."
