"""What every `disburse` command shares: the context object (`Ctx`: the
services and the officer the command acts as), the exit codes, and the way a
refusal becomes a message and an exit code.

The command modules import this one and never `cli.main`, which only
assembles them: so no module of the CLI imports another one back."""
from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import NoReturn, TypeVar

import click
from tqdm import tqdm

from disbursement import bootstrap
from disbursement.bootstrap import Services
from disbursement.domain.errors import (
    BadInput,
    Conflict,
    DomainError,
    NotFound,
    Refused,
    Unauthenticated,
    Unavailable,
)
from disbursement.services.officers import users
from disbursement.services.officers.users import Actor

EXIT_INPUT = 2
EXIT_REFUSED = 3
EXIT_CHECK_FAILED = 4

# Scripts test one code for "the service said no", whatever the reason; the
# message on stderr says which.
EXIT_BY_CATEGORY: dict[type[DomainError], int] = {
    Unauthenticated: EXIT_REFUSED,
    Refused: EXIT_REFUSED,
    NotFound: EXIT_REFUSED,
    Conflict: EXIT_REFUSED,
    BadInput: EXIT_REFUSED,
    Unavailable: EXIT_REFUSED,
}

T = TypeVar("T")


class Ctx:
    def __init__(self, user: str | None) -> None:
        self.user = user
        self._svc: Services | None = None

    @property
    def svc(self) -> Services:
        """Built on first use through the composition root, from the environment."""
        if self._svc is None:
            self._svc = bootstrap.from_environment()
        return self._svc

    def actor(self) -> Actor:
        """The named user the command acts as; the password is asked (or read
        from DISBURSE_PASSWORD for scripts)."""
        if not self.user:
            raise click.UsageError("name the user you act as: --user NAME or DISBURSE_USER")
        password = os.environ.get("DISBURSE_PASSWORD")
        if password is None:
            password = click.prompt(f"password for {self.user}", hide_input=True, err=True)
        with self.svc.uow() as session:
            return users.authenticate(session, self.user, password)


def fail(message: str, code: int = EXIT_REFUSED) -> NoReturn:
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


def exit_code_of(exc: DomainError) -> int:
    return next(EXIT_BY_CATEGORY[cls] for cls in type(exc).__mro__ if cls in EXIT_BY_CATEGORY)


def domain_call(fn: Callable[[], T]) -> T:
    """Runs one use case; a refusal becomes its message and exit code."""
    try:
        return fn()
    except DomainError as exc:
        fail(str(exc), exit_code_of(exc))


def progress(total: int | None, label: str) -> tqdm:
    return tqdm(total=total, desc=label, unit="row", disable=not sys.stderr.isatty(),
                file=sys.stderr, dynamic_ncols=True)
