"""Console administration: second factor enrolment (issue 5)."""
from __future__ import annotations

import click


def register(main: click.Group) -> None:
    """Adds this area's commands to `disburse`."""

    @main.commands["users"].command("totp-enrol")
    @click.argument("username")
    @click.pass_obj
    def totp_enrol(obj, username: str) -> None:
        """Give an officer a new TOTP secret and print its otpauth:// URI for an
        authenticator app (replaces any earlier secret). Run on the server by an
        operator, who already holds the data key; the enrolment is audited."""
        from disbursement.services.officers import sign_in as officers

        try:
            uri = officers.enrol_totp(obj.svc, username)
        except officers.UnknownOfficer as exc:
            click.echo(f"error: {exc}", err=True)
            raise SystemExit(2) from None
        click.echo(uri)
