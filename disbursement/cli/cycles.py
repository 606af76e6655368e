"""From the registry extract to released money: importing households,
planning a cycle, and the batches' maker-checker path (submit, approve,
reject, release)."""
from __future__ import annotations

import csv
import json
from dataclasses import asdict
from pathlib import Path

import click

from disbursement.cli.context import EXIT_INPUT, Ctx, domain_call, fail, progress
from disbursement.domain.money import format_units
from disbursement.services.batches import approval as batches
from disbursement.services.batches import queries as batch_queries
from disbursement.services.cycles import planning
from disbursement.services.registry import importing as registry_service


@click.group()
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
    actor = obj.actor()
    with file.open("rb") as stream, progress(None, "validating") as bar:
        try:
            result = registry_service.import_households(obj.svc, stream, file.name, actor,
                                                        valid_rows_only, progress=bar.update)
        except ValueError as exc:
            fail(str(exc), EXIT_INPUT)
    click.echo(json.dumps(asdict(result)))
    if result.rows_invalid and result.status != "duplicate":
        target = errors_out or file.with_suffix(".errors.csv")
        with obj.svc.uow() as session, target.open("w", newline="", encoding="utf-8") as out:
            csv.writer(out).writerows(registry_service.error_report_rows(session, result.import_id))
        click.echo(f"{result.rows_invalid} bad row(s); error report: {target}", err=True)
    if result.status == "rejected":
        fail("nothing imported: the file has errors "
             "(use --valid-rows-only to import the valid rows)", EXIT_INPUT)


@click.group()
def cycle() -> None:
    """Monthly cycles."""


@cycle.command("plan")
@click.option("--program", required=True)
@click.option("--period", required=True, help="YYYY-MM")
@click.pass_obj
def cycle_plan(obj: Ctx, program: str, period: str) -> None:
    """Compute entitlements, create instructions, route and batch them."""
    actor = obj.actor()
    with progress(None, "planning") as bar:
        result = domain_call(lambda: planning.plan_cycle(obj.svc, program, period, actor,
                                                         progress=bar.update))
    click.echo(json.dumps(asdict(result)))


@click.group()
def batch() -> None:
    """Batches: submit, approve, reject, release."""


@batch.command("list")
@click.option("--status")
@click.pass_obj
def batch_list(obj: Ctx, status: str | None) -> None:
    with obj.svc.uow() as session:
        for b in batch_queries.all_batches(session, status):
            click.echo(f"{b.id:>6}  {b.partner_code:<10} {b.status:<10} {b.transfer_count:>7} "
                       f"{format_units(b.total_centimes):>16} {b.currency}  "
                       f"fees {format_units(b.fee_total_centimes):>12}  maker={b.created_by}")


@batch.command("submit")
@click.argument("batch_id", type=int)
@click.pass_obj
def batch_submit(obj: Ctx, batch_id: int) -> None:
    """Submit a batch for approval (maker)."""
    actor = obj.actor()
    result = domain_call(lambda: batches.submit(obj.svc, batch_id, actor))
    click.echo(f"batch {batch_id}: {result.status}")


@batch.command("approve")
@click.argument("batch_id", type=int)
@click.pass_obj
def batch_approve(obj: Ctx, batch_id: int) -> None:
    """Approve a batch (an approver who did not make it)."""
    actor = obj.actor()
    result = domain_call(lambda: batches.approve(obj.svc, batch_id, actor))
    click.echo(f"batch {batch_id}: {result.status}")


@batch.command("reject")
@click.argument("batch_id", type=int)
@click.option("--reason", required=True)
@click.pass_obj
def batch_reject(obj: Ctx, batch_id: int, reason: str) -> None:
    """Reject a batch with a reason; its transfers are cancelled."""
    actor = obj.actor()
    result = domain_call(lambda: batches.reject(obj.svc, batch_id, actor, reason))
    click.echo(f"batch {batch_id}: {result.status}")


@batch.command("release")
@click.argument("batch_id", type=int)
@click.pass_obj
def batch_release(obj: Ctx, batch_id: int) -> None:
    """Release an approved batch: outbox rows, then dispatch jobs."""
    actor = obj.actor()
    outbox = domain_call(lambda: batches.release(obj.svc, batch_id, actor))
    click.echo(f"batch {batch_id}: {len(outbox)} chunk(s) enqueued"
               + ("" if outbox else " (already released)"))
    obj.svc.queue.drain()
