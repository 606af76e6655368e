"""Partner operations (issue 3): the outbox of dispatch work, its dead
letters, and each partner's circuit breaker."""
from __future__ import annotations

import click

from disbursement.cli.context import Ctx, domain_call
from disbursement.services.dispatch import chunks as dispatch
from disbursement.services.dispatch import dead_letters
from disbursement.services.dispatch.partner_health import breaker_state


@click.group()
def outbox() -> None:
    """The outbox of dispatch work."""


@outbox.command("sweep")
@click.pass_obj
def outbox_sweep(obj: Ctx) -> None:
    """Re-enqueue every pending outbox item (after Redis lost its jobs)."""
    ids = dispatch.sweep(obj.svc)
    click.echo(f"{len(ids)} pending item(s) enqueued")
    obj.svc.queue.drain()


@click.group()
def deadletters() -> None:
    """Dispatch work whose retries are spent."""


@deadletters.command("list")
@click.pass_obj
def deadletters_list(obj: Ctx) -> None:
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
def deadletters_retry(obj: Ctx, outbox_id: int) -> None:
    """Put a dead letter back in the outbox and dispatch it (audited)."""
    actor = obj.actor()
    domain_call(lambda: dead_letters.retry(obj.svc, outbox_id, actor))
    click.echo(f"dead letter {outbox_id}: pending again, enqueued")
    obj.svc.queue.drain()


@click.command()
@click.pass_obj
def breakers(obj: Ctx) -> None:
    """Each partner's circuit breaker (a partner not listed is closed)."""
    with obj.svc.uow() as session:
        views = breaker_state(session)
    for code in sorted(obj.svc.partners):
        view = views.get(code)
        click.echo(f"{code:<10} {view.state if view else 'closed':<10} "
                   f"failures {view.consecutive_failures if view else 0}")
