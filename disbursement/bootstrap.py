"""The composition root: the only module that reads the environment and the
configuration files and builds the object graph (engine, configuration,
vault, connectors, job queue). The web app, the CLI, the RQ worker, the demo,
the benchmarks and the tests all get their `Services` from here, so wiring is
never a module global that someone swaps."""
from __future__ import annotations

import os
from collections.abc import Mapping

from connectors.base import Connector
from connectors.factory import FILE_PROTOCOLS, build_connector, build_file_connector
from disbursement import settings as settings_module
from disbursement.configuration import load_configuration
from disbursement.crypto import PersonalDataVault
from disbursement.db.session import make_engine
from disbursement.jobs.queue import queue_for
from disbursement.services.ports import MissingPartnerKey, Services, UnknownPartner
from disbursement.settings import Settings
from reconciliation.readers.camt import read_camt054

__all__ = ["MissingPartnerKey", "Services", "UnknownPartner", "build", "environment",
           "from_environment", "settings_from_environment"]


def environment() -> Mapping[str, str]:
    """The process environment, read here and nowhere else for wiring."""
    return os.environ


def settings_from_environment(**overrides: str) -> Settings:
    """Settings from the process environment, with `overrides` (environment
    variable names) taking precedence."""
    return settings_module.load({**environment(), **overrides})


def connector_for(svc: Services, code: str) -> Connector:
    """The connector of partner `code`, by its configured protocol. A bank's
    camt.054 notifications are read with reconciliation's reader, handed in
    here so that connectors never import reconciliation."""
    partner = svc.partner(code)
    url = svc.settings.partner_urls.get(code, partner.base_url)
    if partner.protocol in FILE_PROTOCOLS:
        return build_file_connector(partner, url, svc.settings,
                                    svc.settings.connector_timeout_seconds, read_camt054)
    keys = svc.partner_keys(code)
    return build_connector(partner, url, keys[0], svc.settings.connector_timeout_seconds,
                           verify_keys=keys)


def build(settings: Settings) -> Services:
    configuration = load_configuration(settings.config_dir)
    return Services(
        settings=settings,
        engine=make_engine(settings.database_url),
        configuration=configuration,
        programs=configuration.programs,
        partners=configuration.partners,
        vault=PersonalDataVault(settings.data_key),
        make_queue=queue_for,
        make_connector=connector_for,
    )


def from_environment() -> Services:
    """What a process started by an operator runs with (CLI, worker, gunicorn)."""
    return build(settings_from_environment())
