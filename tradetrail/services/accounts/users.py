"""Users, passwords, API tokens and browser sessions.

Passwords are stored as argon2 hashes (pwdlib). Tokens and session secrets are random, handed out once and
stored only as SHA-256, so a copy of the database cannot be replayed as credentials. Failed logins are
recorded and rate-limited per username and per client address.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from pwdlib import PasswordHash
from sqlalchemy import bindparam, delete, func, select, update

from tradetrail.db.account_models import ApiToken, LoginFailure, WebSession
from tradetrail.db.models import User
from tradetrail.db.types import utcnow
from tradetrail.domain.errors import NotFound
from tradetrail.services.errors import AccountError, LoginRefused, TooManyAttempts

USERNAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{1,63}")  # fullmatch: ``$`` would let a trailing newline in
CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")  # refused in every name (PostgreSQL cannot even store NUL)
MIN_PASSWORD = 10
TOKEN_PREFIX = "tt_"
LOGIN_WINDOW = timedelta(minutes=15)
MAX_FAILURES_PER_USER = 5
MAX_FAILURES_PER_CLIENT = 20

_hasher = PasswordHash.recommended()
# Verifying against this when the user does not exist keeps "no such user" as slow as "wrong password".
_DUMMY_HASH = _hasher.hash("not a password of anyone")


@dataclass(frozen=True)
class Principal:
    """Who a request acts for, and how it proved it (``token`` or ``session``)."""

    user_id: int
    username: str
    via: str
    csrf_hash: str | None = None


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise AccountError(f"the password must have at least {MIN_PASSWORD} characters")
    if len(password) > 1024:
        raise AccountError("the password must have at most 1024 characters")


def create_user(app, username: str, password: str | None) -> dict:
    """A new user; without a password it can only use API tokens."""
    if not USERNAME.fullmatch(username or ""):
        raise AccountError("the user name must be 2–64 letters, digits, '_', '.' or '-', starting with a letter "
                           "or digit")
    if password is not None:
        _check_password(password)
    with app.Session() as s:
        if s.scalar(select(User.id).where(User.username == username)) is not None:
            raise AccountError(f"a user named {username!r} exists")
        user = User(username=username, password_hash=_hasher.hash(password) if password else None)
        s.add(user)
        s.commit()
        return {"id": user.id, "username": user.username, "has_password": password is not None}


def set_password(app, username: str, password: str) -> None:
    _check_password(password)
    with app.Session() as s:
        user = s.scalar(select(User).where(User.username == username))
        if user is None:
            raise NotFound(f"no user named {username!r}")
        user.password_hash = _hasher.hash(password)
        # a new password ends every browser session of the old one
        s.execute(update(WebSession).where(WebSession.user_id == user.id, WebSession.revoked_at.is_(None))
                  .values(revoked_at=utcnow()))
        s.commit()


def give_password_if_none(app, username: str) -> str | None:
    """A random password for ``username`` if it has none yet (the demo user on a fresh install), returned once
    so ``tradetrail init`` can print it; None when the user already has one (never a second, never a default).

    One conditional UPDATE: two inits racing give the user exactly one password, and only one prints it."""
    password = secrets.token_urlsafe(15)  # 20 characters, ~120 bits
    with app.Session() as s:
        done = s.execute(update(User).where(User.username == username, User.password_hash.is_(None))
                         .values(password_hash=_hasher.hash(password)))
        s.commit()
    return password if done.rowcount == 1 else None


def _failures_since(s, column, value: str, since: datetime) -> tuple[int, datetime | None]:
    count, oldest = s.execute(select(func.count(), func.min(LoginFailure.at))
                              .where(column == value, LoginFailure.at >= since)).one()
    return count, oldest


def check_password_login(app, username: str, password: str, client: str) -> Principal:
    """The user if the password is right; ``TooManyAttempts`` before even checking when rate-limited.

    A name with a control character is bad input (``AccountError``), not a failed login: no user can have
    one, and a NUL could not even be looked up in PostgreSQL."""
    if CONTROL.search(username or ""):
        raise AccountError("the user name must not contain control characters")
    now = utcnow()
    username, client = (username or "")[:64], (client or "unknown")[:64]
    with app.Session() as s:
        for column, value, limit in ((LoginFailure.username, username, MAX_FAILURES_PER_USER),
                                     (LoginFailure.client, client, MAX_FAILURES_PER_CLIENT)):
            count, oldest = _failures_since(s, column, value, now - LOGIN_WINDOW)
            if count >= limit:
                wait = int((oldest + LOGIN_WINDOW - now).total_seconds()) + 1
                raise TooManyAttempts(max(wait, 1))
        user = s.scalar(select(User).where(User.username == username))
        stored = user.password_hash if user is not None and user.password_hash else _DUMMY_HASH
        ok = _hasher.verify(password or "", stored) and user is not None and user.password_hash is not None
        if not ok:
            s.add(LoginFailure(username=username, client=client, at=now))
            s.execute(delete(LoginFailure).where(LoginFailure.at < now - 2 * LOGIN_WINDOW))
            s.commit()
            raise LoginRefused("wrong user name or password")
        s.execute(delete(LoginFailure).where(LoginFailure.username == username))
        s.commit()
        return Principal(user.id, user.username, "password")


def start_session(app, user_id: int) -> tuple[str, str, datetime]:
    """A new browser session: (session secret for the cookie, CSRF token, expiry)."""
    secret, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    expires = utcnow() + timedelta(seconds=app.settings.session_ttl_s)
    with app.Session() as s:
        s.add(WebSession(user_id=user_id, session_hash=sha256(secret), csrf_hash=sha256(csrf), expires_at=expires))
        s.commit()
    return secret, csrf, expires


def end_session(app, secret: str) -> None:
    with app.Session() as s:
        s.execute(update(WebSession).where(WebSession.session_hash == sha256(secret))
                  .values(revoked_at=utcnow()))
        s.commit()


def principal_for_session(app, secret: str) -> Principal | None:
    now = utcnow()
    with app.Session() as s:
        row = s.execute(select(WebSession.user_id, WebSession.csrf_hash, WebSession.expires_at,
                               WebSession.revoked_at, User.username)
                        .join(User, User.id == WebSession.user_id)
                        .where(WebSession.session_hash == sha256(secret))).first()
    if row is None or row.revoked_at is not None or row.expires_at <= now:
        return None
    return Principal(row.user_id, row.username, "session", csrf_hash=row.csrf_hash)


def renew_csrf(app, secret: str) -> str | None:
    """A new CSRF token for a live session whose browser lost the old one (only its hash is stored, so a page
    cannot show it again); None if the session is gone. The old token stops working."""
    csrf = secrets.token_urlsafe(32)
    with app.Session() as s:
        done = s.execute(update(WebSession).where(WebSession.session_hash == sha256(secret),
                                                  WebSession.revoked_at.is_(None), WebSession.expires_at > utcnow())
                         .values(csrf_hash=sha256(csrf)))
        s.commit()
    return csrf if done.rowcount == 1 else None


def csrf_matches(principal: Principal, token: str | None) -> bool:
    return bool(token) and principal.csrf_hash is not None and hmac.compare_digest(sha256(token), principal.csrf_hash)


def create_token(app, username: str, name: str = "cli") -> dict:
    """A new API token for ``username``. The token itself is in the answer and nowhere else, ever."""
    name = (name or "").strip()
    if not 1 <= len(name) <= 100:
        raise AccountError("the token name must have 1–100 characters")
    if CONTROL.search(name):
        raise AccountError("the token name must not contain control characters")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    with app.Session() as s:
        user = s.scalar(select(User).where(User.username == username))
        if user is None:
            raise NotFound(f"no user named {username!r}")
        row = ApiToken(user_id=user.id, name=name, token_hash=sha256(token), prefix=token[:10])
        s.add(row)
        s.commit()
        return {"id": row.id, "name": name, "token": token, "prefix": row.prefix,
                "created_at": row.created_at.isoformat()}


def list_tokens(app, user_id: int) -> list[dict]:
    with app.Session() as s:
        rows = s.scalars(select(ApiToken).where(ApiToken.user_id == user_id).order_by(ApiToken.id)).all()
        return [_token_dict(r) for r in rows]


def _token_dict(r: ApiToken) -> dict:
    return {"id": r.id, "name": r.name, "prefix": r.prefix, "created_at": r.created_at.isoformat(),
            "last_used_at": r.last_used_at.isoformat() if r.last_used_at else None,
            "revoked_at": r.revoked_at.isoformat() if r.revoked_at else None}


def revoke_token(app, user_id: int, token_id: int) -> dict:
    with app.Session() as s:
        row = s.get(ApiToken, token_id)
        if row is None or row.user_id != user_id:
            raise NotFound(f"no token {token_id}")
        if row.revoked_at is None:
            row.revoked_at = utcnow()
            s.commit()
        return _token_dict(row)


_TOUCH_EVERY = timedelta(minutes=1)


def principal_for_token(app, token: str) -> Principal | None:
    """The token's user, if the token exists and is not revoked (``last_used_at`` kept to the minute).

    Runs on every API request, so it is one Core query (no ORM session) and rarely a write."""
    if not token.startswith(TOKEN_PREFIX) or len(token) > 200:
        return None
    with app.engine.connect() as conn:
        row = conn.execute(_TOKEN_QUERY, {"h": sha256(token)}).first()
        if row is None or row.revoked_at is not None:
            return None
        now = utcnow()
        if row.last_used_at is None or now - row.last_used_at > _TOUCH_EVERY:
            conn.execute(update(ApiToken).where(ApiToken.id == row.id).values(last_used_at=now))
            conn.commit()
    return Principal(row.user_id, row.username, "token")


_TOKEN_QUERY = (select(ApiToken.id, ApiToken.user_id, ApiToken.revoked_at, ApiToken.last_used_at, User.username)
                .join(User, User.id == ApiToken.user_id).where(ApiToken.token_hash == bindparam("h")))
