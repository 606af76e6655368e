"""Metrics and dashboard (issue 5): `disburse monitor ...` and the RQ worker's
metrics files."""
from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager

import click
from prometheus_client import generate_latest, multiprocess

from disbursement.cli.context import EXIT_CHECK_FAILED, Ctx
from disbursement.services.monitoring import readiness
from disbursement.services.monitoring.dashboard import snapshot_for
from disbursement.settings import Settings
from disbursement.web.scrape import scrape_registry

log = logging.getLogger(__name__)


@contextmanager
def worker_metrics(settings: Settings) -> Iterator[None]:
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
        multiprocess.mark_process_dead(os.getpid(), str(settings.metrics_dir))


@click.group()
def monitor() -> None:
    """Dashboard figures, readiness and metrics, as operators see them."""


@monitor.command("dashboard")
@click.pass_obj
def dashboard_command(obj: Ctx) -> None:
    """Print the dashboard snapshot (the JSON of GET /api/v1/dashboard)."""
    click.echo(json.dumps(snapshot_for(obj.svc), indent=2))


@monitor.command("ready")
@click.pass_obj
def ready_command(obj: Ctx) -> None:
    """Run the readiness checks of /readyz; exit 4 when one fails."""
    checks = readiness.check(obj.svc)
    for name, result in checks.items():
        click.echo(f"{name:<11} {'ok' if result['ok'] else 'FAIL':<5} {result['detail']}")
    if not all(r["ok"] for r in checks.values()):
        sys.exit(EXIT_CHECK_FAILED)


@monitor.command("metrics")
@click.pass_obj
def metrics_command(obj: Ctx) -> None:
    """Print what /metrics would serve (all processes' files in multiprocess mode)."""
    metrics_dir = obj.svc.settings.metrics_dir
    click.echo(generate_latest(scrape_registry(
        obj.svc, str(metrics_dir) if metrics_dir else None)).decode(), nl=False)
