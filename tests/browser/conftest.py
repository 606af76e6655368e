"""The console served by our app on a loopback port (real PostgreSQL, partner
simulators as processes) and the system Chromium driven by Playwright."""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import pyotp
import pytest

from disbursement.demo import (
    DEMO_STATEMENT_FAULTS,
    api_server,
    free_port,
    simulator,
    with_partner_urls,
)
from disbursement.domain.states import Role
from disbursement.services.officers import sign_in as officers
from disbursement.services.officers import users
from disbursement.services.registry import importing as registry
from tests.conftest import PARTNER_KEYS, PASSWORD, ROOT
from tests.support import browser as system_browser
from tests.support.console import console_services, eligible_rows, write_extract

ARTIFACTS = ROOT / "tests" / "artifacts"
HOUSEHOLDS = 60


@dataclass
class Site:
    url: str
    svc: object
    sims: dict[str, str]
    totp: pyotp.TOTP
    rows: list[dict[str, str]]


@pytest.fixture
def site(pg_svc, tmp_path) -> Iterator[Site]:
    with pg_svc.uow() as session:
        for name, roles in (("amina.maker", [Role.MAKER]), ("youssef.approver", [Role.APPROVER]),
                            ("salma.monitor", [Role.MONITOR]), ("karim.auditor", [Role.AUDITOR])):
            users.create_user(session, users.SYSTEM, name, PASSWORD, roles)
        session.commit()
        maker = users.actor_by_name(session, "amina.maker")
    totp = pyotp.parse_uri(officers.enrol_totp(pg_svc, "youssef.approver"))
    rows = eligible_rows(HOUSEHOLDS, seed=11)
    extract = write_extract(tmp_path / "rsu.csv", rows)
    with extract.open("rb") as stream:
        registry.import_households(pg_svc, stream, extract.name, maker)
    # Statements come with missing, extra, altered and duplicate lines so the
    # dashboard has reconciliation exceptions to draw.
    # Our port is chosen first so the simulators know where to post their
    # signed confirmations, and our dispatch knows where they listen.
    port = free_port()
    with ExitStack() as stack:
        sims = {code: stack.enter_context(simulator(
                    code, 0, f"http://127.0.0.1:{port}/api/v1/partners/{code}/confirmations",
                    PARTNER_KEYS[code], seed, DEMO_STATEMENT_FAULTS))
                for seed, code in enumerate(sorted(PARTNER_KEYS), start=1)}
        svc = with_partner_urls(console_services(pg_svc), sims)
        url = stack.enter_context(api_server(svc, "127.0.0.1", port))
        yield Site(url, svc, sims, totp, rows)
        svc.queue.drain()


@pytest.fixture
def chromium():
    from playwright.sync_api import sync_playwright

    executable = system_browser.ensure()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable,
                                             args=system_browser.CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def shot(request):
    """Saves a full-page screenshot under tests/artifacts/ (gitignored)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    test = request.node.name

    def save(page, name: str) -> Path:
        path = ARTIFACTS / f"{test}-{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return save


def sign_in(browser, site: Site, username: str):
    context = browser.new_context(base_url=site.url, viewport={"width": 1400, "height": 900})
    page = context.new_page()
    page.goto("/console/login")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_load_state()
    return page

