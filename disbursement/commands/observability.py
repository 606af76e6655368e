"""Metrics and dashboard (issue 5)."""
from __future__ import annotations

import click


def register(main: click.Group) -> None:
    """Adds this area's commands to `disburse`."""
