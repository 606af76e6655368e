"""Collection of the files partners leave on their SFTP servers.

For each new file in a file partner's outbox (status files, settlement files,
pain.002 and camt.054 for banks): verify it (the connector does), refuse it if
the same content was already accepted under another name (delivered twice) or
if it names a reference that is not this partner's, otherwise apply its
updates through `confirmations.apply` (the one place partner statuses change
transfers) and record the file. A refused file changes nothing but its own
`partner_files` row, which says why and at which line.

Idempotent: a file name is collected once, and each update's event id is the
file's digest plus its line, so a crash between applying and recording only
makes the next run re-apply duplicates, which change nothing.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from connectors.base import PartnerStatus
from connectors.factory import FILE_PROTOCOLS
from connectors.file_exchange import FileConnector
from disbursement.db.models import Transfer
from disbursement.db.models.files import PartnerFile
from disbursement.services.ports import Services
from disbursement.services.tracking import confirmations

# What `confirmations.apply` acts on (`received` only repeats what the upload told us).
APPLIED_STATUSES = frozenset({PartnerStatus.AVAILABLE, PartnerStatus.PAID, PartnerStatus.REJECTED,
                              PartnerStatus.EXPIRED, PartnerStatus.CANCELLED})
LOOKUP_CHUNK = 5_000


class NotAFilePartner(ValueError):
    """Raised when collection is asked of a partner whose protocol moves no files."""


@dataclass
class FileOutcome:
    name: str
    kind: str
    status: str                  # accepted | rejected
    error: str | None = None
    lines: int = 0
    applied: int = 0
    duplicates: int = 0
    stale: int = 0


@dataclass
class CollectionReport:
    partner: str
    files: list[FileOutcome] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {"partner": self.partner, "files": [asdict(f) for f in self.files],
                "accepted": sum(f.status == "accepted" for f in self.files),
                "rejected": sum(f.status == "rejected" for f in self.files),
                "applied": sum(f.applied for f in self.files)}


def file_partners(svc: Services) -> list[str]:
    return sorted(code for code, p in svc.partners.items() if p.protocol in FILE_PROTOCOLS)


def collect(svc: Services, partner_code: str) -> CollectionReport:
    """Raises NotAFilePartner for a partner without files; connector errors
    (RetryableError, TerminalError) propagate so a job can retry."""
    if svc.partner(partner_code).protocol not in FILE_PROTOCOLS:
        raise NotAFilePartner(f"partner {partner_code} exchanges no files "
                              f"(protocol {svc.partner(partner_code).protocol})")
    with svc.uow() as session:
        known = set(session.execute(select(PartnerFile.name).where(
            PartnerFile.partner_code == partner_code)).scalars())
    connector = svc.connector(partner_code)
    if not isinstance(connector, FileConnector):
        raise NotAFilePartner(f"partner {partner_code}'s connector collects no files")
    try:
        files = connector.fetch_files(known)
    finally:
        connector.close()
    report = CollectionReport(partner_code)
    for found in files:
        report.files.append(_take(svc, partner_code, found))
    return report


def _take(svc: Services, partner_code: str, found) -> FileOutcome:
    outcome = FileOutcome(found.name, found.kind, "accepted", found.error, found.lines)
    if found.error is None:
        outcome.error = _refusal(svc, partner_code, found)
    if outcome.error is not None:
        outcome.status = "rejected"
    elif found.kind == "file_rejection":
        outcome.error = "partner refused our file: " + "; ".join(found.partner_problems)
    elif found.kind == "settlement":
        stored = _store(svc, partner_code, found.name, found.data)
        return _record(svc, partner_code, found, outcome, stored)
    else:
        items = [u.as_confirmation() for u in found.updates if u.status in APPLIED_STATUSES]
        if items:
            applied = confirmations.apply(svc, partner_code, items)
            outcome.applied, outcome.duplicates, outcome.stale = (
                applied.applied, applied.duplicates, applied.stale)
    return _record(svc, partner_code, found, outcome, None)


def _refusal(svc: Services, partner_code: str, found) -> str | None:
    """Why a verified file must still be refused, or None."""
    with svc.uow() as session:
        twin = session.execute(select(PartnerFile.name, PartnerFile.received_at).where(
            PartnerFile.partner_code == partner_code, PartnerFile.sha256 == found.sha256,
            PartnerFile.status == "accepted")).first()
        if twin is not None:
            return (f"{found.name}: delivered twice: same content as {twin.name}, "
                    f"accepted {twin.received_at:%Y-%m-%d %H:%M}")
        if not found.updates:
            return None
        unknown = _unknown_references(session, partner_code, [u.reference for u in found.updates])
    for update, where in zip(found.updates, found.update_where, strict=True):
        if update.reference in unknown:
            return (f"{found.name} {where}: reference {update.reference} is not a "
                    f"transfer of partner {partner_code}")
    return None


def _unknown_references(session: Session, partner_code: str, references: list[str]) -> set[str]:
    wanted = sorted(set(references))
    found: set[str] = set()
    for i in range(0, len(wanted), LOOKUP_CHUNK):
        found.update(session.execute(select(Transfer.reference).where(
            Transfer.reference.in_(wanted[i:i + LOOKUP_CHUNK]),
            Transfer.partner_code == partner_code)).scalars())
    return set(wanted) - found


def _store(svc: Services, partner_code: str, name: str, data: bytes) -> str:
    """Settlement files are reconciliation's input: kept as received."""
    folder = Path(svc.settings.var_dir) / "partner-files" / partner_code
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_bytes(data)
    return str(path)


def _record(svc: Services, partner_code: str, found, outcome: FileOutcome,
            stored: str | None) -> FileOutcome:
    with svc.uow() as session:
        session.add(PartnerFile(partner_code=partner_code, name=found.name, kind=found.kind,
                                sha256=found.sha256, status=outcome.status, error=outcome.error,
                                lines=found.lines, total_centimes=found.total_centimes,
                                applied=outcome.applied, duplicates=outcome.duplicates,
                                stale=outcome.stale, stored_path=stored))
        try:
            session.commit()
        except IntegrityError:
            # Another collector recorded this file meanwhile; its updates were
            # applied under the same event ids, so nothing is lost or doubled.
            session.rollback()
    return outcome


def list_files(svc: Services, partner_code: str | None = None,
               rejected_only: bool = False) -> list[dict]:
    with svc.uow() as session:
        stmt = select(PartnerFile).order_by(PartnerFile.id)
        if partner_code:
            stmt = stmt.where(PartnerFile.partner_code == partner_code)
        if rejected_only:
            stmt = stmt.where((PartnerFile.status == "rejected")
                              | (PartnerFile.kind == "file_rejection"))
        return [{"partner": f.partner_code, "name": f.name, "kind": f.kind, "status": f.status,
                 "error": f.error, "lines": f.lines, "total_centimes": f.total_centimes,
                 "applied": f.applied, "duplicates": f.duplicates, "stale": f.stale,
                 "received_at": f.received_at.isoformat()}
                for f in session.execute(stmt).scalars()]
