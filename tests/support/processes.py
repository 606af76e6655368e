"""`disburse` commands as real processes (workers, the scheduler), with the
environment an operator would give them, and what the tests ask of a process
tree (its children, whether a pid is alive). Linux /proc, standard library."""
from __future__ import annotations

import base64
import os
import subprocess
import sys
from pathlib import Path

from disbursement.settings import Settings
from tests.conftest import PARTNER_KEYS, ROOT


def disburse_env(settings: Settings, partner_urls: dict[str, str] | None = None,
                 **extra: str) -> dict[str, str]:
    """The environment of a `disburse` process on these settings' database and Redis."""
    env = {**os.environ, "DATABASE_URL": settings.database_url,
           "DISBURSE_VAR_DIR": str(settings.var_dir),
           "DISBURSE_DATA_KEY": base64.b64encode(settings.data_key).decode(),
           **{f"PARTNER_{c}_HMAC_KEYS": k for c, k in PARTNER_KEYS.items()},
           **{f"PARTNER_{c}_URL": u for c, u in (partner_urls or {}).items()}, **extra}
    if settings.redis_url:
        env["REDIS_URL"] = settings.redis_url
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    return env


def start(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    """`disburse ARGS` in the background, its output in `log` (read it when a test fails)."""
    with log.open("ab") as out:
        return subprocess.Popen([sys.executable, "-m", "disbursement.cli", *args], env=env,
                                cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)


def children_of(pid: int) -> list[int]:
    """The live processes whose parent is `pid`."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # pid (comm) state ppid ...: comm may hold spaces, so split after its ")".
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[1]) == pid and fields[0] != "Z":
            found.append(int(entry.name))
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
