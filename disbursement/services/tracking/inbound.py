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

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from marshmallow import Schema, ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from connectors import signing
from connectors.base import PushConnector
from disbursement.db.bulk import write_rows
from disbursement.db.models import InboundMessage, Transfer, utcnow
from disbursement.domain.errors import BadInput, NotFound
from disbursement.services.ports import Services
from disbursement.services.tracking import inbound_checks as checks
from disbursement.services.tracking.nonces import DatabaseNonces

LOOKUP_CHUNK = 5_000
Report = TypeVar("Report")


class NotJson(BadInput, ValueError):
    """Raised when a correctly signed message body is not JSON."""


class UnknownReferences(NotFound, LookupError):
    """Raised when references are unknown or belong to another partner; nothing
    in the message is applied."""

    def __init__(self, references: list[str]) -> None:
        shown = ", ".join(references[:20]) + (" ..." if len(references) > 20 else "")
        super().__init__(f"unknown reference(s) for this partner: {shown}")
        self.references = references


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
    """Applies a parsed message's items through `handle`, in one transaction."""
    with svc.uow() as session:
        transfers = _lookup(session, partner_code, {i["reference"] for i in items})
        missing = sorted({i["reference"] for i in items} - transfers.keys())
        if missing:
            raise UnknownReferences(missing)
        replayed = _replayed(session, partner_code, items)
        report = handle(session, partner_code, items, replayed, transfers)
        now = utcnow()
        fresh = dict.fromkeys(item["event_id"] for n, item in enumerate(items)
                              if item["event_id"] and n not in replayed)
        write_rows(session, InboundMessage.__table__, ["partner_code", "event_id", "at"],
                   [(partner_code, event_id, now) for event_id in fresh])
        session.commit()
    return report


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


def _replayed(session: Session, partner_code: str, items: list[dict]) -> set[int]:
    """Indexes of the items whose event id was seen before, or earlier in this
    message: each is a replay of a message already applied."""
    event_ids = [i["event_id"] for i in items if i["event_id"]]
    seen: set[str] = set()
    for i in range(0, len(event_ids), LOOKUP_CHUNK):
        seen.update(session.execute(select(InboundMessage.event_id).where(
            InboundMessage.partner_code == partner_code,
            InboundMessage.event_id.in_(event_ids[i:i + LOOKUP_CHUNK]))).scalars())
    replayed: set[int] = set()
    for index, item in enumerate(items):
        if item["event_id"] and item["event_id"] in seen:
            replayed.add(index)
        elif item["event_id"]:
            seen.add(item["event_id"])
    return replayed
