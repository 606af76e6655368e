"""Partner health as routing sees it: which partners' circuit breakers are open.

Interim: the circuit breaker (issue 3, failure handling) fills this in; until
it lands no partner is reported unhealthy."""
from __future__ import annotations

from sqlalchemy.orm import Session


def open_partners(session: Session) -> set[str]:
    """Codes of partners whose breaker is open: routing sends new batches elsewhere."""
    return set()


def breaker_states(session: Session) -> dict[str, str]:
    """Partner code -> breaker state ("closed", "open", "half_open") for the
    dashboard and metrics, from the shared breaker rows; a partner without a
    row is closed (callers default absent partners to "closed")."""
    from sqlalchemy import select

    from disbursement.db.models_partners import PartnerBreaker

    return dict(session.execute(select(PartnerBreaker.partner_code, PartnerBreaker.state)).all())
