"""Writing ISO 20022 documents incrementally with `lxml.etree.xmlfile`, so a
file of 50,000 transactions never exists as a tree in memory.

Small subtrees are given as nested tuples, `(name, content)` or
`(name, content, attributes)`, where content is a string, a list of such
tuples, or None (element left out: optional elements are simply None).
"""
from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from types import TracebackType
from typing import IO, Any, TypeAlias

from lxml import etree

from disbursement.iso20022.xml import MessageType

# A child is itself a Spec; it is typed `tuple[Any, ...]` because mypy joins the str and list
# contents of nested literals into `Sequence[...]` instead of reading them as Specs. Every
# written document is validated against its XSD by the tests, which checks the nesting.
Content: TypeAlias = str | Sequence[tuple[Any, ...]] | None
Spec: TypeAlias = tuple[str, Content] | tuple[str, Content, dict[str, str]]


def iso_datetime(moment: datetime) -> str:
    """ISODateTime with an explicit offset (naive datetimes are taken as UTC)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.isoformat(timespec="seconds")


class DocumentWriter:
    """One ISO 20022 document being written: `Document/<message root>` is open
    between `__enter__` and `__exit__`; `open` nests a container, `write` emits
    a small subtree."""

    def __init__(self, out: str | os.PathLike | IO[bytes], message: MessageType) -> None:
        self.message = message
        self._out = out
        self._stack = contextlib.ExitStack()
        self._file: etree._IncrementalFileWriter | None = None

    def __enter__(self) -> DocumentWriter:
        target = os.fspath(self._out) if isinstance(self._out, (str, os.PathLike)) else self._out
        self._file = self._stack.enter_context(etree.xmlfile(target, encoding="UTF-8"))
        self._file.write_declaration()
        self._stack.enter_context(self._file.element(self.message.tag("Document"),
                                                     nsmap={None: self.message.namespace}))
        self._stack.enter_context(self._file.element(self.message.tag(self.message.root)))
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self._stack.__exit__(exc_type, exc, traceback)

    @contextlib.contextmanager
    def open(self, name: str) -> Iterator[None]:
        assert self._file is not None, "DocumentWriter used outside `with`"
        with self._file.element(self.message.tag(name)):
            self._file.write("\n")
            yield

    def write(self, spec: Spec) -> None:
        assert self._file is not None, "DocumentWriter used outside `with`"
        self._emit(self._file, spec)
        self._file.write("\n")  # one unit per line: readable files, useful line numbers

    def _emit(self, out: etree._IncrementalFileWriter, spec: Spec) -> None:
        name, content = spec[0], spec[1]
        if content is None:
            return
        attributes = spec[2] if len(spec) > 2 else None
        with out.element(self.message.tag(name), attributes):
            if isinstance(content, str):
                out.write(content)
            else:
                for child in content:
                    self._emit(out, child)
