"""`disburse`: the command line. Commands load input, call one service, and
map domain errors to a message and an exit code. They never commit.

This module is the root group: it holds the commands that run the service
itself (schema, worker, server, demo) and adds each area's groups, which their
own modules define. Shared pieces (the context object, exit codes, the
refusal mapping) are in `disbursement.cli.context`."""
from __future__ import annotations

import json
import sys

import click
from rq.serializers import JSONSerializer

from disbursement import demo as demo_module
from disbursement.cli import (
    cycles,
    files,
    observability,
    officers,
    operations,
    partners,
    recon,
    routing,
    simulators,
    transfers,
)
from disbursement.cli.context import EXIT_CHECK_FAILED, EXIT_INPUT, Ctx, fail
from disbursement.cli.observability import worker_metrics
from disbursement.db.migrate import upgrade
from disbursement.jobs.queue import QUEUE_NAME, RQJobQueue
from disbursement.jobs.worker import ServicesWorker
from disbursement.logs import configure


@click.group()
@click.option("--user", envvar="DISBURSE_USER", help="the officer this command acts as")
@click.pass_context
def main(ctx: click.Context, user: str | None) -> None:
    """Payment and benefit-disbursement orchestration."""
    configure()
    ctx.obj = Ctx(user)


@main.group()
def db() -> None:
    """Database schema."""


@db.command("upgrade")
@click.pass_obj
def db_upgrade(obj: Ctx) -> None:
    """Apply Alembic migrations up to head."""
    upgrade(obj.svc.engine)
    click.echo("database at head")


@main.command("worker")
@click.option("--burst", is_flag=True, help="exit when the queue is empty")
@click.pass_obj
def worker(obj: Ctx, burst: bool) -> None:
    """Run an RQ worker on REDIS_URL (it heartbeats every WORKER_TTL_SECONDS - 15)."""
    if not obj.svc.settings.redis_url:
        fail("REDIS_URL is not set: in the embedded mode jobs run in-process", EXIT_INPUT)
    queue = RQJobQueue(obj.svc.settings.redis_url)
    with worker_metrics(obj.svc.settings):
        # The worker runs jobs in this process with the services built above:
        # one set of metrics files per worker, where a forked work horse per
        # job would leave files per job.
        ServicesWorker([QUEUE_NAME], connection=queue.connection, serializer=JSONSerializer,
                       services=obj.svc).work(burst=burst, with_scheduler=True)


@main.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True)
@click.option("--demo", is_flag=True, help="load demo data and start partner simulators first")
@click.option("--households", default=2000, show_default=True, help="demo households")
@click.pass_obj
def serve(obj: Ctx, host: str, port: int, demo: bool, households: int) -> None:
    """Serve the console and API (embedded server; use gunicorn in production)."""
    demo_module.serve(host, port, with_demo=demo, households=households)


@main.command("demo")
@click.option("--households", default=2000, show_default=True)
@click.option("--seed", default=7, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="print one JSON summary")
def demo_command(households: int, seed: int, as_json: bool) -> None:
    """Run a whole cycle on a throwaway embedded database with simulators."""
    summary = demo_module.run_demo(households, seed=seed)
    if as_json:
        click.echo(json.dumps(summary))
    else:
        click.echo(json.dumps(summary, indent=2))
    if not summary["ledger_balanced"]:
        sys.exit(EXIT_CHECK_FAILED)


for area_group in (
    officers.users, officers.audit,
    cycles.registry, cycles.cycle, cycles.batch,
    transfers.transfer,
    partners.outbox, partners.deadletters, partners.breakers,
    recon.reconcile_command, recon.ledger, recon.exceptions_group, recon.expiry, recon.arrears,
    recon.report_command,
    files.files,
    routing.service_points, routing.routing,
    observability.monitor,
    simulators.simulator,
    operations.scheduler, operations.recover_command,
):
    main.add_command(area_group)


if __name__ == "__main__":
    main()
