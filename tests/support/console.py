"""Helpers for console tests: an app with a session secret, a browser-like
client that carries the CSRF token, and a registry extract to edit."""
from __future__ import annotations

import csv
import dataclasses
import re
import secrets
from decimal import Decimal
from pathlib import Path

from disbursement.registry.generator import generate_households
from disbursement.registry.schema import COLUMNS
from disbursement.services.context import Services
from disbursement.web.app import create_app

CSRF_META = re.compile(r'<meta name="csrf-token" content="([^"]+)"')


def console_services(svc: Services) -> Services:
    """The same services with a session secret, as `make run` or production has."""
    return dataclasses.replace(svc, settings=svc.settings.with_overrides(
        session_secret=secrets.token_bytes(32)))


class Officer:
    """A Flask test client used like a browser: it reads the CSRF token from
    the last page and sends it with every form. Over https, as the session
    cookie is Secure."""

    def __init__(self, app) -> None:
        self.client = app.test_client()
        self.client.environ_base["wsgi.url_scheme"] = "https"
        self.token = ""

    def get(self, path: str, **kw):
        response = self.client.get(path, base_url="https://localhost", **kw)
        match = CSRF_META.search(response.get_data(as_text=True))
        if match:
            self.token = match.group(1)
        return response

    def post(self, path: str, data: dict | None = None, csrf: bool = True, **kw):
        form = dict(data or {})
        if csrf:
            form["csrf_token"] = self.token
        # Over https Flask-WTF also checks that the Referer is this site, as a
        # browser's would be.
        return self.client.post(path, data=form, base_url="https://localhost",
                                headers={"Referer": "https://localhost/console/"}, **kw)

    def login(self, username: str, password: str):
        self.get("/console/login")
        return self.post("/console/login", {"username": username, "password": password})


def console_app(svc: Services):
    return create_app(services=console_services(svc))


def write_extract(path: Path, rows: list[dict[str, str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(COLUMNS)
        for row in rows:
            writer.writerow([row[c] for c in COLUMNS])
    return path


def eligible_rows(n: int, seed: int = 7) -> list[dict[str, str]]:
    """n generated households, all under the eligibility threshold."""
    rows = []
    for row in generate_households(n * 3, seed):
        if Decimal(row["score"]) < Decimal("9"):
            rows.append(row)
        if len(rows) == n:
            return rows
    raise AssertionError("not enough eligible rows generated")
