"""The tables, one module per area; importing this package puts every table in
`Base.metadata` (migrations and tests rely on it)."""
from __future__ import annotations

from disbursement.db.models.base import (
    LIVE_ATTEMPT_WHERE,
    NAMING,
    Base,
    BigId,
    JSONType,
    as_utc,
    ts_column,
    utcnow,
)
from disbursement.db.models.console import (
    ConsoleJob,
    HouseholdAccount,
    LoginThrottle,
    OfficerTotp,
)
from disbursement.db.models.core import (
    ApiToken,
    AuditEntry,
    AuditHead,
    Batch,
    BatchDecision,
    Cycle,
    Household,
    InboundMessage,
    LedgerLine,
    LedgerPosting,
    OutboxItem,
    PaymentInstruction,
    ReconItem,
    RegistryImport,
    RegistryImportError,
    Statement,
    Transfer,
    TransferEvent,
    User,
)
from disbursement.db.models.files import (
    ACCEPTED_WHERE,
    PartnerFile,
)
from disbursement.db.models.ledger import (
    Arrears,
    FundReturn,
    ReconException,
)
from disbursement.db.models.partners import (
    PartnerBreaker,
    PartnerNonce,
)
from disbursement.db.models.routing import (
    Notification,
    RouteExplanation,
    ServicePoint,
)

__all__ = [
    "ACCEPTED_WHERE",
    "LIVE_ATTEMPT_WHERE",
    "NAMING",
    "ApiToken",
    "Arrears",
    "AuditEntry",
    "AuditHead",
    "Base",
    "Batch",
    "BatchDecision",
    "BigId",
    "ConsoleJob",
    "Cycle",
    "FundReturn",
    "Household",
    "HouseholdAccount",
    "InboundMessage",
    "JSONType",
    "LedgerLine",
    "LedgerPosting",
    "LoginThrottle",
    "Notification",
    "OfficerTotp",
    "OutboxItem",
    "PartnerBreaker",
    "PartnerFile",
    "PartnerNonce",
    "PaymentInstruction",
    "ReconException",
    "ReconItem",
    "RegistryImport",
    "RegistryImportError",
    "RouteExplanation",
    "ServicePoint",
    "Statement",
    "Transfer",
    "TransferEvent",
    "User",
    "as_utc",
    "ts_column",
    "utcnow",
]
