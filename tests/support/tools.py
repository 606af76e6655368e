#!/usr/bin/env python3
"""Command-line tools the tests need that pip does not provide.

    python tests/support/tools.py promtool    # print promtool's path, installing it if missing

promtool comes from the Debian package ``prometheus``. Rather than installing
the package (whose maintainer scripts would start a Prometheus server on this
machine), its .deb is fetched with ``apt-get download`` and only the static
``promtool`` binary is extracted, next to the virtualenv's Python. Standard
library only, like services.py.
"""
from __future__ import annotations

import glob
import os
import shutil
import subprocess
import sys
import tempfile

PROMTOOL_PACKAGE = "prometheus"
INSTALL_DIR = os.path.dirname(sys.executable)   # the virtualenv's bin/


class ToolError(RuntimeError):
    """Raised when a tool is missing and cannot be installed."""


def _run(cmd: list[str], cwd: str | None = None) -> None:
    res = subprocess.run(cmd, cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True, timeout=900,
                         env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"))
    if res.returncode != 0:
        raise ToolError(f"{' '.join(cmd)} failed ({res.returncode}): {res.stdout[-1500:]}")


def ensure_promtool() -> str:
    """Path of a working promtool; fetched from the Debian archive when missing.

    Raises ToolError when it is missing and apt-get cannot provide it."""
    found = shutil.which("promtool") or shutil.which("promtool", path=INSTALL_DIR)
    if found:
        return found
    if not shutil.which("apt-get") or not shutil.which("dpkg-deb"):
        raise ToolError("promtool is missing and this machine has no apt-get/dpkg-deb "
                        f"to fetch the Debian package {PROMTOOL_PACKAGE}")
    print(f"[tools] fetching promtool from the Debian package {PROMTOOL_PACKAGE}",
          file=sys.stderr, flush=True)
    with tempfile.TemporaryDirectory(prefix="disburse-promtool-") as work:
        try:
            _run(["apt-get", "download", PROMTOOL_PACKAGE], cwd=work)
        except ToolError:
            # The package lists may be stale or absent: refresh them once.
            _run((["sudo", "-n"] if os.geteuid() != 0 and shutil.which("sudo") else [])
                 + ["apt-get", "update"])
            _run(["apt-get", "download", PROMTOOL_PACKAGE], cwd=work)
        debs = glob.glob(os.path.join(work, f"{PROMTOOL_PACKAGE}_*.deb"))
        if not debs:
            raise ToolError(f"apt-get download {PROMTOOL_PACKAGE} produced no .deb")
        root = os.path.join(work, "root")
        _run(["dpkg-deb", "-x", debs[0], root])
        binary = os.path.join(root, "usr", "bin", "promtool")
        if not os.path.exists(binary):
            raise ToolError(f"no usr/bin/promtool in {os.path.basename(debs[0])}")
        target = os.path.join(INSTALL_DIR, "promtool")
        shutil.copy2(binary, target)
        os.chmod(target, 0o755)
    return target


def main(argv: list[str]) -> int:
    if argv[:1] != ["promtool"]:
        print(f"usage: {sys.argv[0]} promtool", file=sys.stderr)
        return 2
    try:
        print(ensure_promtool())
    except ToolError as exc:
        print(f"[tools] error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
