"""Reconciliation, ledger, exceptions, expiry and reports (issue 4).

    disburse reconcile --partner P --statement FILE [--format csv|camt053|camt054|mt940]
    disburse ledger check [--program P] [--period YYYY-MM] [--cycle ID] [--json] [--first N]
    disburse exceptions list|counts|show|resolve
    disburse expiry run [--as-of YYYY-MM-DD]
    disburse arrears list --program P
    disburse report KIND (--cycle ID | --program P --period YYYY-MM)
                         --format csv|xlsx|json --out FILE
"""
from __future__ import annotations

import json
import sys
from datetime import date
from pathlib import Path

import click

from disbursement.cli.context import EXIT_CHECK_FAILED, Ctx, domain_call
from disbursement.domain.money import format_units
from disbursement.domain.states import Role
from disbursement.services.ledger import books as ledger_books
from disbursement.services.ledger import postings as ledger_service
from disbursement.services.ledger import reports
from reconciliation import exceptions, reconcile, returns
from reconciliation import expiry as expiry_service
from reconciliation import policy as recon_policy
from reconciliation.readers import READERS

# Who may read the exceptions queue and the reports.
READER_ROLES = (Role.MAKER, Role.APPROVER, Role.AUDITOR)


def _as_of(value: str | None) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not YYYY-MM-DD") from None


@click.command("reconcile")
@click.option("--partner", required=True)
@click.option("--statement", "statement", required=True,
              type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--format", "format_name", default="csv", show_default=True,
              help=f"statement format ({', '.join(sorted(READERS))} and any reader registered)")
@click.pass_obj
def reconcile_command(obj: Ctx, partner: str, statement: Path, format_name: str) -> None:
    """Match a partner's statement against our transfers."""
    actor = obj.actor()
    with statement.open("rb") as stream:
        report = domain_call(lambda: reconcile.reconcile(
            obj.svc, partner, stream, statement.name, actor, format_name))
    click.echo(json.dumps(report.as_dict(), indent=2))


@click.group()
def ledger() -> None:
    """The double-entry ledger."""

@ledger.command("check")
@click.option("--program")
@click.option("--period", help="YYYY-MM")
@click.option("--cycle", "cycle_id", type=int, help="a cycle id (instead of program + period)")
@click.option("--json", "as_json", is_flag=True)
@click.option("--first", default=ledger_books.FIRST_REFERENCES, show_default=True,
              type=click.IntRange(min=0), help="references named per kind of disagreement")
@click.pass_obj
def ledger_check(obj: Ctx, program: str | None, period: str | None, cycle_id: int | None,
                 as_json: bool, first: int) -> None:
    """Prove released = paid + returned + outstanding (+ corrections) per cycle
    and partner, every posting balanced, the ledger agreeing with the
    transfers, and, transfer by transfer, the partners' books (what they
    confirmed, what their statements say) and our ledger agreeing with our
    states; exit 4 naming the difference (and the references) when not."""
    with obj.svc.uow() as session:
        if cycle_id is not None:
            where = domain_call(lambda: reports.scope(session, cycle_id))
            program, period = where.program, where.period
        report = ledger_service.check(session, program, period, first=first)
    if as_json:
        click.echo(json.dumps(report.as_dict(), indent=2))
    else:
        _print_ledger(report)
    if not report.balanced:
        sys.exit(EXIT_CHECK_FAILED)


@click.group("exceptions")
def exceptions_group() -> None:
    """The reconciliation exceptions queue."""

@exceptions_group.command("list")
@click.option("--type", "type_")
@click.option("--partner")
@click.option("--status", type=click.Choice(["expected", "open", "resolved",
                                             "reissue_requested"]))
@click.option("--after", default=0, show_default=True, help="keyset: last id seen")
@click.option("--limit", default=100, show_default=True)
@click.pass_obj
def exceptions_list(obj: Ctx, type_, partner, status, after: int, limit: int) -> None:
    """One page of exceptions (JSON lines), then the `--after` of the next."""
    actor = obj.actor()
    actor.require(*READER_ROLES)
    with obj.svc.uow() as session:
        page, next_after = exceptions.list_exceptions(
            session, type=type_, partner=partner, status=status, after=after, limit=limit)
    for item in page:
        click.echo(json.dumps(item.as_dict()))
    click.echo(json.dumps({"next_after": next_after}), err=True)

@exceptions_group.command("counts")
@click.option("--partner")
@click.option("--status")
@click.pass_obj
def exceptions_counts(obj: Ctx, partner, status) -> None:
    """Exceptions by type: count and signed amount."""
    obj.actor().require(*READER_ROLES)
    with obj.svc.uow() as session:
        click.echo(json.dumps(exceptions.counts_by_type(session, partner=partner,
                                                        status=status), indent=2))

@exceptions_group.command("resolve")
@click.argument("exception_id", type=int)
@click.option("--kind", required=True,
              type=click.Choice(["write_off", "correction_posting", "reissue", "chase_partner"]))
@click.option("--reason", required=True)
@click.option("--amount-centimes", type=int, help="signed amount of a correction posting")
@click.option("--program", help="for an exception that concerns no transfer")
@click.option("--period", help="for an exception that concerns no transfer")
@click.pass_obj
def exceptions_resolve(obj: Ctx, exception_id: int, kind: str, reason: str,
                       amount_centimes: int | None, program, period) -> None:
    """Resolve one exception (approver), audited."""
    actor = obj.actor()
    view = domain_call(lambda: exceptions.resolve(
        obj.svc, exception_id, actor, kind, reason, amount_centimes=amount_centimes,
        program=program, period=period))
    click.echo(json.dumps(view.as_dict(), indent=2))


@click.group()
def expiry() -> None:
    """Transfers not collected in time."""

@expiry.command("run")
@click.option("--as-of", help="YYYY-MM-DD (default: today, UTC)")
@click.pass_obj
def expiry_run(obj: Ctx, as_of: str | None) -> None:
    """Expire transfers older than their program's window (also the daily job)."""
    actor = obj.actor()
    report = expiry_service.run(obj.svc, actor, _as_of(as_of))
    click.echo(json.dumps(report.as_dict()))


@click.group()
def arrears() -> None:
    """Households whose transfer came back."""

@arrears.command("list")
@click.option("--program", required=True)
@click.pass_obj
def arrears_list(obj: Ctx, program: str) -> None:
    """Arrears not settled yet, and whether the program pays them."""
    with obj.svc.uow() as session:
        due = returns.arrears_due(session, program)
    policy = recon_policy.program(obj.svc.programs, program)
    click.echo(json.dumps({"program": program, "pay_arrears": policy.pay_arrears,
                           "arrears": due}, indent=2))


@click.command("report")
@click.argument("kind", type=click.Choice(["batch", "partner", "cycle", "region"]))
@click.option("--cycle", "cycle_id", type=int)
@click.option("--program")
@click.option("--period")
@click.option("--format", "fmt", type=click.Choice(["csv", "xlsx", "json"]), default="csv",
              show_default=True)
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True)
@click.option("--as-of", help="ageing seen on this day (default today)")
@click.pass_obj
def report_command(obj: Ctx, kind: str, cycle_id, program, period, fmt: str, out: Path,
                   as_of: str | None) -> None:
    """Counts and amounts by state, fees, exceptions by type, ageing."""
    obj.actor().require(*READER_ROLES)
    with obj.svc.uow() as session:
        where = domain_call(lambda: reports.scope(session, cycle_id, program, period))
        rows = reports.build(session, kind, where, _as_of(as_of))
    if fmt == "json":
        out.write_text(json.dumps(reports.as_json(kind, where, rows), indent=2))
    elif fmt == "csv":
        with out.open("w", newline="", encoding="utf-8") as fh:
            reports.write_csv(kind, rows, fh)
    else:
        with out.open("wb") as fh:
            reports.write_xlsx(kind, rows, fh)
    click.echo(f"{kind} report: {len(rows)} row(s) written to {out}")


def _print_ledger(report) -> None:
    if not report.cycles:
        click.echo("no batch released yet: nothing to balance")
    for c in report.cycles:
        mark = "ok" if c.balanced else "DIFFERENCE"
        click.echo(f"{c.program} {c.period} {c.partner:<10} released {format_units(c.released)} = "
                   f"paid {format_units(c.paid)} + returned {format_units(c.returned)} + "
                   f"outstanding {format_units(c.outstanding)} + corrections "
                   f"{format_units(c.corrections)}  {mark}")
        for d in c.differences:
            click.echo(f"    {d}")
    if report.unbalanced_postings:
        click.echo(f"unbalanced postings: {report.unbalanced_postings}")
    _print_books(report.books)


def _print_books(books: ledger_books.BooksReport) -> None:
    if books.agree:
        click.echo("partners' books: agree with our states and ledger")
        return
    click.echo("partners' books: DISAGREE")
    for partner, by_kind in sorted(books.counts.items()):
        for kind, count in sorted(by_kind.items()):
            click.echo(f"    {partner:<10} {kind}: {count}")
    for kind, references in books.first.items():
        total = books.by_kind()[kind]
        more = f" (and {total - len(references)} more)" if total > len(references) else ""
        click.echo(f"    {kind}: {' '.join(references)}{more}")
