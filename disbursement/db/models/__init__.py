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
    "NAMING",
    "JSONType",
    "BigId",
    "LIVE_ATTEMPT_WHERE",
    "utcnow",
    "as_utc",
    "Base",
    "ts_column",
    "User",
    "ApiToken",
    "AuditEntry",
    "AuditHead",
    "RegistryImport",
    "RegistryImportError",
    "Household",
    "Cycle",
    "PaymentInstruction",
    "Batch",
    "BatchDecision",
    "Transfer",
    "TransferEvent",
    "InboundMessage",
    "OutboxItem",
    "LedgerPosting",
    "LedgerLine",
    "Statement",
    "ReconItem",
    "OfficerTotp",
    "LoginThrottle",
    "ConsoleJob",
    "HouseholdAccount",
    "ACCEPTED_WHERE",
    "PartnerFile",
    "ReconException",
    "Arrears",
    "FundReturn",
    "PartnerNonce",
    "PartnerBreaker",
    "ServicePoint",
    "RouteExplanation",
    "Notification",
]
