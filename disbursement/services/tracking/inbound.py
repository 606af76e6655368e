"""The one path every signed partner message takes: confirmations and returns.

First the message is verified over its raw bytes (signature, then the nonce,
spent in its own committed transaction so a replay is refused even when the
message is refused later), and only then parsed (STYLE principle 7). Then, in
one transaction: every reference must be the partner's (one unknown or foreign
reference refuses the whole message), event ids seen before (or twice in the
message) are replays, an outcome handler decides each item, and the fresh event
ids are recorded. Before and around that, `inbound_checks` refuses what no
protocol sends (another media type, deep nesting, control characters).
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from marshmallow import Schema, ValidationError
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from connectors import signing
from connectors.base import PushConnector
from disbursement.db.models import InboundMessage, Transfer, utcnow
from disbursement.db.upsert import insert_ignore_returning
from disbursement.domain.errors import BadInput, Conflict, NotFound
from disbursement.services.ports import Services
from disbursement.services.tracking import inbound_checks as checks
from disbursement.services.tracking.nonces import DatabaseNonces

LOOKUP_CHUNK = 5_000


class InboundReport(Protocol):
    # indexes of the items whose event id stays unspent (a stale item: the
    # partner may send it again and be heard)
    unspent: set[int]


Report = TypeVar("Report", bound=InboundReport)


class NotJson(BadInput, ValueError):
    """Raised when a correctly signed message body is not JSON."""


class UnknownReferences(NotFound, LookupError):
    """Raised when references are unknown or belong to another partner; nothing
    in the message is applied."""

    def __init__(self, references: list[str]) -> None:
        shown = ", ".join(references[:20]) + (" ..." if len(references) > 20 else "")
        super().__init__(f"unknown reference(s) for this partner: {shown}")
        self.references = references


class EventConflict(Conflict):
    """Raised when an event id was used before (or in this message) with
    another payload: nothing in the message is applied."""

    def __init__(self, conflicts: list[tuple[str, str | None]]) -> None:
        shown = ", ".join(f"{event_id} (first used for {reference or 'another message'})"
                          for event_id, reference in conflicts[:20])
        more = " ..." if len(conflicts) > 20 else ""
        super().__init__(f"event id(s) already used with another payload: {shown}{more}")
        self.event_ids = [event_id for event_id, _ in conflicts]


@dataclass(frozen=True)
class SignedRequest:
    """The parts of an HTTP request the signature covers."""
    method: str
    path: str
    query_string: bytes | str | None
    headers: Mapping[str, str]
    body: bytes

    @property
    def target(self) -> str:
        return signing.request_target(self.path, self.query_string)


@dataclass(frozen=True)
class TransferRow:
    """What an outcome handler knows of a referenced transfer before it acts."""
    id: int
    reference: str
    status: str
    amount_centimes: int
    currency: str


# (session, partner code, items, indexes of replayed items, transfers by reference) -> report
OutcomeHandler = Callable[[Session, str, list[dict], set[int], dict[str, TransferRow]], Report]


def load_items(payload: Any, schema: Schema, refuse: Callable[..., Exception],
               noun: str) -> list[dict]:
    """A message's items, validated by `schema` (`many=True`): one object or a
    non-empty list of them; anything else raises `refuse(message[, details])`."""
    items = payload if isinstance(payload, list) else [payload]
    if not items or not all(isinstance(i, dict) for i in items):
        raise refuse(f"body must be a {noun} object or a non-empty list of them")
    try:
        loaded: list[dict] = schema.load(items)
    except ValidationError as exc:
        raise refuse(f"invalid {noun}", exc.messages) from None
    return loaded


def verified_payload(svc: Services, partner_code: str, request: SignedRequest, *,
                     through_connector: bool = False) -> Any:
    """The message's JSON once its media type, signature and nonce are
    accepted, checked by `inbound_checks` (nesting, characters). With
    `through_connector`, a partner whose push protocol is not our REST one is
    verified and read by its connector, whose updates take the confirmations'
    shape. Raises `signing.SignatureError` (a replay is `ReplayError`), NotJson
    or an `inbound_checks` error."""
    partner = svc.partner(partner_code)
    if not (through_connector and partner.protocol != "rest"):
        checks.require_media_type(request.headers)
    with svc.uow() as session:
        nonces = DatabaseNonces(session, partner.code)
        if through_connector and partner.protocol != "rest":
            updates = _connector_updates(svc, partner.code, request, nonces)
        else:
            signing.verify(svc.partner_keys(partner.code), request.headers, request.body,
                           method=request.method, target=request.target, nonces=nonces)
            updates = None
        session.commit()
    if updates is not None:
        checks.check_strings(updates)
        return updates
    checks.check_nesting(request.body)
    try:
        payload = json.loads(request.body)
    except ValueError:
        raise NotJson("body is not JSON") from None
    checks.check_strings(payload)
    return payload


def _connector_updates(svc: Services, partner_code: str, request: SignedRequest,
                       nonces: DatabaseNonces) -> list[dict]:
    connector = svc.connector(partner_code)
    if not isinstance(connector, PushConnector):
        raise BadInput(f"partner {partner_code} sends no callbacks")
    try:
        checks.require_media_type(request.headers, connector.callback_media_type)
        # The connector verifies, then parses in one call: the nesting is
        # bounded before its parser can recurse.
        checks.check_nesting(request.body)
        updates = connector.receive_callback(request.method, request.target, request.headers,
                                             request.body, nonces)
    finally:
        connector.close()
    return [{**u.as_confirmation(),
             "occurred_at": u.occurred_at.isoformat() if u.occurred_at else None}
            for u in updates]


def receive(svc: Services, partner_code: str, items: list[dict],
            handle: OutcomeHandler[Report]) -> Report:
    """Applies a parsed message's items through `handle`, in one transaction.

    The message's event ids are claimed first (INSERT ... ON CONFLICT DO
    NOTHING, in event-id order): a concurrent request carrying the same event
    id waits for this one to end, then finds it spent and is a duplicate."""
    with svc.uow() as session:
        transfers = _lookup(session, partner_code, {i["reference"] for i in items})
        missing = sorted({i["reference"] for i in items} - transfers.keys())
        if missing:
            raise UnknownReferences(missing)
        replayed, claimed = _claim(session, partner_code, items)
        report = handle(session, partner_code, items, replayed, transfers)
        unspent = {items[n]["event_id"] for n in report.unspent
                   if items[n]["event_id"]} & claimed
        if unspent:
            session.execute(delete(InboundMessage).where(
                InboundMessage.partner_code == partner_code,
                InboundMessage.event_id.in_(sorted(unspent))))
        session.commit()
    return report


def payload_hash(item: Mapping[str, Any]) -> str:
    """What an event id stands for: every field of the item but the id itself."""
    canonical = json.dumps({k: v for k, v in item.items() if k != "event_id"},
                           sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def _claim(session: Session, partner_code: str, items: list[dict]) -> tuple[set[int], set[str]]:
    """Spends the message's event ids; returns the indexes of the items that
    replay an event already spent (same payload), and the event ids claimed
    now. Raises EventConflict when an event id comes with another payload."""
    first: dict[str, tuple[str, str]] = {}     # event id -> (reference, payload hash)
    replayed: set[int] = set()
    conflicts: list[tuple[str, str | None]] = []
    for n, item in enumerate(items):
        event_id = item["event_id"]
        if not event_id:
            continue
        identity = (item["reference"], payload_hash(item))
        if event_id not in first:
            first[event_id] = identity
        elif first[event_id] == identity:
            replayed.add(n)
        else:
            conflicts.append((event_id, first[event_id][0]))
    if conflicts:
        raise EventConflict(conflicts)
    now = utcnow()
    claimed = insert_ignore_returning(
        session, InboundMessage.__table__,
        [{"partner_code": partner_code, "event_id": event_id, "reference": reference,
          "payload_hash": digest, "at": now}
         for event_id, (reference, digest) in sorted(first.items())],
        key=["partner_code", "event_id"], returning="event_id")
    spent = sorted(first.keys() - claimed)
    known: dict[str, tuple[str | None, str | None]] = {}
    for i in range(0, len(spent), LOOKUP_CHUNK):
        known.update((row.event_id, (row.reference, row.payload_hash))
                     for row in session.execute(
                         select(InboundMessage.event_id, InboundMessage.reference,
                                InboundMessage.payload_hash)
                         .where(InboundMessage.partner_code == partner_code,
                                InboundMessage.event_id.in_(spent[i:i + LOOKUP_CHUNK]))))
    for event_id in spent:
        reference, digest = known[event_id]
        # Rows written before payloads were hashed carry no hash: same reference, same event.
        same = digest == first[event_id][1] if digest else reference in (None, first[event_id][0])
        if not same:
            conflicts.append((event_id, reference))
    if conflicts:
        raise EventConflict(conflicts)
    replayed.update(n for n, item in enumerate(items) if item["event_id"] in known)
    return replayed, claimed


def _lookup(session: Session, partner_code: str,
            references: set[str]) -> dict[str, TransferRow]:
    refs = sorted(references)
    found: dict[str, TransferRow] = {}
    for i in range(0, len(refs), LOOKUP_CHUNK):
        rows = session.execute(
            select(Transfer.id, Transfer.reference, Transfer.status, Transfer.amount_centimes,
                   Transfer.currency)
            .where(Transfer.reference.in_(refs[i:i + LOOKUP_CHUNK]),
                   Transfer.partner_code == partner_code))
        found.update({row.reference: TransferRow(*row) for row in rows})
    return found
