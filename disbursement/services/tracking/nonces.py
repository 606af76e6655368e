"""Replay protection for signed partner callbacks: each nonce is accepted once
per partner. The unique (partner_code, nonce) key decides, so two API processes
receiving the same replayed message cannot both accept it."""
from __future__ import annotations

from datetime import timedelta

from sqlalchemy import delete
from sqlalchemy.orm import Session

from connectors.signing import NONCE_TTL_SECONDS
from disbursement.db.models import utcnow
from disbursement.db.models.partners import PartnerNonce
from disbursement.db.upsert import insert_ignore_one


class DatabaseNonces:
    """`connectors.signing.NonceStore` on our database, in the caller's session
    (the caller commits: the nonce is then spent even if the message is refused
    later, and a partner re-signs every delivery with a fresh nonce)."""

    def __init__(self, session: Session, partner_code: str) -> None:
        self._session = session
        self._partner_code = partner_code

    def remember(self, nonce: str, timestamp: int) -> bool:
        now = utcnow()
        # Pruning here keeps the table at one window of traffic, with no job.
        self._session.execute(delete(PartnerNonce).where(
            PartnerNonce.seen_at < now - timedelta(seconds=NONCE_TTL_SECONDS)))
        return insert_ignore_one(self._session, PartnerNonce.__table__, {
            "partner_code": self._partner_code, "nonce": nonce, "signed_at": timestamp,
            "seen_at": now}, key=["partner_code", "nonce"])
