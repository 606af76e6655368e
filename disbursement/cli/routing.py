"""Service points and routing explain (issue 3)."""
from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import click

from disbursement.bootstrap import UnknownPartner
from disbursement.cli.context import EXIT_INPUT, EXIT_REFUSED, Ctx, fail
from disbursement.domain.money import format_units
from disbursement.services.cycles import routing as routing_service
from disbursement.services.cycles import service_points as sp


@click.group("service-points")
def service_points() -> None:
    """Partners' cash service points: registry and daily load."""


@service_points.command("import")
@click.option("--partner", "partner_code", required=True)
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.pass_obj
def service_points_import(obj: Ctx, partner_code: str, file: Path) -> None:
    """Load (upsert) a partner's service points from its CSV file."""
    actor = obj.actor()
    with file.open("rb") as stream:
        try:
            result = sp.import_file(obj.svc, partner_code, stream, actor)
        except sp.ServicePointFileError as exc:
            for line, field, message in exc.errors:
                click.echo(f"line {line}, {field}: {message}", err=True)
            fail(f"{len(exc.errors)} error(s): nothing loaded", EXIT_INPUT)
        except (UnknownPartner, sp.NotACashPartner) as exc:
            fail(str(exc), EXIT_REFUSED)
    click.echo(json.dumps({"partner": result.partner, "rows": result.rows,
                           "created": result.created, "updated": result.updated}))


@service_points.command("load")
@click.option("--partner", "partner_code", required=True)
@click.option("--date", "day", required=True, type=click.DateTime(["%Y-%m-%d"]))
@click.option("--point", "point_code", help="one point only")
@click.pass_obj
def service_points_load(obj: Ctx, partner_code: str, day, point_code: str | None) -> None:
    """Planned pickups and collections per point on a day, against capacity."""
    the_day: date = day.date()
    with obj.svc.uow() as session:
        if point_code:
            try:
                views = [sp.point_load(session, point_code, the_day, partner_code)]
            except sp.ServicePointNotFound as exc:
                fail(str(exc), EXIT_INPUT)
        else:
            views = [v for v in sp.partner_load(session, partner_code, the_day)
                     if v["planned_transfers"] or v["collected_transfers"]]
    click.echo(f"{'point':<20} {'planned':>8} {'capacity':>8} {'collected':>9}  date {the_day}")
    for v in views:
        click.echo(f"{v['code']:<20} {v['planned_transfers']:>8} {v['capacity_transfers']:>8} "
                   f"{v['collected_transfers']:>9}" + ("" if v["open"] else "  (closed that day)"))


@click.group("routing")
def routing() -> None:
    """Why transfers went where they went."""


@routing.command("explain")
@click.argument("household_id")
@click.option("--period", help="YYYY-MM (default: the latest planned)")
@click.option("--program")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def routing_explain(obj: Ctx, household_id: str, period: str | None, program: str | None,
                    as_json: bool) -> None:
    """Say which rules were tried, which partners were skipped and why, and
    how the service point and pickup date were chosen."""
    with obj.svc.uow() as session:
        try:
            view = routing_service.explain(session, household_id, period, program)
        except routing_service.HouseholdNotFound as exc:
            fail(str(exc), EXIT_INPUT)
    if as_json:
        click.echo(json.dumps(view, indent=2, ensure_ascii=False))
        return
    if not view["instructions"]:
        fail(f"household {household_id} has no instruction"
              + (f" for {period}" if period else ""), EXIT_INPUT)
    for ins in view["instructions"]:
        click.echo(f"{household_id} {ins['program']} {ins['period']}: "
                   f"{format_units(ins['amount_centimes'])} {ins['currency']} -> "
                   f"{ins['partner'] or 'NOT ROUTED'} ({ins['reason']})")
        for step in ins["steps"]:
            click.echo(f"  - {step}")
        for t in ins["transfers"]:
            where = (f", service point {t['service_point']} from {t['pickup_from']}"
                     if t["service_point"] or t["pickup_from"] else "")
            click.echo(f"  transfer {t['reference']} (attempt {t['attempt']}, {t['status']}): "
                       f"{t['partner']} by {t['channel']}, fee {format_units(t['fee_centimes'])}"
                       f"{where}")
