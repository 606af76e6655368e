"""Partner operations: dead letters, breakers, cancellation, re-issue, and the
wallet simulator (issue 3)."""
from __future__ import annotations

import json

import click


def register(main: click.Group) -> None:
    """Adds this area's commands to `disburse`."""
    from connectors.simulators.wallet import wallet_command

    main.commands["simulator"].add_command(wallet_command, "wallet")
    transfer = main.commands["transfer"]
    transfer.add_command(transfer_cancel, "cancel")
    transfer.add_command(transfer_reissue, "reissue")
    main.add_command(deadletters, "deadletters")
    main.add_command(breakers, "breakers")


def _domain_call(fn):
    from disbursement.cli.main import _domain_call as call

    return call(fn)


@click.command()
@click.argument("reference")
@click.option("--reason", required=True, help="why the transfer is cancelled (audited)")
@click.pass_obj
def transfer_cancel(obj, reference: str, reason: str) -> None:
    """Cancel a transfer not yet collected; a sent one only when the partner confirms."""
    from disbursement.services.dispatch import cancellation

    actor = obj.actor()
    result = _domain_call(lambda: cancellation.cancel_transfer(obj.svc, reference, reason, actor))
    click.echo(json.dumps(result.__dict__))


@click.command()
@click.argument("references", nargs=-1, required=True)
@click.pass_obj
def transfer_reissue(obj, references: tuple[str, ...]) -> None:
    """Re-issue rejected transfers as new attempts to another covering partner,
    in new draft batches (maker-checker applies)."""
    from disbursement.services.batches import reissue

    actor = obj.actor()
    report = _domain_call(lambda: reissue.reissue_references(obj.svc, list(references), actor))
    click.echo(json.dumps(report.as_dict(), indent=2))


@click.group()
def deadletters() -> None:
    """Dispatch work whose retries are spent."""


@deadletters.command("list")
@click.pass_obj
def deadletters_list(obj) -> None:
    from disbursement.services.dispatch import dead_letters

    with obj.svc.uow() as session:
        letters = dead_letters.list_dead(session)
    if not letters:
        click.echo("no dead letters")
    for d in letters:
        click.echo(f"{d['id']:>6}  {d['partner']:<10} batch {d['batch_id']} chunk {d['chunk_no']}"
                   f"  {d['transfers']} transfer(s)  attempts {d['attempts']}  {d['last_error']}")


@deadletters.command("retry")
@click.argument("outbox_id", type=int)
@click.pass_obj
def deadletters_retry(obj, outbox_id: int) -> None:
    """Put a dead letter back in the outbox and dispatch it (audited)."""
    from disbursement.services.dispatch import dead_letters

    actor = obj.actor()
    _domain_call(lambda: dead_letters.retry(obj.svc, outbox_id, actor))
    click.echo(f"dead letter {outbox_id}: pending again, enqueued")
    obj.svc.queue.drain()


@click.command()
@click.pass_obj
def breakers(obj) -> None:
    """Each partner's circuit breaker (a partner not listed is closed)."""
    from disbursement.services.dispatch.partner_health import breaker_state

    with obj.svc.uow() as session:
        views = breaker_state(session)
    for code in sorted(obj.svc.partners):
        view = views.get(code)
        click.echo(f"{code:<10} {view.state if view else 'closed':<10} "
                   f"failures {view.consecutive_failures if view else 0}")
