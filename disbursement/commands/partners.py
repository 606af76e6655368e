"""Partner operations: dead letters, breakers, cancellation, wallet and REST simulators (issue 3)."""
from __future__ import annotations

import click


def register(main: click.Group) -> None:
    """Adds this area's commands to `disburse`."""
