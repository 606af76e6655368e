"""Fixtures on real components: PostgreSQL and Redis (started by `make test`
when none answer), the embedded SQLite default, partner simulators as
processes, our API on a loopback port. No mocks of our own code."""
from __future__ import annotations

import base64
import os
import secrets
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from disbursement import settings as settings_module
from disbursement.bootstrap import Services, build
from disbursement.db.migrate import upgrade
from disbursement.db.models import Base
from disbursement.domain.states import Role
from disbursement.services.officers import users

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "correct horse battery staple"
PARTNER_KEYS = {"BARID": "barid-test-key", "CASHPLUS": "cashplus-test-key",
                "WAFACASH": "wafacash-test-key"}


def pytest_configure(config) -> None:
    config.addinivalue_line("markers", "live_settings(**overrides): Settings overrides for the "
                                       "services of the `live` fixture")


def _service_urls() -> dict[str, str]:
    urls = {k: os.environ[k] for k in ("TEST_DATABASE_URL", "TEST_REDIS_URL") if os.environ.get(k)}
    if len(urls) < 2:
        from tests.support import services

        urls = {**services.ensure(), **urls}
    return urls


@pytest.fixture(scope="session")
def service_urls() -> dict[str, str]:
    return _service_urls()


@pytest.fixture(scope="session")
def pg_url(service_urls) -> Iterator[str]:
    """A database of our own for this run, migrated to head."""
    server = make_url(service_urls["TEST_DATABASE_URL"])
    name = f"disburse_test_{uuid.uuid4().hex[:8]}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = server.set(database=name).render_as_string(hide_password=False)
    engine = create_engine(url)
    upgrade(engine)
    engine.dispose()
    yield url
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(scope="session")
def redis_url(service_urls) -> str:
    return service_urls["TEST_REDIS_URL"]


def make_settings(tmp: Path, database_url: str, redis_url: str | None = None,
                  **overrides) -> settings_module.Settings:
    env = {"DISBURSE_VAR_DIR": str(tmp), "DATABASE_URL": database_url,
           "DISBURSE_DATA_KEY": base64.b64encode(secrets.token_bytes(32)).decode(),
           **{settings_module.partner_key_env(c): k for c, k in PARTNER_KEYS.items()}}
    if redis_url:
        env["REDIS_URL"] = redis_url
    return settings_module.load(env).with_overrides(**overrides)


def _truncate_all(svc: Services) -> None:
    tables = ", ".join(t.name for t in reversed(Base.metadata.sorted_tables)
                       if t.name != "audit_head")
    with svc.engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
        conn.execute(text("UPDATE audit_head SET last_hash = :h, entries = 0"), {"h": "0" * 64})


@pytest.fixture
def pg_svc(pg_url, tmp_path) -> Iterator[Services]:
    """Services on real PostgreSQL, jobs in-process; every table emptied after."""
    svc = build(make_settings(tmp_path, pg_url))
    yield svc
    svc.queue.drain()
    _truncate_all(svc)
    svc.engine.dispose()


@pytest.fixture
def sqlite_svc(tmp_path) -> Iterator[Services]:
    """The embedded default: a SQLite file, jobs in-process."""
    svc = build(make_settings(tmp_path, f"sqlite:///{tmp_path / 'embedded.db'}"))
    upgrade(svc.engine)
    yield svc
    svc.queue.drain()
    svc.engine.dispose()


@pytest.fixture(params=["postgresql", "sqlite"])
def svc(request) -> Services:
    """Both databases the service runs on."""
    return request.getfixturevalue("pg_svc" if request.param == "postgresql" else "sqlite_svc")


@dataclass
class Officers:
    maker: users.Actor
    approver: users.Actor
    approver2: users.Actor
    monitor: users.Actor


def create_officers(svc: Services) -> Officers:
    wanted = [("maker", Role.MAKER), ("approver", Role.APPROVER), ("approver2", Role.APPROVER),
              ("monitor", Role.MONITOR)]
    with svc.uow() as session:
        for name, role in wanted:
            users.create_user(session, users.SYSTEM, name, PASSWORD, [role])
        session.commit()
        return Officers(*(users.actor_by_name(session, n) for n, _ in wanted))


@pytest.fixture
def officers(svc) -> Officers:
    return create_officers(svc)


@pytest.fixture
def households_csv(tmp_path):
    """Factory: a registry extract of n synthetic households."""
    from disbursement.services.registry.generator import write_csv

    def make(n: int, seed: int = 7, bad_rows: int = 0, name: str = "extract.csv") -> Path:
        path = tmp_path / name
        write_csv(path, n, seed=seed, bad_rows=bad_rows)
        return path

    return make


@dataclass
class Live:
    svc: Services
    api: str
    sims: dict[str, str]


@pytest.fixture
def live(svc, request) -> Iterator[Live]:
    """Our API on a loopback port and one REST simulator process per partner,
    posting signed confirmations back to it. Simulator flags come from
    `@pytest.mark.sim_args(...)`, settings overrides for our side from
    `@pytest.mark.live_settings(name=value, ...)`."""
    from contextlib import ExitStack

    from disbursement.demo import api_listener, api_server, listener_url, simulator

    marker = request.node.get_closest_marker("sim_args")
    extra = list(marker.args) if marker else []
    settings_marker = request.node.get_closest_marker("live_settings")
    overrides = dict(settings_marker.kwargs) if settings_marker else {}
    with ExitStack() as stack:
        # The API's port is known before its app is built: the simulators call
        # it back, and its services (and their jobs) call the simulators.
        listener = stack.enter_context(api_listener("127.0.0.1", 0))
        api = listener_url(listener)
        # Port 0: each simulator binds a free port itself and reports it.
        sims = {code: stack.enter_context(simulator(
                    code, 0, f"{api}/api/v1/partners/{code}/confirmations",
                    PARTNER_KEYS[code], seed, extra))
                for seed, code in enumerate(sorted(PARTNER_KEYS), start=1)}
        live_svc = svc.with_overrides(**overrides).with_partner_urls(sims)
        stack.enter_context(api_server(live_svc, "127.0.0.1", 0, listener))
        yield Live(live_svc, api, sims)
        live_svc.queue.drain()
