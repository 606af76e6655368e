"""Metrics and dashboard (issue 5): `disburse monitor ...` and the RQ worker's
metrics files."""
from __future__ import annotations

import json
import logging
import os
import sys
from contextlib import contextmanager
from typing import Iterator

import click
from prometheus_client import generate_latest

from disbursement.web.observability import scrape_registry

log = logging.getLogger(__name__)
EXIT_NOT_READY = 4


@contextmanager
def worker_metrics(settings) -> Iterator[None]:
    """Around an RQ worker's life: its metrics files go where gunicorn's
    /metrics reads them (PROMETHEUS_MULTIPROC_DIR, read by prometheus_client
    when the process starts), and its live gauges are retired when it stops."""
    if settings.metrics_dir is None:
        log.warning("PROMETHEUS_MULTIPROC_DIR is not set: this worker's job metrics stay in "
                    "this process and never reach /metrics")
        yield
        return
    settings.metrics_dir.mkdir(parents=True, exist_ok=True)
    try:
        yield
    finally:
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(os.getpid(), str(settings.metrics_dir))


def register(main: click.Group) -> None:
    """Adds this area's commands to `disburse`."""

    @main.group()
    def monitor() -> None:
        """Dashboard figures, readiness and metrics, as operators see them."""

    @monitor.command("dashboard")
    @click.pass_obj
    def dashboard_command(obj) -> None:
        """Print the dashboard snapshot (the JSON of GET /api/v1/dashboard)."""
        from disbursement.services.monitoring.dashboard import snapshot_for

        click.echo(json.dumps(snapshot_for(obj.svc), indent=2))

    @monitor.command("ready")
    @click.pass_obj
    def ready_command(obj) -> None:
        """Run the readiness checks of /readyz; exit 4 when one fails."""
        from disbursement.services.monitoring import readiness

        checks = readiness.check(obj.svc)
        for name, result in checks.items():
            click.echo(f"{name:<11} {'ok' if result['ok'] else 'FAIL':<5} {result['detail']}")
        if not all(r["ok"] for r in checks.values()):
            sys.exit(EXIT_NOT_READY)

    @monitor.command("metrics")
    @click.pass_obj
    def metrics_command(obj) -> None:
        """Print what /metrics would serve (all processes' files in multiprocess mode)."""
        metrics_dir = obj.svc.settings.metrics_dir
        click.echo(generate_latest(scrape_registry(
            obj.svc, str(metrics_dir) if metrics_dir else None)).decode(), nl=False)
