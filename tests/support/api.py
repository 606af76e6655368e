"""The API as a test drives it: Flask's test client plus one bearer token per
officer, the calls the API tests repeat (upload an extract, plan, act on a
batch), and a partner's signed POST. One class for every test that calls the API."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from connectors import signing
from disbursement.bootstrap import Services
from disbursement.services.officers import users
from disbursement.web.app import create_app
from tests.conftest import PARTNER_KEYS

PROGRAM, PERIOD = "asd", "2026-12"
SIGNING_PARTNER = "BARID"


class Api:
    """The test client plus one bearer token per officer."""

    def __init__(self, svc: Services) -> None:
        self.svc = svc
        self.client: FlaskClient = create_app(services=svc).test_client()
        self._tokens: dict[str, str] = {}

    def token(self, username: str) -> str:
        # Issued by the service directly: an argon2 check per officer per test
        # would cost more than the rest of the test (the endpoint has its own).
        if username not in self._tokens:
            with self.svc.uow() as session:
                actor = users.actor_by_name(session, username)
                self._tokens[username] = users.issue_token(session, actor,
                                                           self.svc.settings.token_ttl_seconds)
                session.commit()
        return self._tokens[username]

    def call(self, method: str, path: str, as_user: str, **kwargs: Any) -> TestResponse:
        headers = {"Authorization": f"Bearer {self.token(as_user)}"}
        return self.client.open(path, method=method, headers=headers, **kwargs)

    def upload(self, path: Path, as_user: str = "maker", **form: Any) -> TestResponse:
        with path.open("rb") as stream:
            return self.call("POST", "/api/v1/registry/imports", as_user,
                             data={"file": (stream, path.name), **form})

    def plan(self, as_user: str = "maker") -> TestResponse:
        return self.call("POST", "/api/v1/cycles", as_user,
                         json={"program": PROGRAM, "period": PERIOD})

    def batch(self, batch_id: int, action: str, as_user: str, **kwargs: Any) -> TestResponse:
        return self.call("POST", f"/api/v1/batches/{batch_id}/{action}", as_user, **kwargs)

    def signed(self, path: str, payload: Any, partner: str = SIGNING_PARTNER) -> TestResponse:
        """A partner's POST, signed with its key as the partner signs it."""
        body = json.dumps(payload).encode()
        headers = signing.sign(PARTNER_KEYS[partner].encode(), body, method="POST", target=path)
        return self.client.post(path, data=body, headers={"Content-Type": "application/json",
                                                          **headers})
