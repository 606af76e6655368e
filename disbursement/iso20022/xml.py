"""Reading ISO 20022 XML safely and in bounded memory.

Every ISO 20022 file we read comes from outside (a bank, a partner's SFTP
folder), so one parser setup serves all readers: entities unresolved, no
network, no DTD loading, no huge trees, and any DOCTYPE refused outright (no
ISO 20022 message carries one; a file that does is an attack or a mistake).

Files can hold a million entries, so nothing builds the whole tree: `walk`
runs `lxml.etree.iterparse` and hands the caller one small subtree at a time
(a "unit": GrpHdr, one Ntry, one TxInfAndSts...), then frees it. Elements the
caller did not ask for are freed as soon as they end.
"""
from __future__ import annotations

import functools
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime
from typing import IO

from lxml import etree

from disbursement.domain import money

NAMESPACE_PREFIX = "urn:iso:std:iso:20022:tech:xsd:"
# The ISO 20022 lexical form of an amount: unsigned, ASCII digits, up to five decimals.
_AMOUNT = re.compile(r"[0-9]{1,16}(?:\.[0-9]{1,5})?", re.ASCII)
_CURRENCY = re.compile(r"[A-Z]{3}", re.ASCII)
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", re.ASCII)
QUOTE_MAX_CHARS = 40


class MessageError(ValueError):
    """Raised when an ISO 20022 file is refused: not well-formed or truncated,
    a DOCTYPE or entity declaration, another message type or version than the
    one expected, or a missing or malformed element. The message starts with
    where: the element path (`Stmt[1]/Ntry[3]/Amt`) or the line."""


@dataclass(frozen=True, slots=True)
class MessageType:
    """One ISO 20022 message definition at one version."""
    name: str       # "camt.053.001.08"
    root: str       # the element under Document: "BkToCstmrStmt"

    @property
    def namespace(self) -> str:
        return NAMESPACE_PREFIX + self.name

    def tag(self, local: str) -> str:
        return f"{{{self.namespace}}}{local}"


PAIN_001 = MessageType("pain.001.001.10", "CstmrCdtTrfInitn")
PAIN_002 = MessageType("pain.002.001.11", "CstmrPmtStsRpt")
CAMT_053 = MessageType("camt.053.001.08", "BkToCstmrStmt")
CAMT_054 = MessageType("camt.054.001.08", "BkToCstmrDbtCdtNtfctn")
MESSAGE_TYPES = {m.name: m for m in (PAIN_001, PAIN_002, CAMT_053, CAMT_054)}


def quote(text: str) -> str:
    """A value as it appears in error messages, cut short."""
    if len(text) > QUOTE_MAX_CHARS:
        text = text[:QUOTE_MAX_CHARS] + "..."
    return '"' + text.replace('"', '\\"') + '"'


def _safe_iterparse(stream: IO[bytes], **options) -> etree.iterparse:
    return etree.iterparse(stream, resolve_entities=False, no_network=True, load_dtd=False,
                           huge_tree=False, remove_comments=True, remove_pis=True, **options)


def safe_parser() -> etree.XMLParser:
    """A parser for small trusted-shape documents (XSDs, tests): same rules."""
    return etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False,
                           huge_tree=False, remove_comments=True, remove_pis=True)


@functools.lru_cache(maxsize=1024)
def _clark(namespace: str, path: str) -> str:
    """"Amt/InstdAmt" -> "{ns}Amt/{ns}InstdAmt", the form lxml's find takes."""
    return "/".join(f"{{{namespace}}}{part}" for part in path.split("/"))


class Node:
    """An element with the path that names it in errors. Accessors raise
    `MessageError` naming the element when it is missing or malformed.
    Locators are only built when needed (an error, or `child`): a statement
    reads millions of fields."""

    __slots__ = ("_ns", "element", "where")

    def __init__(self, element: etree._Element, where: str, namespace: str) -> None:
        self.element, self.where, self._ns = element, where, namespace

    def _at(self, path: str) -> str:
        return f"{self.where}/{path}" if self.where else path

    def _find(self, path: str) -> etree._Element | None:
        return self.element.find(_clark(self._ns, path))

    def child(self, path: str) -> Node | None:
        found = self._find(path)
        return None if found is None else Node(found, self._at(path), self._ns)

    def require(self, path: str) -> Node:
        found = self.child(path)
        if found is None:
            raise MessageError(f"{self._at(path)}: missing")
        return found

    def children(self, path: str) -> Iterator[Node]:
        where = self._at(path)
        for index, found in enumerate(self.element.iterfind(_clark(self._ns, path)), start=1):
            yield Node(found, f"{where}[{index}]", self._ns)

    def text(self, path: str | None = None, *, required: bool = True) -> str | None:
        element = self.element if path is None else self._find(path)
        if element is None:
            if required:
                raise MessageError(f"{self._at(path or '')}: missing")
            return None
        if len(element):
            # An entity reference left unexpanded shows up as a child node.
            raise MessageError(f"{self._at(path) if path else self.where}: expected text, "
                               f"found markup or an entity reference")
        value = (element.text or "").strip()
        if not value and required:
            raise MessageError(f"{self._at(path) if path else self.where}: empty")
        return value or None

    def amount(self, path: str) -> tuple[int, str]:
        """(centimes, currency) of an amount element with a `Ccy` attribute."""
        element = self._find(path)
        if element is None:
            raise MessageError(f"{self._at(path)}: missing")
        centimes = parse_centimes((element.text or "").strip(), self._at(path))
        currency = element.get("Ccy")
        if currency is None or _CURRENCY.fullmatch(currency) is None:
            problem = ("missing" if currency is None
                       else f"{quote(currency)} is not an ISO 4217 currency code")
            raise MessageError(f"{self._at(path)}/@Ccy: {problem}")
        return centimes, currency

    def date(self, path: str, *, required: bool = True) -> date | None:
        """A date from `path`, which holds either `Dt` or `DtTm` (or is an ISODate itself)."""
        element = self._find(path)
        if element is None:
            if required:
                raise MessageError(f"{self._at(path)}: missing")
            return None
        for inner_path in ("Dt", "DtTm"):
            inner = element.find(_clark(self._ns, inner_path))
            if inner is not None:
                return parse_date((inner.text or "").strip(), f"{self._at(path)}/{inner_path}")
        return parse_date((element.text or "").strip(), self._at(path))


def parse_centimes(text: str, where: str) -> int:
    """Integer centimes from an ISO amount ("1234.5" -> 123450) without floats:
    the ISO form is checked here, the amount is read by `domain.money`."""
    if _AMOUNT.fullmatch(text) is None:
        raise MessageError(f"{where}: {quote(text)} is not an amount")
    try:
        return money.parse_units(text)
    except money.TooManyDecimals:
        raise MessageError(f"{where}: {quote(text)} has more than 2 decimals") from None


def format_centimes(centimes: int) -> str:
    """"1234.50" from 123450: the ISO decimal form, exact."""
    if centimes < 0:
        raise ValueError(f"amount {centimes} is negative; ISO 20022 amounts are unsigned")
    return money.format_units(centimes)


def parse_date(text: str, where: str) -> date:
    """An ISODate, or the date part of an ISODateTime."""
    try:
        if _DATE.fullmatch(text):
            return date.fromisoformat(text)
        return datetime.fromisoformat(text).date()
    except ValueError:
        raise MessageError(f"{where}: {quote(text)} is not a date") from None


@dataclass(frozen=True, slots=True)
class Event:
    """`walk` output: `start` of a container, or `end` of a container or unit."""
    kind: str        # "start" | "end"
    path: str        # "Stmt/Ntry" (local names under the message root)
    node: Node       # locator "Stmt[1]/Ntry[3]"


def walk(stream: IO[bytes], message: MessageType, *, units: frozenset[str],
         containers: frozenset[str] = frozenset()) -> Iterator[Event]:
    """Stream `message` from `stream`. Yields the start and end of each
    container path and the end of each unit path (with its whole, small
    subtree); everything else is skipped. After each `end` the element and
    its earlier siblings are freed, so memory holds about one unit plus the
    containers' open tags.

    The parser reports only elements named like a unit or container (the C
    parser skips the rest without a Python call per element: a million-entry
    statement is read several times faster).

    Raises `MessageError` when the file is not well-formed, carries a DOCTYPE,
    or is another message type or version than `message`."""
    ns = message.namespace
    prefix = f"{{{ns}}}"
    names = sorted({path.rsplit("/", 1)[-1] for path in units | containers})
    tags = ["{*}Document", "{*}" + message.root, *(prefix + name for name in names)]
    # path -> (locator, child counts)
    open_containers: dict[str, tuple[str, dict[str, int]]] = {"": ("", {})}
    unit_locator = ""
    seen_root = False
    events = _safe_iterparse(stream, events=("start", "end"), tag=tags)
    try:
        for action, element in events:
            parent = element.getparent()
            if parent is None or parent.getparent() is None:
                if action == "start":
                    _check_top(element, 1 if parent is None else 2, message)
                    seen_root = seen_root or parent is not None
                continue
            path = _path(element, prefix)
            if path in units:
                if action == "start":
                    unit_locator = _locate(open_containers, path)
                    continue
                yield Event("end", path, Node(element, unit_locator, ns))
            elif path in containers:
                if action == "start":
                    locator = _locate(open_containers, path)
                    open_containers[path] = (locator, {})
                    yield Event("start", path, Node(element, locator, ns))
                    continue
                yield Event("end", path, Node(element, open_containers.pop(path)[0], ns))
            else:
                continue
            # Free what has been read: the element itself and the siblings
            # before it (read units or elements nobody asked for).
            element.clear()
            while element.getprevious() is not None:
                del parent[0]
    except etree.XMLSyntaxError as exc:
        line = exc.position[0] if exc.position else "?"
        raise MessageError(f"line {line}: not well-formed or truncated XML: {exc.msg}") from None
    if not seen_root:
        # Nothing was reported: the document element or its child is not what
        # `message` expects. Say which.
        root = events.root
        _check_top(root, 1, message)
        first = etree.QName(root[0].tag).localname if len(root) else "(nothing)"
        raise MessageError(f"Document/{first}: expected {message.root} for {message.name}")


def _path(element: etree._Element, prefix: str) -> str:
    """Local names from below the message root down to `element`."""
    names = []
    parent = element.getparent()
    while parent is not None and parent.getparent() is not None:
        tag = element.tag
        names.append(tag[len(prefix):] if tag.startswith(prefix) else tag)
        element, parent = parent, parent.getparent()
    return "/".join(reversed(names))


def _locate(open_containers: dict[str, tuple[str, dict[str, int]]], path: str) -> str:
    """The indexed locator of the next element at `path` ("Stmt[1]/Ntry[3]")."""
    parent_path, _, name = path.rpartition("/")
    parent_locator, counts = open_containers.get(parent_path) or (parent_path, {})
    counts[name] = index = counts.get(name, 0) + 1
    return f"{parent_locator}/{name}[{index}]" if parent_locator else f"{name}[{index}]"


def _check_top(element: etree._Element, depth: int, message: MessageType) -> None:
    if depth == 1:
        docinfo = element.getroottree().docinfo
        if docinfo.internalDTD is not None or docinfo.externalDTD is not None or docinfo.doctype:
            raise MessageError("line 1: DOCTYPE and entity declarations are refused")
        qname = etree.QName(element.tag)
        if qname.localname != "Document":
            raise MessageError(f"root element is {qname.localname!r}, expected 'Document'")
        if qname.namespace != message.namespace:
            raise MessageError(f"Document: namespace {qname.namespace!r} is "
                               f"{_describe(qname.namespace)}, "
                               f"expected {message.name} ({message.namespace})")
        return
    qname = etree.QName(element.tag)
    if qname.namespace != message.namespace or qname.localname != message.root:
        raise MessageError(f"Document/{qname.localname}: expected {message.root} "
                           f"for {message.name}")


def _describe(namespace: str | None) -> str:
    if namespace and namespace.startswith(NAMESPACE_PREFIX):
        return f"message {namespace[len(NAMESPACE_PREFIX):]}"
    return "not an ISO 20022 namespace"


def message_type_of(stream: IO[bytes]) -> MessageType:
    """Which known message a file holds, from its root namespace (reads only
    the first element). Raises `MessageError` when it is none we know."""
    events = _safe_iterparse(stream, events=("start",))
    try:
        for _, element in events:
            docinfo = element.getroottree().docinfo
            if docinfo.internalDTD is not None or docinfo.doctype:
                raise MessageError("line 1: DOCTYPE and entity declarations are refused")
            namespace = etree.QName(element.tag).namespace or ""
            name = (namespace[len(NAMESPACE_PREFIX):] if namespace.startswith(NAMESPACE_PREFIX)
                    else "")
            if name not in MESSAGE_TYPES:
                raise MessageError(f"Document: namespace {namespace!r} is {_describe(namespace)}; "
                                   f"known: {', '.join(sorted(MESSAGE_TYPES))}")
            return MESSAGE_TYPES[name]
    except etree.XMLSyntaxError as exc:
        raise MessageError(f"line {exc.position[0] if exc.position else '?'}: not well-formed XML: "
                           f"{exc.msg}") from None
    raise MessageError("empty file")
