"""`disburse users create` and API sign-in are use cases that commit in their own
unit of work: the first officer is created without --user, audited, and can then
exchange a password for a token."""
from __future__ import annotations

import base64
import os
import subprocess
import sys

from sqlalchemy import select

from disbursement.db.models import AuditEntry
from disbursement.web.app import create_app
from tests.conftest import PARTNER_KEYS

PASSWORD = "correct horse battery staple"


def _cli(svc, tmp_path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "DATABASE_URL": svc.settings.database_url,
           "DISBURSE_VAR_DIR": str(tmp_path),
           "DISBURSE_DATA_KEY": base64.b64encode(svc.settings.data_key).decode(),
           "NEW_USER_PASSWORD": PASSWORD,
           **{f"PARTNER_{c}_HMAC_KEYS": k for c, k in PARTNER_KEYS.items()}}
    env.pop("REDIS_URL", None)
    return subprocess.run([sys.executable, "-m", "disbursement.cli", *args], env=env,
                          capture_output=True, text=True, timeout=120)


def test_the_first_officer_is_created_by_the_cli_and_signs_in_for_a_token(pg_svc, tmp_path):
    created = _cli(pg_svc, tmp_path, "users", "create", "admin1", "--role", "admin")

    assert created.returncode == 0, created.stderr
    assert "user admin1 created with roles admin" in created.stdout
    with pg_svc.uow() as session:
        audited = session.execute(select(AuditEntry.actor, AuditEntry.action)
                                  .where(AuditEntry.action == "user.create")).all()
    assert [tuple(row) for row in audited] == [("system", "user.create")]

    client = create_app(services=pg_svc).test_client()
    token = client.post("/api/v1/auth/tokens", json={"username": "admin1", "password": PASSWORD})
    assert token.status_code == 201
    assert token.get_json()["roles"] == ["admin"]
    wrong = client.post("/api/v1/auth/tokens", json={"username": "admin1", "password": "nope"})
    assert wrong.status_code == 401
