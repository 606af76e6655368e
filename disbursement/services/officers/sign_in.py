"""Console sign-in and the approvers' second factor.

Failed logins are counted per username (known or not, so a lockout tells
nothing about which usernames exist) and lock the name for a while after
too many. An approver confirms each decision with their password or a TOTP
code; the TOTP secret is sealed with the personal-data vault and the last
time step used is kept, so one code never confirms two decisions."""
from __future__ import annotations

import hmac
import time
from datetime import timedelta

import pyotp
from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from disbursement import crypto
from disbursement.db.models import User, as_utc, utcnow
from disbursement.db.models.console import LoginThrottle, OfficerTotp
from disbursement.db.rowcount import rows_changed
from disbursement.db.upsert import insert_ignore, upsert
from disbursement.domain.errors import Refused
from disbursement.services.officers import audit, users
from disbursement.services.ports import Services

TOTP_ISSUER = "Disbursement console"
TOTP_DIGITS = 6
TOTP_STEP_SECONDS = 30
# Codes one step either side of now are accepted: phones drift.
TOTP_WINDOW_STEPS = 1


class LoginLocked(users.AuthenticationFailed):
    """Raised when a username has failed too many times recently; the lock ends
    by itself after the configured number of seconds."""


class ConfirmationFailed(Refused):
    """Raised when the password or one-time code confirming a decision is wrong
    (or the code was already used)."""


class UnknownOfficer(LookupError):
    """Raised when enrolling a second factor for a username that does not exist."""


def login(svc: Services, username: str, password: str) -> users.Actor:
    """The officer behind a username and password, or AuthenticationFailed
    with the same message whichever part was wrong."""
    username = username.strip()[:64]
    settings = svc.settings
    with svc.uow() as session:
        if _locked(session, username):
            raise LoginLocked("too many failed sign-ins for this username: try again later")
        try:
            actor = users.authenticate(session, username, password)
        except users.AuthenticationFailed:
            _count_failure(session, username, settings.login_max_failures,
                           settings.login_lock_seconds)
            session.commit()
            raise users.AuthenticationFailed("wrong username or password") from None
        session.execute(delete(LoginThrottle).where(LoginThrottle.username == username))
        audit.record(session, actor.username, "console.login", "user", actor.username)
        session.commit()
        return actor


def _count_failure(session: Session, username: str, max_failures: int, lock_seconds: int) -> None:
    now = utcnow()
    insert_ignore(session, LoginThrottle.__table__,
                  [{"username": username, "failures": 0, "updated_at": now}], key=["username"])
    failures = session.execute(
        update(LoginThrottle).where(LoginThrottle.username == username)
        .values(failures=LoginThrottle.failures + 1, updated_at=now)
        .returning(LoginThrottle.failures)).scalar_one()
    if failures >= max_failures:
        # The count starts again once the lock is over.
        session.execute(update(LoginThrottle).where(LoginThrottle.username == username).values(
            failures=0, locked_until=now + timedelta(seconds=lock_seconds)))
        audit.record(session, "system", "console.login_locked", "user", username,
                     {"failures": failures})


def enrol_totp(svc: Services, username: str) -> str:
    """Gives the officer a new TOTP secret (replacing any earlier one) and
    returns its otpauth:// URI for an authenticator app."""
    secret = pyotp.random_base32()
    with svc.uow() as session:
        user_id = session.execute(select(User.id)
                                  .where(User.username == username)).scalar_one_or_none()
        if user_id is None:
            raise UnknownOfficer(f"no officer named {username}")
        upsert(session, OfficerTotp.__table__, [{
            "user_id": user_id, "secret_sealed": svc.vault.seal({"totp": secret}),
            "last_step": 0, "enrolled_at": utcnow()}], key=["user_id"])
        audit.record(session, "system", "user.totp_enrol", "user", username)
        session.commit()
    return pyotp.TOTP(secret, digits=TOTP_DIGITS, interval=TOTP_STEP_SECONDS).provisioning_uri(
        name=username, issuer_name=TOTP_ISSUER)


def has_totp(svc: Services, username: str) -> bool:
    with svc.uow() as session:
        return session.execute(select(OfficerTotp.id).join(User, User.id == OfficerTotp.user_id)
                               .where(User.username == username)).first() is not None


def confirm(svc: Services, actor: users.Actor, proof: str) -> str:
    """Checks the password or TOTP code an officer typed to confirm a
    decision; returns which one it was ("totp" or "password")."""
    proof = (proof or "").strip()
    if not proof:
        raise ConfirmationFailed("confirm the decision with your password or one-time code")
    settings = svc.settings
    with svc.uow() as session:
        # Wrong confirmations count with failed sign-ins: the decision form is
        # no way around the lockout for guessing a password.
        if _locked(session, actor.username):
            raise ConfirmationFailed("too many failed attempts: try again later")
        if proof.isdigit() and len(proof) == TOTP_DIGITS and _use_totp(svc, session, actor, proof):
            session.commit()
            return "totp"
        try:
            users.authenticate(session, actor.username, proof)
        except users.AuthenticationFailed:
            _count_failure(session, actor.username, settings.login_max_failures,
                           settings.login_lock_seconds)
            session.commit()
            raise ConfirmationFailed("the password or one-time code is wrong (or the code was "
                                     "already used)") from None
        return "password"


def _locked(session: Session, username: str) -> bool:
    until = session.execute(select(LoginThrottle.locked_until).where(
        LoginThrottle.username == username)).scalar_one_or_none()
    return until is not None and as_utc(until) > utcnow()


def _use_totp(svc: Services, session: Session, actor: users.Actor, code: str) -> bool:
    row = session.execute(select(OfficerTotp).join(User, User.id == OfficerTotp.user_id)
                          .where(User.username == actor.username)).scalar_one_or_none()
    if row is None:
        return False
    totp = pyotp.TOTP(crypto.required(svc.vault.open(row.secret_sealed), "totp"),
                      digits=TOTP_DIGITS, interval=TOTP_STEP_SECONDS)
    now_step = int(time.time()) // TOTP_STEP_SECONDS
    for step in range(now_step - TOTP_WINDOW_STEPS, now_step + TOTP_WINDOW_STEPS + 1):
        if step > row.last_step and hmac.compare_digest(totp.at(step * TOTP_STEP_SECONDS), code):
            # Conditional: two requests racing with one code, only one wins.
            return rows_changed(session, update(OfficerTotp).where(
                OfficerTotp.id == row.id, OfficerTotp.last_step < step).values(last_step=step)) == 1
    return False
