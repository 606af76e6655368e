"""Read-only views of registry imports for the API: the web never queries
tables itself, it calls these inside its unit of work."""
from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from disbursement.db.models import RegistryImport

IMPORT_FIELDS = ("id", "filename", "checksum", "file_format", "status", "rows_total",
                 "rows_valid", "rows_invalid", "rows_imported", "imported_by")


def import_view(session: Session, import_id: int) -> dict | None:
    """One import's figures as JSON-ready values, or None when there is no such import."""
    record = session.get(RegistryImport, import_id)
    if record is None:
        return None
    return ({field: getattr(record, field) for field in IMPORT_FIELDS}
            | {"created_at": record.created_at.isoformat()})


def import_exists(session: Session, import_id: int) -> bool:
    return session.execute(select(RegistryImport.id)
                           .where(RegistryImport.id == import_id)).first() is not None
