"""One transfer at a time: its state and timeline, cancelling it, and
re-issuing rejected ones to another partner (issue 3)."""
from __future__ import annotations

import json

import click

from disbursement.cli.context import EXIT_INPUT, Ctx, domain_call, fail
from disbursement.services.batches import reissue
from disbursement.services.dispatch import cancellation
from disbursement.services.tracking.queries import transfer_view


@click.group()
def transfer() -> None:
    """Transfers."""


@transfer.command("show")
@click.argument("reference")
@click.pass_obj
def transfer_show(obj: Ctx, reference: str) -> None:
    """A transfer's state and timeline."""
    with obj.svc.uow() as session:
        view = transfer_view(session, reference)
    if view is None:
        fail(f"no transfer with reference {reference}", EXIT_INPUT)
    click.echo(json.dumps(view, indent=2, ensure_ascii=False))


@transfer.command("cancel")
@click.argument("reference")
@click.option("--reason", required=True, help="why the transfer is cancelled (audited)")
@click.pass_obj
def transfer_cancel(obj: Ctx, reference: str, reason: str) -> None:
    """Cancel a transfer not yet collected; a sent one only when the partner confirms."""
    actor = obj.actor()
    result = domain_call(lambda: cancellation.cancel_transfer(obj.svc, reference, reason, actor))
    click.echo(json.dumps(result.__dict__))


@transfer.command("reissue")
@click.argument("references", nargs=-1, required=True)
@click.pass_obj
def transfer_reissue(obj: Ctx, references: tuple[str, ...]) -> None:
    """Re-issue rejected transfers as new attempts to another covering partner,
    in new draft batches (maker-checker applies)."""
    actor = obj.actor()
    report = domain_call(lambda: reissue.reissue_references(obj.svc, list(references), actor))
    click.echo(json.dumps(report.as_dict(), indent=2))
