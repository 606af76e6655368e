"""Fixtures for the file-based partners' end-to-end tests (the SFTP partner
DAMANE, the ISO 20022 bank CIHBANK): services on PostgreSQL with a config that
routes to those partners only, and officers created on those services, in place
of the suite-wide `officers`."""
from __future__ import annotations

from collections.abc import Iterator

import pytest

from disbursement.bootstrap import Services, build
from tests.conftest import Officers, _truncate_all, create_officers, make_settings
from tests.support.file_partners import file_partner_config


@pytest.fixture
def file_svc(pg_url, tmp_path) -> Iterator[Services]:
    svc = build(make_settings(tmp_path, pg_url).with_overrides(
        config_dir=file_partner_config(tmp_path)))
    yield svc
    svc.queue.drain()
    _truncate_all(svc)
    svc.engine.dispose()


@pytest.fixture
def officers(file_svc) -> Officers:
    return create_officers(file_svc)
