"""Officers, their roles, passwords (argon2) and API tokens."""
from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import select
from sqlalchemy.orm import Session

from disbursement.db.models import ApiToken, User, utcnow
from disbursement.db.session import UnitOfWork
from disbursement.domain.errors import Refused, Unauthenticated
from disbursement.domain.states import Role
from disbursement.services.officers import audit

_hasher = PasswordHasher()


class AuthenticationFailed(Unauthenticated):
    """Raised when a username/password or token does not identify an active user."""


class Forbidden(Refused):
    """Raised when an authenticated user lacks the role a use case needs."""


@dataclass(frozen=True)
class Actor:
    username: str
    roles: frozenset[Role]

    def require(self, *roles: Role) -> None:
        if not self.roles & set(roles) and Role.ADMIN not in self.roles:
            needed = " or ".join(r.value for r in roles)
            raise Forbidden(f"user {self.username} needs the {needed} role")


SYSTEM = Actor("system", frozenset({Role.ADMIN}))


def _actor(user: User) -> Actor:
    return Actor(user.username, frozenset(Role(r) for r in user.roles.split(",") if r))


def create_user(session: Session, by: Actor, username: str, password: str,
                roles: list[Role], display_name: str | None = None) -> User:
    by.require(Role.ADMIN)
    user = User(username=username, display_name=display_name or username,
                password_hash=_hasher.hash(password), roles=",".join(r.value for r in roles))
    session.add(user)
    session.flush()
    audit.record(session, by.username, "user.create", "user", username,
                 {"roles": [r.value for r in roles]})
    return user


def add_user(uow: UnitOfWork, by: Actor, username: str, password: str,
             roles: list[Role]) -> None:
    """The use case behind `disburse users create`: one officer, audited, committed."""
    with uow() as session:
        create_user(session, by, username, password, roles)
        session.commit()


def is_first_user(uow: UnitOfWork) -> bool:
    """True while no officer exists: the very first one is created by the system."""
    with uow() as session:
        return not has_users(session)


def sign_in_for_token(uow: UnitOfWork, username: str, password: str,
                      ttl_seconds: int) -> tuple[Actor, str]:
    """The use case behind `POST /auth/tokens`: the officer and a new API token,
    committed; AuthenticationFailed when the username or password is wrong."""
    with uow() as session:
        actor = authenticate(session, username, password)
        token = issue_token(session, actor, ttl_seconds)
        session.commit()
    return actor, token


def authenticate(session: Session, username: str, password: str) -> Actor:
    user = session.execute(select(User).where(User.username == username)).scalar_one_or_none()
    if user is None or not user.active:
        raise AuthenticationFailed("unknown user or wrong password")
    try:
        _hasher.verify(user.password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        raise AuthenticationFailed("unknown user or wrong password") from None
    return _actor(user)


def issue_token(session: Session, actor: Actor, ttl_seconds: int) -> str:
    token = secrets.token_urlsafe(32)
    user_id = session.execute(select(User.id).where(User.username == actor.username)).scalar_one()
    session.add(ApiToken(token_hash=hashlib.sha256(token.encode()).hexdigest(), user_id=user_id,
                         expires_at=utcnow() + timedelta(seconds=ttl_seconds)))
    return token


def actor_for_token(session: Session, token: str) -> Actor:
    digest = hashlib.sha256(token.encode()).hexdigest()
    row = session.execute(select(ApiToken, User).join(User, User.id == ApiToken.user_id)
                          .where(ApiToken.token_hash == digest)).first()
    if row is None:
        raise AuthenticationFailed("invalid token")
    token_row, user = row
    expires = token_row.expires_at
    if expires.tzinfo is None:
        expires = expires.replace(tzinfo=utcnow().tzinfo)
    if expires < utcnow() or not user.active:
        raise AuthenticationFailed("token expired")
    return _actor(user)


def actor_by_name(session: Session, username: str) -> Actor:
    user = session.execute(select(User).where(User.username == username)).scalar_one_or_none()
    if user is None or not user.active:
        raise AuthenticationFailed(f"unknown user {username}")
    return _actor(user)


def has_users(session: Session) -> bool:
    """Whether any officer exists yet (the very first may be created without one)."""
    return session.execute(select(User.id).limit(1)).first() is not None
