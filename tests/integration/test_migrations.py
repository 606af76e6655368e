"""The migrations build exactly the schema the models describe, on PostgreSQL."""
from __future__ import annotations

import pytest
from alembic import command
from sqlalchemy import create_engine

from disbursement.db.migrate import alembic_config

pytestmark = pytest.mark.integration


def test_models_and_migrations_agree(pg_url):
    engine = create_engine(pg_url)
    cfg = alembic_config(pg_url)
    with engine.connect() as conn:
        cfg.attributes["connection"] = conn
        command.check(cfg)  # raises when autogenerate would find a difference
    engine.dispose()
