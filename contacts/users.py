"""Users of the REST API and the console: a name, a role and the hash of one bearer token.

Theory of operation: a token is ``secrets.token_urlsafe(32)`` (256 random bits), shown once when the
user is created or the token rotated, and stored only as ``"sha256:<hex>"`` in ``api_users``.
A slow password hash (bcrypt, scrypt) protects *guessable* secrets against an offline attack on a
stolen table; a 256-bit random token cannot be guessed, so one SHA-256 is enough, and it lets
:meth:`UserStore.authenticate` find the user with one probe of the unique index on ``token_hash``
(no per-user salt to try). The lookup compares hashes inside the database, so its timing tells an
attacker nothing about the token.

Successful lookups are cached in the process for ``cache_seconds`` (default 30): a request is not a
database round trip, and a user disabled (or a token rotated) by another process stops working
within that time; in this process at once. Unknown tokens are never cached, so a new user works
immediately.

Every change (create, disable, rotate) writes an ``audit_log`` row in the same transaction; the
token and its hash never go to the log.

Example::

    users = UserStore(contact_store.sessions)
    user, token = await users.create("anna", Role.OPERATOR, operator="op1001", by="admin")
    print(token)                                  # once; only the hash is kept
    assert (await users.authenticate(token)).name == "anna"
    await users.disable("anna", by="admin")
"""

from __future__ import annotations

import enum
import hashlib
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from contacts.models import ApiUser, AuditEntry
from contacts.records import require_aware

Clock = Callable[[], datetime]
#: the built-in principal of the settings' admin token; no stored user may take its name
RESERVED_NAMES = frozenset({"admin"})
#: tokens longer than this are refused before hashing (ours are 43 characters)
MAX_TOKEN_LENGTH = 256
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")
_OPERATOR = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
#: a cache bigger than this is emptied rather than scanned (only valid tokens enter it)
_CACHE_LIMIT = 10_000


class Role(enum.StrEnum):
    """What a user may do; ``api_users.role`` has a CHECK constraint on exactly these."""

    ADMIN = "admin"
    SUPERVISOR = "supervisor"
    OPERATOR = "operator"


class UserError(ValueError):
    """Base of the user store's errors: the request cannot be done (ours, never the database's)."""


class UnknownUser(UserError, LookupError):
    def __init__(self, name: str) -> None:
        super().__init__(f"no user {name!r}")


class UserExists(UserError):
    def __init__(self, name: str) -> None:
        super().__init__(f"user {name!r} exists already")


class UserDisabled(UserError):
    def __init__(self, name: str) -> None:
        super().__init__(f"user {name!r} is disabled")


def utc_now() -> datetime:
    return datetime.now(UTC)


def new_token() -> str:
    return secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    """What ``api_users.token_hash`` holds for ``token`` (see the module docstring for why SHA-256)."""
    return "sha256:" + hashlib.sha256(token.encode()).hexdigest()


def check_user(name: str, role: Role | str, operator: str | None) -> Role:
    """Validate a new user's fields; the role as :class:`Role`. Raises :class:`UserError`."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise UserError("name: 1 to 64 letters, digits, '.', '_', '@' or '-', starting with a letter or digit")
    if name.lower() in RESERVED_NAMES:
        raise UserError(f"name {name!r} is reserved for the settings' admin token")
    try:
        parsed = Role(role)
    except ValueError:
        raise UserError(f"role must be one of: {', '.join(r.value for r in Role)}") from None
    if parsed is Role.OPERATOR:
        if operator is None or not _OPERATOR.fullmatch(operator):
            raise UserError("an operator user needs the operator id of their softphone (operator: op1001)")
    elif operator is not None:
        raise UserError(f"only operator users have an operator id, not {parsed.value} users")
    return parsed


@dataclass(frozen=True, kw_only=True, slots=True)
class UserRecord:
    name: str
    role: Role
    operator: str | None
    created_at: datetime
    disabled_at: datetime | None

    @property
    def active(self) -> bool:
        return self.disabled_at is None

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "role": self.role.value,
            "operator": self.operator,
            "created_at": self.created_at.isoformat(),
            "disabled_at": None if self.disabled_at is None else self.disabled_at.isoformat(),
        }


class UserStore:
    """API users on a shared session factory (``ContactStore.sessions``); see the module docstring."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        *,
        clock: Clock = utc_now,
        cache_seconds: float = 30.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._sessions = sessions
        self._clock = clock
        self.cache_seconds = cache_seconds
        self._monotonic = monotonic
        self._cache: dict[str, tuple[UserRecord, float]] = {}

    async def create(
        self, name: str, role: Role | str, *, operator: str | None = None, by: str
    ) -> tuple[UserRecord, str]:
        """A new user and their token (the only time it is seen). Raises :class:`UserError`."""
        parsed = check_user(name, role, operator)
        token = new_token()
        now = require_aware("now", self._clock())
        row = ApiUser(
            name=name,
            role=parsed.value,
            token_hash=hash_token(token),
            operator=operator,
            created_at=now,
            disabled_at=None,
        )
        try:
            async with self._sessions.begin() as session:
                if await session.get(ApiUser, name) is not None:
                    raise UserExists(name)
                session.add(row)
                _audit(session, now, by, "user.create", name, {"role": parsed.value, "operator": operator})
        except IntegrityError:  # two creations racing for the same name
            raise UserExists(name) from None
        return _record(row), token

    async def list(self) -> list[UserRecord]:
        """Every user, disabled ones included, by name."""
        async with self._sessions() as session:
            return [_record(row) for row in await session.scalars(select(ApiUser).order_by(ApiUser.name))]

    async def get(self, name: str) -> UserRecord | None:
        async with self._sessions() as session:
            row = await session.get(ApiUser, name)
            return None if row is None else _record(row)

    async def disable(self, name: str, *, by: str) -> UserRecord:
        """Refuse the user's token from now on (other processes: within ``cache_seconds``).

        Idempotent: disabling again keeps the first time. Raises :class:`UnknownUser`.
        """
        now = require_aware("now", self._clock())
        async with self._sessions.begin() as session:
            row = await session.get(ApiUser, name, with_for_update=True)
            if row is None:
                raise UnknownUser(name)
            if row.disabled_at is None:
                row.disabled_at = now
                _audit(session, now, by, "user.disable", name, {})
            record = _record(row)
        self._forget(name)
        return record

    async def rotate(self, name: str, *, by: str) -> tuple[UserRecord, str]:
        """A new token for the user; the old one stops working. Raises :class:`UnknownUser` or
        :class:`UserDisabled` (a disabled user gets no new token)."""
        token = new_token()
        now = require_aware("now", self._clock())
        async with self._sessions.begin() as session:
            row = await session.get(ApiUser, name, with_for_update=True)
            if row is None:
                raise UnknownUser(name)
            if row.disabled_at is not None:
                raise UserDisabled(name)
            row.token_hash = hash_token(token)
            _audit(session, now, by, "user.rotate", name, {})
            record = _record(row)
        self._forget(name)
        return record, token

    async def authenticate(self, token: str) -> UserRecord | None:
        """The active user holding ``token``; ``None`` for an unknown, rotated or disabled one."""
        if not token or len(token) > MAX_TOKEN_LENGTH:
            return None
        key = hash_token(token)
        cached = self._cache.get(key)
        now = self._monotonic()
        if cached is not None:
            if cached[1] > now:
                return cached[0]
            del self._cache[key]
        async with self._sessions() as session:
            row = await session.scalar(select(ApiUser).where(ApiUser.token_hash == key))
            if row is None or row.disabled_at is not None:
                return None
            record = _record(row)
        if len(self._cache) >= _CACHE_LIMIT:
            self._cache.clear()
        self._cache[key] = (record, now + self.cache_seconds)
        return record

    def _forget(self, name: str) -> None:
        for key in [key for key, (record, _) in self._cache.items() if record.name == name]:
            del self._cache[key]


def _record(row: ApiUser) -> UserRecord:
    return UserRecord(
        name=row.name,
        role=Role(row.role),
        operator=row.operator,
        created_at=row.created_at,
        disabled_at=row.disabled_at,
    )


def _audit(session: AsyncSession, at: datetime, by: str, action: str, subject: str, detail: dict[str, Any]) -> None:
    session.add(AuditEntry(at=at, actor=by[:64], action=action, subject=subject, detail=detail))


__all__ = [
    "RESERVED_NAMES",
    "Role",
    "UnknownUser",
    "UserDisabled",
    "UserError",
    "UserExists",
    "UserRecord",
    "UserStore",
    "check_user",
    "hash_token",
    "new_token",
]
