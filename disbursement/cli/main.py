"""`disburse`: the command line. Commands load input, call one service, and
map domain errors to a message and an exit code. They never commit."""
from __future__ import annotations

import json
import os
import sys
from dataclasses import asdict
from pathlib import Path

import click

from disbursement import settings as settings_module
from disbursement.domain.money import format_units
from disbursement.domain.states import Role

EXIT_INPUT = 2
EXIT_REFUSED = 3
EXIT_CHECK_FAILED = 4


class Ctx:
    def __init__(self, user: str | None) -> None:
        self.user = user
        self._svc = None

    @property
    def svc(self):
        if self._svc is None:
            from disbursement.bootstrap import build
            from disbursement.jobs import tasks

            self._svc = build(settings_module.load())
            tasks.use(self._svc)
        return self._svc

    def actor(self):
        """The named user the command acts as; the password is asked (or read
        from DISBURSE_PASSWORD for scripts)."""
        from disbursement.services.officers import users

        if not self.user:
            raise click.UsageError("name the user you act as: --user NAME or DISBURSE_USER")
        password = os.environ.get("DISBURSE_PASSWORD")
        if password is None:
            password = click.prompt(f"password for {self.user}", hide_input=True, err=True)
        with self.svc.uow() as session:
            return users.authenticate(session, self.user, password)


def _fail(message: str, code: int = EXIT_REFUSED):
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


def _progress(total: int | None, label: str):
    from tqdm import tqdm

    return tqdm(total=total, desc=label, unit="row", disable=not sys.stderr.isatty(),
                file=sys.stderr, dynamic_ncols=True)


@click.group()
@click.option("--user", envvar="DISBURSE_USER", help="the officer this command acts as")
@click.pass_context
def main(ctx: click.Context, user: str | None) -> None:
    """Payment and benefit-disbursement orchestration."""
    from disbursement.logs import configure

    configure()
    ctx.obj = Ctx(user)


@main.group()
def db() -> None:
    """Database schema."""


@db.command("upgrade")
@click.pass_obj
def db_upgrade(obj: Ctx) -> None:
    """Apply Alembic migrations up to head."""
    from disbursement.db.migrate import upgrade

    upgrade(obj.svc.engine)
    click.echo("database at head")


@main.group()
def users() -> None:
    """Officers and their roles."""


@users.command("create")
@click.argument("username")
@click.option("--role", "roles", multiple=True, required=True,
              type=click.Choice([r.value for r in Role]))
@click.option("--password-env", default="NEW_USER_PASSWORD", show_default=True,
              help="environment variable holding the new user's password")
@click.pass_obj
def users_create(obj: Ctx, username: str, roles: tuple[str, ...], password_env: str) -> None:
    """Create an officer. The very first user may be created without --user."""
    from disbursement.services.officers import users as users_service

    password = os.environ.get(password_env) or click.prompt(
        f"password for {username}", hide_input=True, confirmation_prompt=True, err=True)
    actor = users_service.SYSTEM if users_service.is_first_user(obj.svc.uow) else obj.actor()
    users_service.add_user(obj.svc.uow, actor, username, password, [Role(r) for r in roles])
    click.echo(f"user {username} created with roles {', '.join(roles)}")


@main.group()
def registry() -> None:
    """The registry extract (RSU)."""


@registry.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--valid-rows-only", is_flag=True, help="import the valid rows of a file with errors")
@click.option("--errors-out", type=click.Path(dir_okay=False, path_type=Path),
              help="write the error report (CSV) here")
@click.pass_obj
def registry_import(obj: Ctx, file: Path, valid_rows_only: bool, errors_out: Path | None) -> None:
    """Import households from a CSV or JSON Lines file."""
    from disbursement.services.registry import importing as registry_service

    actor = obj.actor()
    with file.open("rb") as stream, _progress(None, "validating") as bar:
        try:
            result = registry_service.import_households(obj.svc, stream, file.name, actor,
                                                        valid_rows_only, progress=bar.update)
        except ValueError as exc:
            _fail(str(exc), EXIT_INPUT)
    click.echo(json.dumps(asdict(result)))
    if result.rows_invalid and result.status != "duplicate":
        target = errors_out or file.with_suffix(".errors.csv")
        import csv

        with obj.svc.uow() as session, target.open("w", newline="", encoding="utf-8") as out:
            csv.writer(out).writerows(registry_service.error_report_rows(session, result.import_id))
        click.echo(f"{result.rows_invalid} bad row(s); error report: {target}", err=True)
    if result.status == "rejected":
        _fail("nothing imported: the file has errors (use --valid-rows-only to import the valid rows)",
              EXIT_INPUT)


@main.group()
def cycle() -> None:
    """Monthly cycles."""


@cycle.command("plan")
@click.option("--program", required=True)
@click.option("--period", required=True, help="YYYY-MM")
@click.pass_obj
def cycle_plan(obj: Ctx, program: str, period: str) -> None:
    """Compute entitlements, create instructions, route and batch them."""
    from disbursement.services.cycles import planning

    actor = obj.actor()
    with _progress(None, "planning") as bar:
        result = _domain_call(lambda: planning.plan_cycle(obj.svc, program, period, actor,
                                                          progress=bar.update))
    click.echo(json.dumps(asdict(result)))


def _domain_call(fn):
    from disbursement.web.errors import STATUS_BY_ERROR

    handled = tuple(t for t, _, _ in STATUS_BY_ERROR)
    try:
        return fn()
    except handled as exc:
        _fail(str(exc))


@main.group()
def batch() -> None:
    """Batches: submit, approve, reject, release."""


@batch.command("list")
@click.option("--status")
@click.pass_obj
def batch_list(obj: Ctx, status: str | None) -> None:
    from sqlalchemy import select

    from disbursement.db.models import Batch

    with obj.svc.uow() as session:
        stmt = select(Batch).order_by(Batch.id)
        if status:
            stmt = stmt.where(Batch.status == status)
        for b in session.execute(stmt).scalars():
            click.echo(f"{b.id:>6}  {b.partner_code:<10} {b.status:<10} {b.transfer_count:>7} "
                       f"{format_units(b.total_centimes):>16} {b.currency}  "
                       f"fees {format_units(b.fee_total_centimes):>12}  maker={b.created_by}")


@batch.command("submit")
@click.argument("batch_id", type=int)
@click.pass_obj
def batch_submit(obj: Ctx, batch_id: int) -> None:
    """Submit a batch for approval (maker)."""
    from disbursement.services.batches import approval as batches

    actor = obj.actor()
    click.echo(f"batch {batch_id}: {_domain_call(lambda: batches.submit(obj.svc, batch_id, actor)).status}")


@batch.command("approve")
@click.argument("batch_id", type=int)
@click.pass_obj
def batch_approve(obj: Ctx, batch_id: int) -> None:
    """Approve a batch (an approver who did not make it)."""
    from disbursement.services.batches import approval as batches

    actor = obj.actor()
    click.echo(f"batch {batch_id}: {_domain_call(lambda: batches.approve(obj.svc, batch_id, actor)).status}")


@batch.command("reject")
@click.argument("batch_id", type=int)
@click.option("--reason", required=True)
@click.pass_obj
def batch_reject(obj: Ctx, batch_id: int, reason: str) -> None:
    """Reject a batch with a reason; its transfers are cancelled."""
    from disbursement.services.batches import approval as batches

    actor = obj.actor()
    result = _domain_call(lambda: batches.reject(obj.svc, batch_id, actor, reason))
    click.echo(f"batch {batch_id}: {result.status}")


@batch.command("release")
@click.argument("batch_id", type=int)
@click.pass_obj
def batch_release(obj: Ctx, batch_id: int) -> None:
    """Release an approved batch: outbox rows, then dispatch jobs."""
    from disbursement.services.batches import approval as batches

    actor = obj.actor()
    outbox = _domain_call(lambda: batches.release(obj.svc, batch_id, actor))
    click.echo(f"batch {batch_id}: {len(outbox)} chunk(s) enqueued"
               + ("" if outbox else " (already released)"))
    obj.svc.queue.drain()


@main.group()
def transfer() -> None:
    """Transfers."""


@transfer.command("show")
@click.argument("reference")
@click.pass_obj
def transfer_show(obj: Ctx, reference: str) -> None:
    """A transfer's state and timeline."""
    from disbursement.services.tracking.queries import transfer_view

    with obj.svc.uow() as session:
        view = transfer_view(session, reference)
    if view is None:
        _fail(f"no transfer with reference {reference}", EXIT_INPUT)
    click.echo(json.dumps(view, indent=2, ensure_ascii=False))


@main.group()
def audit() -> None:
    """The audit trail."""


@audit.command("verify")
@click.pass_obj
def audit_verify(obj: Ctx) -> None:
    """Walk the hash chain of the audit log."""
    from disbursement.services.officers import audit as audit_service

    with obj.svc.uow() as session:
        try:
            count = audit_service.verify(session)
        except audit_service.AuditChainBroken as exc:
            _fail(str(exc), EXIT_CHECK_FAILED)
    click.echo(f"audit chain intact: {count} entries")


@main.group()
def outbox() -> None:
    """The outbox of dispatch work."""


@outbox.command("sweep")
@click.pass_obj
def outbox_sweep(obj: Ctx) -> None:
    """Re-enqueue every pending outbox item (after Redis lost its jobs)."""
    from disbursement.services.dispatch import chunks as dispatch

    ids = dispatch.sweep(obj.svc)
    click.echo(f"{len(ids)} pending item(s) enqueued")
    obj.svc.queue.drain()


@main.command("worker")
@click.option("--burst", is_flag=True, help="exit when the queue is empty")
@click.pass_obj
def worker(obj: Ctx, burst: bool) -> None:
    """Run an RQ worker on REDIS_URL."""
    from rq import SimpleWorker
    from rq.serializers import JSONSerializer

    from disbursement.jobs.queue import QUEUE_NAME, RQJobQueue

    if not obj.svc.settings.redis_url:
        _fail("REDIS_URL is not set: in the embedded mode jobs run in-process", EXIT_INPUT)
    from disbursement.cli.observability import worker_metrics

    queue = RQJobQueue(obj.svc.settings.redis_url)
    with worker_metrics(obj.svc.settings):
        # SimpleWorker runs jobs in this process: one set of metrics files per
        # worker, where a forked work horse per job would leave files per job.
        SimpleWorker([QUEUE_NAME], connection=queue.connection, serializer=JSONSerializer).work(
            burst=burst, with_scheduler=True)


@main.group()
def simulator() -> None:
    """Partner simulators (separate processes speaking the real protocol)."""


def _mount_simulators() -> None:
    from connectors.simulators.rest import rest_command

    simulator.add_command(rest_command, "rest")


_mount_simulators()


def _mount_areas() -> None:
    from disbursement.cli import console, files, observability, partners, recon, routing

    for area in (recon, partners, files, routing, console, observability):
        area.register(main)


_mount_areas()


@main.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True)
@click.option("--demo", is_flag=True, help="load demo data and start partner simulators first")
@click.option("--households", default=2000, show_default=True, help="demo households")
@click.pass_obj
def serve(obj: Ctx, host: str, port: int, demo: bool, households: int) -> None:
    """Serve the console and API (embedded server; use gunicorn in production)."""
    from disbursement import demo as demo_module

    demo_module.serve(host, port, with_demo=demo, households=households)


@main.command("demo")
@click.option("--households", default=2000, show_default=True)
@click.option("--seed", default=7, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="print one JSON summary")
def demo_command(households: int, seed: int, as_json: bool) -> None:
    """Run a whole cycle on a throwaway embedded database with simulators."""
    from disbursement import demo as demo_module

    summary = demo_module.run_demo(households, seed=seed)
    if as_json:
        click.echo(json.dumps(summary))
    else:
        click.echo(json.dumps(summary, indent=2))
    if not summary["ledger_balanced"]:
        sys.exit(EXIT_CHECK_FAILED)


if __name__ == "__main__":
    main()
