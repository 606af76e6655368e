"""Registry imports on both databases: rejection, then the valid rows only."""
from __future__ import annotations

import pytest
from sqlalchemy import func, select

from disbursement.db.models import Household, RegistryImport
from disbursement.services.registry import importing as registry

pytestmark = pytest.mark.integration


def _import(svc, path, actor, valid_rows_only=False):
    with path.open("rb") as stream:
        return registry.import_households(svc, stream, path.name, actor, valid_rows_only)


def _households(svc) -> int:
    with svc.uow() as session:
        return session.execute(select(func.count()).select_from(Household)).scalar_one()


def test_rejected_file_can_then_be_imported_valid_rows_only(svc, officers, households_csv):
    path = households_csv(60, bad_rows=3)
    rejected = _import(svc, path, officers.maker)
    assert (rejected.status, rejected.rows_invalid, rejected.rows_imported) == ("rejected", 3, 0)
    assert _households(svc) == 0

    partial = _import(svc, path, officers.maker, valid_rows_only=True)
    assert (partial.status, partial.rows_valid, partial.rows_imported) == ("partial", 57, 57)
    assert _households(svc) == 57

    again = _import(svc, path, officers.maker, valid_rows_only=True)
    assert (again.status, again.duplicate_of) == ("duplicate", partial.import_id)
    with svc.uow() as session:
        statuses = session.execute(
            select(RegistryImport.status).order_by(RegistryImport.id)).scalars().all()
    assert statuses == ["rejected", "partial"]
    assert _households(svc) == 57


def test_personal_data_is_sealed_at_rest(svc, officers, households_csv):
    path = households_csv(5)
    _import(svc, path, officers.maker)
    first_cin = path.read_text().splitlines()[1].split(",")[1]
    with svc.uow() as session:
        blobs = session.execute(select(Household.pii, Household.cin_hash)).all()
    assert all(first_cin.encode() not in blob for blob, _ in blobs)
    assert svc.vault.search_hash(first_cin) in {h for _, h in blobs}
    opened = [svc.vault.open(blob)["cin"] for blob, _ in blobs]
    assert first_cin in opened
