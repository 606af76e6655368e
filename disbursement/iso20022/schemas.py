"""Validation of ISO 20022 files against the ISO schemas in `xsd/`.

lxml's XMLSchema validates while `iterparse` streams, so a large file is
checked without building its tree. Used by the tests on every generated file,
and by callers that want a file checked before it leaves or is read.
"""
from __future__ import annotations

import functools
import os
import re
from pathlib import Path
from typing import IO

from lxml import etree

from disbursement.iso20022.xml import (
    MESSAGE_TYPES,
    MessageError,
    MessageType,
    message_type_of,
    safe_parser,
)

XSD_DIR = Path(__file__).resolve().parent / "xsd"
MAX_REPORTED_ERRORS = 5
_NAMESPACE = re.compile(r"\{[^}]*\}")


class SchemaViolation(MessageError):
    """Raised by `validate` when a file does not conform to its message's XSD;
    the message lists the first violations with their lines."""


@functools.cache
def schema(message: MessageType) -> etree.XMLSchema:
    """The compiled XSD of `message` (compiled once per process)."""
    path = XSD_DIR / f"{message.name}.xsd"
    return etree.XMLSchema(etree.parse(str(path), safe_parser()))


def validate(source: str | os.PathLike[str] | IO[bytes],
             message: MessageType | str | None = None) -> MessageType:
    """Check `source` (a path or a binary stream) against the XSD of `message`
    (by default the one its root namespace names). Returns the message type.

    Raises `SchemaViolation` naming the first violations, or `MessageError`
    when the file is not well-formed or not a known message."""
    if isinstance(message, str):
        message = MESSAGE_TYPES[message]
    if message is None:
        with _open(source) as stream:
            message = message_type_of(stream)
    xsd = schema(message)
    with _open(source) as stream:
        events = etree.iterparse(stream, events=("end",), schema=xsd, resolve_entities=False,
                                 no_network=True, load_dtd=False, huge_tree=False)
        try:
            for _, element in events:
                # Free as we go; validation happens inside the parser.
                if element.getparent() is not None and element.getparent().getparent() is not None:
                    element.clear()
        except etree.XMLSyntaxError as exc:
            # Streaming validation reports no line numbers; the element names
            # (namespace dropped) say where.
            errors = ([_describe(e) for e in list(events.error_log)[:MAX_REPORTED_ERRORS]]
                      or [str(exc)])
            raise SchemaViolation(f"not a valid {message.name}: " + "; ".join(errors)) from None
    return message


def _describe(error: etree._LogEntry) -> str:
    text = _NAMESPACE.sub("", error.message)
    return f"line {error.line}: {text}" if error.line else text


def _open(source: str | os.PathLike | IO[bytes]):
    if isinstance(source, (str, os.PathLike)):
        return open(source, "rb")
    source.seek(0)
    return _Borrowed(source)


class _Borrowed:
    """A caller's stream used in a `with` without being closed."""

    def __init__(self, stream: IO[bytes]) -> None:
        self.stream = stream

    def __enter__(self) -> IO[bytes]:
        return self.stream

    def __exit__(self, *exc: object) -> None:
        self.stream.seek(0)
