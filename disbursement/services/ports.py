"""What a use case is handed: the database, the configuration, the partners'
connectors and a job queue, bundled as `Services`.

Services enqueue work by job name through the `JobQueue` port and never import
the job adapters (`disbursement.jobs`): the composition root
(`disbursement.bootstrap`) chooses the adapter (RQ or in-process) and hands in a
factory that binds a queue to the Services it serves, so a variant made with
`with_overrides` runs its jobs with its own settings.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from functools import cached_property
from typing import Any, Protocol

from sqlalchemy import Engine

from connectors.base import Connector
from disbursement.configuration import Configuration
from disbursement.crypto import PersonalDataVault
from disbursement.db.session import UnitOfWork
from disbursement.domain.entitlement import ProgramRules
from disbursement.domain.errors import NotFound
from disbursement.domain.routing import Partner
from disbursement.settings import Settings


class JobName(StrEnum):
    """Every job the services enqueue; a job takes ids (or a partner code, an ISO date)."""

    DISPATCH_CHUNK = "dispatch_chunk"
    NOTIFY_CHUNK = "notify_chunk"
    RUN_PLAN = "run_plan"
    RUN_IMPORT = "run_import"
    COLLECT_PARTNER_FILES = "collect_partner_files"
    COLLECT_ALL_PARTNER_FILES = "collect_all_partner_files"
    RUN_EXPIRY = "run_expiry"
    QUERY_IN_DOUBT = "query_in_doubt"
    SWEEP_OUTBOX = "sweep_outbox"


class JobQueue(Protocol):
    """Where services put work to run after their commit."""

    name: str

    def enqueue(self, job: JobName, *args: int | str) -> None:
        """Queues `job` with its ids; called after the commit, never before."""

    def drain(self, timeout_seconds: float = 600) -> None:
        """Waits until the queued jobs have run (the CLI and tests use it)."""

    def figures(self) -> dict[str, int]:
        """Jobs waiting and workers serving the queue (`rq_queued`, `rq_workers`);
        empty for a queue without workers. Raises when the broker does not answer."""


class UnknownPartner(NotFound, LookupError):
    """Raised when a partner code is not in config/partners.toml."""


class MissingPartnerKey(RuntimeError):
    """Raised when a partner has no HMAC key in the environment."""


@dataclass
class Services:
    """Built once by `disbursement.bootstrap.build`; `make_queue` builds the job
    queue bound to these very Services, on first use."""

    settings: Settings
    engine: Engine
    configuration: Configuration
    # The configuration's programs and partners, a field each so a test may
    # replace them (`dataclasses.replace(svc, partners=...)`).
    programs: dict[str, ProgramRules]
    partners: dict[str, Partner]
    vault: PersonalDataVault
    make_queue: Callable[[Services], JobQueue] = field(repr=False)
    make_connector: Callable[[Services, str], Connector] = field(repr=False)
    _queue: JobQueue | None = field(default=None, repr=False)

    @cached_property
    def uow(self) -> UnitOfWork:
        return UnitOfWork(self.engine)

    @property
    def queue(self) -> JobQueue:
        if self._queue is None:
            self._queue = self.make_queue(self)
        return self._queue

    def with_overrides(self, **settings_overrides: Any) -> Services:
        """The same engine and configuration with other settings, and a job
        queue of its own that runs jobs with them."""
        return replace(self, settings=self.settings.with_overrides(**settings_overrides),
                       _queue=None)

    def with_partner_urls(self, urls: Mapping[str, str]) -> Services:
        """The same services pointed at partner endpoints learnt at run time
        (simulators that chose their own port)."""
        return self.with_overrides(partner_urls={**self.settings.partner_urls, **urls})

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
        """A connector to partner `code`, built by the factory the composition
        root handed in (raises UnknownPartner, MissingPartnerKey)."""
        return self.make_connector(self, code)
