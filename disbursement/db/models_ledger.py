"""Ledger accounts, reconciliation exceptions and their resolutions, expiry and returns (issue 4).

Tables of this area live here so that each area's schema reads on its own;
`disbursement.db.models` imports this module, so `Base.metadata` holds them."""
from __future__ import annotations

from disbursement.db.models import Base  # noqa: F401
