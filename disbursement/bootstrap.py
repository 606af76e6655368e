"""Everything a use case needs, built once from the settings."""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

from sqlalchemy import Engine

from connectors.base import Connector
from disbursement.crypto import PersonalDataVault
from disbursement.db.session import UnitOfWork, make_engine
from disbursement.domain.entitlement import ProgramRules, load_programs
from disbursement.domain.errors import NotFound
from disbursement.domain.routing import Partner, load_partners
from disbursement.jobs.queue import JobQueue, make_queue
from disbursement.settings import Settings
from reconciliation.readers.camt import read_camt054


class UnknownPartner(NotFound, LookupError):
    """Raised when a partner code is not in config/partners.toml."""


class MissingPartnerKey(RuntimeError):
    """Raised when a partner has no HMAC key in the environment."""


@dataclass
class Services:
    settings: Settings
    engine: Engine
    programs: dict[str, ProgramRules]
    partners: dict[str, Partner]
    vault: PersonalDataVault
    _queue: JobQueue | None = field(default=None, repr=False)

    @cached_property
    def uow(self) -> UnitOfWork:
        return UnitOfWork(self.engine)

    @property
    def queue(self) -> JobQueue:
        if self._queue is None:
            self._queue = make_queue(self.settings.redis_url)
        return self._queue

    def partner(self, code: str) -> Partner:
        try:
            return self.partners[code]
        except KeyError:
            raise UnknownPartner(f"unknown partner {code}") from None

    def partner_keys(self, code: str) -> tuple[bytes, ...]:
        keys = self.settings.partner_keys.get(code)
        if not keys:
            raise MissingPartnerKey(f"no HMAC key for partner {code}: set PARTNER_{code}_HMAC_KEYS")
        return keys

    def connector(self, code: str) -> Connector:
        from connectors.factory import FILE_PROTOCOLS, build_connector, build_file_connector

        partner = self.partner(code)
        url = self.settings.partner_urls.get(code, partner.base_url)
        if partner.protocol in FILE_PROTOCOLS:
            return build_file_connector(partner, url, self.settings,
                                        self.settings.connector_timeout_seconds, read_camt054)
        keys = self.partner_keys(code)
        return build_connector(partner, url, keys[0], self.settings.connector_timeout_seconds,
                               verify_keys=keys)


def build(settings: Settings) -> Services:
    return Services(
        settings=settings,
        engine=make_engine(settings.database_url),
        programs=load_programs(settings.config_dir),
        partners=load_partners(settings.config_dir),
        vault=PersonalDataVault(settings.data_key),
    )
