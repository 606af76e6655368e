"""Running the service by itself (issue 10): `disburse scheduler`, and
`disburse recover`, the command an operator runs after any fault."""
from __future__ import annotations

import sys

import click

from disbursement.cli.context import EXIT_CHECK_FAILED, EXIT_INPUT, Ctx, fail, progress
from disbursement.jobs.scheduler import rq_scheduler
from disbursement.services.dispatch.recover import recover


@click.command("scheduler")
@click.pass_obj
def scheduler(obj: Ctx) -> None:
    """Run the scheduler: outbox sweeper, status queries of transfers in doubt,
    file collection, daily expiry (intervals: SWEEP_OUTBOX_EVERY_SECONDS,
    QUERY_IN_DOUBT_EVERY_SECONDS, COLLECT_FILES_EVERY_SECONDS, EXPIRY_DAILY_AT).
    Run one or more anywhere: one is active, the others stand by."""
    if not obj.svc.settings.redis_url:
        fail("REDIS_URL is not set: in the embedded mode `disburse serve` runs the schedule "
             "in-process", EXIT_INPUT)
    rq_scheduler(obj.svc).start()


@click.command("recover")
@click.option("--timeout", default=600, show_default=True,
              help="seconds to wait for the workers to run the jobs")
@click.pass_obj
def recover_command(obj: Ctx, timeout: int) -> None:
    """After any fault: ask partners about transfers in doubt, re-enqueue every
    pending outbox item (not yet due ones too), wait for the jobs, print counts."""
    with progress(None, "outbox items") as bar:
        report = recover(obj.svc, progress=bar.update, wait_seconds=timeout)
    doubt = report.in_doubt
    settled = ", ".join(f"{n} {state}" for state, n in sorted(doubt.settled.items())) or "none"
    click.echo(f"in doubt: {doubt.asked} transfer(s) asked, settled: {settled}, "
               f"{doubt.requeued} sent again")
    statuses = ", ".join(f"{n} {status}" for status, n in sorted(report.by_status.items()))
    click.echo(f"outbox: {report.enqueued} pending item(s) enqueued"
               + (f"; now {statuses}" if statuses else ""))
    if report.by_status.get("pending"):
        click.echo("pending items are waiting for their partner (backoff or breaker): "
                   "see `disburse breakers` and `disburse deadletters list`")
    if not report.drained:
        click.echo(f"error: the jobs did not all run within {timeout}s: is a `disburse worker` "
                   "running? (/readyz, `disburse monitor ready`)", err=True)
        sys.exit(EXIT_CHECK_FAILED)
