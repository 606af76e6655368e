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
    dashboard and metrics. Interim: no breaker yet, so every partner reads
    "closed" (callers default partners absent from the answer to "closed")."""
    return {}
