"""File exchange with partners over SFTP (issue 3): collecting their files and listing them."""
from __future__ import annotations

import json
import sys

import click

from connectors.base import ConnectorError
from disbursement.cli.context import EXIT_REFUSED, Ctx
from disbursement.services.dispatch import file_collection
from disbursement.services.ports import JobName


@click.group()
def files() -> None:
    """Files exchanged with partners over SFTP (status, settlement, pain.002, camt.054)."""


@files.command("collect")
@click.option("--partner", "partner_code", default=None,
              help="One partner; default: every partner that exchanges files.")
@click.option("--enqueue", is_flag=True, help="Run as a job on the queue instead of here.")
@click.pass_obj
def collect(obj: Ctx, partner_code: str | None, enqueue: bool) -> None:
    """Collect new partner files, verify them, apply their statuses."""
    svc = obj.svc
    codes = [partner_code] if partner_code else file_collection.file_partners(svc)
    if enqueue:
        for code in codes:
            svc.queue.enqueue(JobName.COLLECT_PARTNER_FILES, code)
        click.echo(json.dumps({"enqueued": codes}))
        return
    reports, failed = [], False
    for code in codes:
        try:
            reports.append(file_collection.collect(svc, code).as_dict())
        except (ConnectorError, file_collection.NotAFilePartner, ValueError, LookupError) as exc:
            click.echo(f"error: {code}: {exc}", err=True)
            failed = True
    click.echo(json.dumps(reports, indent=2))
    if failed:
        sys.exit(EXIT_REFUSED)


@files.command("list")
@click.option("--partner", "partner_code", default=None)
@click.option("--rejected", is_flag=True, help="Only files refused (by us or by the partner).")
@click.pass_obj
def list_files(obj: Ctx, partner_code: str | None, rejected: bool) -> None:
    """Files collected from partners, with the reason a refused file was refused."""
    rows = file_collection.list_files(obj.svc, partner_code, rejected_only=rejected)
    for row in rows:
        line = (f"{row['received_at'][:19]}  {row['partner']:<10} {row['name']:<28} "
                f"{row['kind']:<14} {row['status']:<8} lines={row['lines']} "
                f"applied={row['applied']}")
        click.echo(line + (f"\n    {row['error']}" if row["error"] else ""))
    if not rows:
        click.echo("no files" + (" refused" if rejected else ""))
