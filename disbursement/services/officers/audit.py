"""The audit trail: append-only and hash-chained, one row per decision."""
from __future__ import annotations

import hashlib
import json
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from disbursement.db.models import AuditEntry, AuditHead, as_utc, utcnow

GENESIS_HASH = "0" * 64


class AuditChainBroken(Exception):
    """Raised by `verify` when a row's hash does not cover its content and its
    predecessor: the trail was edited."""


def _entry_hash(prev_hash: str, at: str, actor: str, action: str, object_type: str,
                object_id: str, detail: dict[str, Any]) -> str:
    payload = json.dumps([prev_hash, at, actor, action, object_type, object_id, detail],
                         sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(payload.encode()).hexdigest()


def record(session: Session, actor: str, action: str, object_type: str, object_id: object,
           detail: dict[str, Any] | None = None) -> AuditEntry:
    detail = detail or {}
    # Locking the head row serialises appenders so the chain never forks.
    head = session.execute(select(AuditHead).where(AuditHead.id == 1)
                           .with_for_update()).scalar_one()
    at = utcnow()
    digest = _entry_hash(head.last_hash, at.isoformat(), actor, action, object_type,
                         str(object_id), detail)
    entry = AuditEntry(at=at, actor=actor, action=action, object_type=object_type,
                       object_id=str(object_id), detail=detail, prev_hash=head.last_hash,
                       hash=digest)
    session.add(entry)
    session.execute(update(AuditHead).where(AuditHead.id == 1)
                    .values(last_hash=digest, entries=AuditHead.entries + 1))
    return entry


def verify(session: Session) -> int:
    """Walks the chain; returns the number of entries or raises AuditChainBroken."""
    prev = GENESIS_HASH
    count = 0
    for entry in session.execute(select(AuditEntry).order_by(AuditEntry.id)).scalars():
        expected = _entry_hash(prev, as_utc(entry.at).isoformat(), entry.actor, entry.action,
                               entry.object_type, entry.object_id, entry.detail)
        if entry.prev_hash != prev or entry.hash != expected:
            raise AuditChainBroken(f"audit entry {entry.id} does not match the chain")
        prev = entry.hash
        count += 1
    return count

