"""File exchange and ISO 20022: SFTP and bank simulators (issue 3)."""
from __future__ import annotations

import click


def register(main: click.Group) -> None:
    """Adds this area's commands to `disburse`."""
