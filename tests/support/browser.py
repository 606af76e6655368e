#!/usr/bin/env python3
"""Make sure the system Chromium is installed for the browser tests (Debian
packages `chromium` and `chromium-driver`; never a browser download).

Standard library only, like services.py::

    python tests/support/browser.py ensure
"""
from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from services import ServiceError, _apt_install, log

CHROMIUM = "/usr/bin/chromium"
# The machine's network is closed: nothing in the background may reach out.
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]


def ensure() -> str:
    """The path of the system Chromium, installing it with apt-get if missing.
    Raises ServiceError when it cannot be installed."""
    if not os.path.exists(CHROMIUM):
        log("chromium missing: installing the Debian packages chromium and chromium-driver")
        _apt_install("chromium", "chromium-driver")
    if not os.path.exists(CHROMIUM):
        raise ServiceError(f"{CHROMIUM} is still missing after apt-get install chromium")
    return CHROMIUM


if __name__ == "__main__":
    if sys.argv[1:] != ["ensure"]:
        sys.exit("usage: browser.py ensure")
    try:
        print(ensure())
    except ServiceError as exc:
        sys.exit(f"error: {exc}")
