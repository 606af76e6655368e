"""Registry import: stream, validate every row, upsert households in chunks.

One pass over the rows. A file with errors imports nothing unless the officer
asked for the valid rows only; its errors are kept for the downloadable
report either way. The same file (by SHA-256) imported twice changes nothing.
"""
from __future__ import annotations

import csv
import tempfile
from dataclasses import dataclass
from typing import BinaryIO

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from disbursement.db.models import Household, RegistryImport, RegistryImportError, utcnow
from disbursement.db.models.console import HouseholdAccount
from disbursement.db.upsert import insert_ignore, upsert
from disbursement.domain.states import Role
from disbursement.services.officers import audit
from disbursement.services.officers.users import Actor
from disbursement.services.ports import Services
from disbursement.services.registry import reader, schema
from disbursement.streams import sha256_and_rewind

ROWS_PER_FLUSH = 5_000


@dataclass(frozen=True)
class ImportResult:
    import_id: int
    status: str             # imported | partial | rejected | duplicate
    rows_total: int
    rows_valid: int
    rows_invalid: int
    rows_imported: int
    checksum: str
    duplicate_of: int | None = None


def _existing(session: Session, checksum: str) -> RegistryImport | None:
    """The import that took effect for this file, if any (rejected ones did not)."""
    return session.execute(select(RegistryImport).where(
        RegistryImport.checksum == checksum,
        RegistryImport.status.in_(["imported", "partial"]))).scalar_one_or_none()


def import_households(svc: Services, stream: BinaryIO, filename: str, actor: Actor,
                      valid_rows_only: bool = False, progress=None) -> ImportResult:
    actor.require(Role.MAKER)
    fmt = reader.detect_format(filename)
    checksum = sha256_and_rewind(stream)
    regions = svc.configuration.regions
    with svc.uow() as session:
        previous = _existing(session, checksum)
        if previous is not None:
            return _duplicate(previous)
        record = RegistryImport(filename=filename[-255:], checksum=checksum, file_format=fmt,
                                status="running", imported_by=actor.username)
        session.add(record)
        session.flush()
        counts = {"total": 0, "valid": 0, "invalid": 0}
        with tempfile.TemporaryFile("w+", newline="", encoding="utf-8") as errors_file:
            errors = csv.writer(errors_file)
            pending: list[dict] = []
            for outcome in schema.validate_rows(reader.iter_raw_rows(stream, fmt), regions):
                counts["total"] += 1
                if progress:
                    progress(1)
                if isinstance(outcome, schema.RowError):
                    counts["invalid"] += 1
                    for field, message in outcome.errors:
                        errors.writerow([outcome.line, outcome.household_id or "", field, message])
                    continue
                counts["valid"] += 1
                pending.append(_household_row(svc, outcome.record, record.id))
                if len(pending) >= ROWS_PER_FLUSH:
                    _flush(session, pending)
            rejected = counts["invalid"] > 0 and not valid_rows_only
            if rejected:
                # Nothing from a file with errors: drop the households written so
                # far, keep the import record and its error report.
                session.rollback()
                record = RegistryImport(filename=filename[-255:], checksum=checksum,
                                        file_format=fmt, status="rejected",
                                        imported_by=actor.username)
                session.add(record)
                session.flush()
            else:
                _flush(session, pending)
            errors_file.seek(0)
            _store_errors(session, record.id, errors_file)
        record.status = "rejected" if rejected else ("partial" if counts["invalid"] else "imported")
        record.rows_total, record.rows_valid = counts["total"], counts["valid"]
        record.rows_invalid = counts["invalid"]
        record.rows_imported = 0 if rejected else counts["valid"]
        audit.record(session, actor.username, "registry.import", "registry_import", record.id,
                     {"filename": filename, "checksum": checksum, "status": record.status,
                      "rows_total": counts["total"], "rows_invalid": counts["invalid"]})
        session.commit()
        return ImportResult(record.id, record.status, record.rows_total, record.rows_valid,
                            record.rows_invalid, record.rows_imported, checksum)


def _duplicate(previous: RegistryImport) -> ImportResult:
    return ImportResult(previous.id, "duplicate", previous.rows_total, previous.rows_valid,
                        previous.rows_invalid, 0, previous.checksum, duplicate_of=previous.id)


def _household_row(svc: Services, rec: schema.HouseholdRecord, import_id: int) -> dict:
    payout = rec.account or rec.wallet_phone
    return {
        "household_id": rec.household_id,
        "cin_hash": svc.vault.search_hash(rec.cin),
        # Keyed hashes for the batch review's "same phone / account" flags;
        # the payout account is the bank account or else the wallet number.
        "phone_hash": svc.vault.search_hash(rec.phone) if rec.phone else None,
        "account_hash": svc.vault.search_hash(payout) if payout else None,
        "pii": svc.vault.seal({"cin": rec.cin, "phone": rec.phone, "account": rec.account,
                               "wallet_phone": rec.wallet_phone}),
        "head_name": rec.head_name, "region_code": rec.region_code,
        "province_code": rec.province_code, "commune_code": rec.commune_code,
        "score_micro": rec.score_micro, "children_0_5": rec.children_0_5,
        "children_schooled_6_20": rec.children_schooled_6_20,
        "children_unschooled_6_20": rec.children_unschooled_6_20,
        "disabled_children": rec.disabled_children, "orphan": rec.orphan,
        "flat_rate": rec.flat_rate, "channel": rec.channel, "partner_code": rec.partner_code,
        "wallet_tier": rec.wallet_tier,
        "import_id": import_id, "updated_at": utcnow(), "suspended": False,
    }


def _flush(session: Session, pending: list[dict]) -> None:
    if pending:
        upsert(session, Household.__table__, pending, key=["household_id"],
               keep=["suspended"])
        accounts = [{"household_id": r["household_id"], "account_hash": r["account_hash"],
                     "first_seen_at": r["updated_at"]} for r in pending if r["account_hash"]]
        if accounts:
            insert_ignore(session, HouseholdAccount.__table__, accounts,
                          key=["household_id", "account_hash"])
        pending.clear()


def _store_errors(session: Session, import_id: int, errors_file) -> None:
    batch: list[dict] = []
    for line, household_id, field, message in csv.reader(errors_file):
        batch.append({"import_id": import_id, "line": int(line),
                      "household_id": household_id or None, "field": field, "message": message})
        if len(batch) >= ROWS_PER_FLUSH:
            session.execute(insert(RegistryImportError), batch)
            batch.clear()
    if batch:
        session.execute(insert(RegistryImportError), batch)


def error_report_rows(session: Session, import_id: int):
    yield schema.ERROR_REPORT_HEADER
    stmt = (select(RegistryImportError.line, RegistryImportError.household_id,
                   RegistryImportError.field, RegistryImportError.message)
            .where(RegistryImportError.import_id == import_id)
            .order_by(RegistryImportError.line, RegistryImportError.id))
    for row in session.execute(stmt.execution_options(yield_per=ROWS_PER_FLUSH)):
        yield [row.line, row.household_id or "", row.field, row.message]
