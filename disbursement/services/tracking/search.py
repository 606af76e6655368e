"""Find transfers by reference, household id or national ID (through its
keyed hash: national IDs are never stored or compared in clear)."""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from disbursement.crypto import PersonalDataVault, mask
from disbursement.db.models import Household, PaymentInstruction, Transfer

MAX_RESULTS = 100


@dataclass
class Found:
    reference: str
    household_id: str
    head_name: str
    program: str
    period: str
    partner: str
    amount_centimes: int
    currency: str
    status: str
    attempt: int


def search(session: Session, vault: PersonalDataVault, query: str) -> list[Found]:
    query = query.strip()
    if not query:
        return []
    rows = session.execute(
        select(Transfer.reference, Household.household_id, Household.head_name,
               PaymentInstruction.program, PaymentInstruction.period,
               Transfer.partner_code.label("partner"),
               Transfer.amount_centimes, Transfer.currency, Transfer.status, Transfer.attempt)
        .join(PaymentInstruction, PaymentInstruction.id == Transfer.instruction_id)
        .join(Household, Household.id == PaymentInstruction.household_pk)
        .where(or_(Transfer.reference == query.upper(), Household.household_id == query,
                   Household.cin_hash == vault.search_hash(query)))
        .order_by(PaymentInstruction.period.desc(), Transfer.id.desc()).limit(MAX_RESULTS)).all()
    return [Found(**r._asdict()) for r in rows]


def household_identity(session: Session, vault: PersonalDataVault, household_id: str,
                       clear: bool) -> dict[str, str]:
    """A household's name and contact details, masked unless `clear`."""
    row = session.execute(select(Household.head_name, Household.pii, Household.region_code,
                                 Household.province_code)
                          .where(Household.household_id == household_id)).first()
    if row is None:
        return {}
    pii = vault.open(row.pii)
    show = (lambda v: v or "") if clear else mask
    return {"head_name": row.head_name, "region": row.region_code, "province": row.province_code,
            "national_id": show(pii.get("cin")), "phone": show(pii.get("phone")),
            "account": show(pii.get("account") or pii.get("wallet_phone"))}
