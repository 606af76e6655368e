"""`disburse` run as a process against a test's services (the database and the
keys of `svc`, jobs in-process), the way an operator runs it."""
from __future__ import annotations

import base64
import os
import subprocess
import sys
from pathlib import Path

from disbursement.bootstrap import Services
from tests.conftest import PARTNER_KEYS


def run_cli(svc: Services, var_dir: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "DATABASE_URL": svc.settings.database_url,
           "DISBURSE_VAR_DIR": str(var_dir),
           "DISBURSE_DATA_KEY": base64.b64encode(svc.settings.data_key).decode(),
           **{f"PARTNER_{c}_HMAC_KEYS": k for c, k in PARTNER_KEYS.items()}}
    env.pop("REDIS_URL", None)
    return subprocess.run([sys.executable, "-m", "disbursement.cli", *args], env=env,
                          capture_output=True, text=True, timeout=120)
