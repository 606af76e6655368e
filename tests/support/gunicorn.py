"""Our app under the real gunicorn configuration (config/gunicorn.conf.py), as
production runs it, for the end-to-end tests that need worker processes."""
from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager

import httpx

from bench.floor import stop_gunicorn
from disbursement.demo import free_port
from tests.conftest import ROOT
from tests.support.waiting import wait_until

GUNICORN_READY_SECONDS = 60


@contextmanager
def gunicorn(env: dict[str, str], workers: int = 2) -> Iterator[str]:
    """gunicorn on a free loopback port with `env`; yields its URL once /readyz
    answers (whatever it says), and stops it and its workers after."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-c", str(ROOT / "config" / "gunicorn.conf.py"),
         "--workers", str(workers), "--bind", f"127.0.0.1:{port}",
         "--access-logfile", "/dev/null", "disbursement.web.wsgi:app"],
        env=env, cwd=ROOT, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: _answers(proc, url), f"gunicorn answers {url}/readyz",
                   timeout=GUNICORN_READY_SECONDS, interval=0.2)
        yield url
    finally:
        stop_gunicorn(proc)
        assert proc.stderr is not None
        proc.stderr.close()


def _answers(proc: subprocess.Popen, url: str) -> bool:
    """Whether gunicorn answers yet; a gunicorn that exited never will."""
    assert proc.poll() is None, "gunicorn exited: " + proc.stderr.read().decode()[-2000:]
    try:
        httpx.get(f"{url}/readyz", timeout=2)
    except httpx.HTTPError:
        return False
    return True
