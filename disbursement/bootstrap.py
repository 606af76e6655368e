"""The composition root: the only module that reads the environment and the
configuration files and builds the object graph (engine, configuration,
vault, job queue). The web app, the CLI, the RQ worker, the demo, the
benchmarks and the tests all get their `Services` from here, so wiring is
never a module global that someone swaps."""
from __future__ import annotations

import os
from collections.abc import Mapping

from disbursement import settings as settings_module
from disbursement.crypto import PersonalDataVault
from disbursement.db.session import make_engine
from disbursement.domain.entitlement import load_programs
from disbursement.domain.routing import load_partners
from disbursement.jobs.queue import queue_for
from disbursement.services.ports import MissingPartnerKey, Services, UnknownPartner
from disbursement.settings import Settings

__all__ = ["MissingPartnerKey", "Services", "UnknownPartner", "build", "environment",
           "from_environment", "settings_from_environment"]


def environment() -> Mapping[str, str]:
    """The process environment, read here and nowhere else for wiring."""
    return os.environ


def settings_from_environment(**overrides: str) -> Settings:
    """Settings from the process environment, with `overrides` (environment
    variable names) taking precedence."""
    return settings_module.load({**environment(), **overrides})


def build(settings: Settings) -> Services:
    return Services(
        settings=settings,
        engine=make_engine(settings.database_url),
        programs=load_programs(settings.config_dir),
        partners=load_partners(settings.config_dir),
        vault=PersonalDataVault(settings.data_key),
        make_queue=queue_for,
    )


def from_environment() -> Services:
    """What a process started by an operator runs with (CLI, worker, gunicorn)."""
    return build(settings_from_environment())
