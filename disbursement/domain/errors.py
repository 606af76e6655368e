"""What kind of refusal an error is, shared by every layer.

Each use case raises its own exception class (named for its rule, with a
docstring saying when it is raised); that class also derives from one of the
categories below. The adapters map a category, never an individual class, to
what their users see: the web to an HTTP status (`disbursement.web.errors`),
the CLI to an exit code (`disbursement.cli.context`). Neither imports the
other, and a new service error needs no line in either table.

An error outside these categories is a bug: the adapters let it through.
"""
from __future__ import annotations


class DomainError(Exception):
    """Base of every refusal a caller is expected to report to its user."""


class Unauthenticated(DomainError):
    """Raised when who is asking cannot be established (a password, a token or
    a partner's signature does not check)."""


class Refused(DomainError):
    """Raised when the asker is known but a rule forbids them this action
    (a role they lack, the maker approving their own batch, a failed
    confirmation)."""


class NotFound(DomainError):
    """Raised when the thing named (a batch, a transfer, a program, a partner,
    a report) does not exist."""


class Conflict(DomainError):
    """Raised when the thing exists but its state forbids the action now
    (a batch already released, an exception already resolved)."""


class BadInput(DomainError):
    """Raised when the input itself is wrong (a malformed period or file, a
    missing reason, a posting that does not balance)."""


class Unavailable(DomainError):
    """Raised when a partner needed to complete the action does not answer:
    trying again later may succeed."""

