"""Officers: accounts and roles, their second factor (issue 5), and the audit
trail of what they did."""
from __future__ import annotations

import os

import click

from disbursement.cli.context import EXIT_CHECK_FAILED, EXIT_INPUT, Ctx, fail
from disbursement.domain.states import Role
from disbursement.services.officers import audit as audit_service
from disbursement.services.officers import sign_in
from disbursement.services.officers import users as users_service


@click.group()
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
    password = os.environ.get(password_env) or click.prompt(
        f"password for {username}", hide_input=True, confirmation_prompt=True, err=True)
    actor = users_service.SYSTEM if users_service.is_first_user(obj.svc.uow) else obj.actor()
    users_service.add_user(obj.svc.uow, actor, username, password, [Role(r) for r in roles])
    click.echo(f"user {username} created with roles {', '.join(roles)}")


@users.command("totp-enrol")
@click.argument("username")
@click.pass_obj
def totp_enrol(obj: Ctx, username: str) -> None:
    """Give an officer a new TOTP secret and print its otpauth:// URI for an
    authenticator app (replaces any earlier secret). Run on the server by an
    operator, who already holds the data key; the enrolment is audited."""
    try:
        uri = sign_in.enrol_totp(obj.svc, username)
    except sign_in.UnknownOfficer as exc:
        fail(str(exc), EXIT_INPUT)
    click.echo(uri)


@click.group()
def audit() -> None:
    """The audit trail."""


@audit.command("verify")
@click.pass_obj
def audit_verify(obj: Ctx) -> None:
    """Walk the hash chain of the audit log."""
    with obj.svc.uow() as session:
        try:
            count = audit_service.verify(session)
        except audit_service.AuditChainBroken as exc:
            fail(str(exc), EXIT_CHECK_FAILED)
    click.echo(f"audit chain intact: {count} entries")
