"""The batch review page: the right figures and flags, and a bounded number
of SQL statements whatever the batch size (no N+1) on real PostgreSQL."""
from __future__ import annotations

import re

import pytest

from disbursement.domain.states import Role
from disbursement.services.officers import users
from tests.conftest import PASSWORD
from tests.support.console import Officer, build_batch, console_app
from tests.support.statements import counted

pytestmark = pytest.mark.integration

BIG_BATCH_TRANSFERS = 50_000
# users (who is signed in), batches+cycles, the breakdown, the flags, the
# sample, the decisions, the officer's second factor.
REVIEW_STATEMENTS = 7


def signed_in_approver(svc) -> Officer:
    with svc.uow() as session:
        users.create_user(session, users.SYSTEM, "maker", PASSWORD, [Role.MAKER])
        users.create_user(session, users.SYSTEM, "approver", PASSWORD, [Role.APPROVER])
        session.commit()
    officer = Officer(console_app(svc))
    assert officer.login("approver", PASSWORD).status_code == 303
    return officer


def _flag(page: str, kind: str) -> int:
    match = re.search(rf'data-flag="{kind}">[^<]*<strong>(\d+)</strong>', page)
    assert match, f"flag {kind} not on the page"
    return int(match.group(1))


def test_review_shows_totals_fees_and_each_kind_of_flag(svc):
    """On PostgreSQL and the embedded SQLite."""
    approver = signed_in_approver(svc)
    batch_id = build_batch(svc, 40, shared_cin=4, shared_phone=2, unusual=3, new_accounts=2)
    response = approver.get(f"/console/batches/{batch_id}")
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert 'id="batch-total">20000.00 MAD' in page      # 40 x 500.00
    assert 'id="batch-fees">140.00 MAD' in page          # 40 x 3.50
    assert _flag(page, "national_id") == 4
    assert _flag(page, "phone") == 2
    assert _flag(page, "account") == 0
    assert _flag(page, "unusual_amount") == 3
    assert _flag(page, "new_account") == 2
    assert "500.00 MAD vs usual 50.00 MAD" in page
    assert "فاطمة الزهراء Benali" in page                # UTF-8 names render
    for region in ("01", "02", "06", "09"):
        assert f"<td>{region}</td><td class=\"num\">10</td>" in page
    assert 'id="approve-batch" disabled' not in page


def test_review_page_of_a_50000_transfer_batch_costs_one_statement_per_table(pg_svc):
    approver = signed_in_approver(pg_svc)
    small = build_batch(pg_svc, 20, maker="maker", shared_cin=2, unusual=1, new_accounts=1)
    with counted(pg_svc.engine) as small_statements:
        assert approver.get(f"/console/batches/{small}").status_code == 200
    big = build_batch(pg_svc, BIG_BATCH_TRANSFERS, shared_cin=10, unusual=5, new_accounts=5,
                      year=2027)
    with counted(pg_svc.engine) as statements:
        response = approver.get(f"/console/batches/{big}")
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert f'id="batch-count">{BIG_BATCH_TRANSFERS}<' in page
    assert _flag(page, "national_id") == 10 and _flag(page, "unusual_amount") == 5
    assert len(statements) <= REVIEW_STATEMENTS, "\n\n".join(statements)
    assert len(statements) == len(small_statements)
