"""API users in the database, on SQLite and PostgreSQL (``store``): hashed tokens, roles, disable,
rotate, the short authentication cache, the audit rows, and the ``unico users`` command."""

from __future__ import annotations

import argparse
import io
import json
from datetime import UTC, datetime

import pytest
from sqlalchemy import select, text

from contacts import ContactStore
from contacts.models import ApiUser, AuditEntry
from contacts.users import Role, UnknownUser, UserDisabled, UserError, UserExists, UserStore, hash_token
from unico.api.users_cli import ROLES, add_users_parser, run_users

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


class Ticker:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


async def _audit(store: ContactStore) -> list[tuple[str, str, str | None, dict[str, object]]]:
    async with store.sessions() as session:
        rows = await session.execute(
            select(AuditEntry.actor, AuditEntry.action, AuditEntry.subject, AuditEntry.detail).order_by(AuditEntry.id)
        )
        return [(r.actor, r.action, r.subject, r.detail) for r in rows]


async def test_given_new_user_when_created_then_token_works_and_only_its_hash_is_stored(store: ContactStore) -> None:
    users = UserStore(store.sessions, clock=lambda: T0)

    user, token = await users.create("anna", Role.OPERATOR, operator="op1001", by="root")

    assert (user.name, user.role, user.operator, user.created_at, user.active) == (
        "anna",
        "operator",
        "op1001",
        T0,
        True,
    )
    assert len(token) >= 43
    assert await users.authenticate(token) == user
    async with store.sessions() as session:
        stored = (await session.execute(text("SELECT * FROM api_users"))).all()
    assert token not in str(stored)
    assert stored[0].token_hash == hash_token(token) and stored[0].token_hash.startswith("sha256:")
    assert await _audit(store) == [("root", "user.create", "anna", {"role": "operator", "operator": "op1001"})]


async def test_given_users_when_listed_then_every_one_by_name_with_disabled_ones(store: ContactStore) -> None:
    users = UserStore(store.sessions, clock=lambda: T0)
    await users.create("zoe", Role.SUPERVISOR, by="root")
    await users.create("bob", "admin", by="root")
    await users.disable("zoe", by="root")

    listed = await users.list()

    assert [(u.name, u.role.value, u.active) for u in listed] == [("bob", "admin", True), ("zoe", "supervisor", False)]
    assert listed[1].to_json_dict()["disabled_at"] == T0.isoformat()


@pytest.mark.parametrize(
    ("name", "role", "operator", "message"),
    [
        ("", "operator", "op1", "name: 1 to 64"),
        ("a b", "operator", "op1", "name: 1 to 64"),
        ("x" * 65, "supervisor", None, "name: 1 to 64"),
        ("Admin", "supervisor", None, "reserved for the settings' admin token"),
        ("anna", "root", None, "role must be one of: admin, supervisor, operator"),
        ("anna", "operator", None, "needs the operator id"),
        ("anna", "operator", "op 1", "needs the operator id"),
        ("anna", "supervisor", "op1001", "only operator users have an operator id"),
    ],
)
async def test_given_invalid_user_when_created_then_user_error_and_nothing_written(
    store: ContactStore, name: str, role: str, operator: str | None, message: str
) -> None:
    users = UserStore(store.sessions)
    with pytest.raises(UserError, match=message):
        await users.create(name, role, operator=operator, by="root")
    assert await users.list() == []
    assert await _audit(store) == []


async def test_given_existing_name_when_created_again_then_user_exists(store: ContactStore) -> None:
    users = UserStore(store.sessions)
    await users.create("anna", Role.SUPERVISOR, by="root")
    with pytest.raises(UserExists, match="user 'anna' exists already"):
        await users.create("anna", Role.ADMIN, by="root")
    assert [u.role for u in await users.list()] == [Role.SUPERVISOR]


async def test_given_disabled_user_when_authenticating_then_refused_and_disable_is_idempotent(
    store: ContactStore,
) -> None:
    users = UserStore(store.sessions, clock=lambda: T0)
    _, token = await users.create("anna", Role.SUPERVISOR, by="root")
    assert await users.authenticate(token) is not None

    first = await users.disable("anna", by="root")
    again = await users.disable("anna", by="other")

    assert first.disabled_at == again.disabled_at == T0
    assert await users.authenticate(token) is None
    assert [a[1] for a in await _audit(store)] == ["user.create", "user.disable"]
    with pytest.raises(UnknownUser, match="no user 'nobody'"):
        await users.disable("nobody", by="root")


async def test_given_another_process_disables_a_user_when_cached_then_refused_after_the_cache_time(
    store: ContactStore,
) -> None:
    ticker = Ticker()
    here = UserStore(store.sessions, cache_seconds=30.0, monotonic=ticker)
    there = UserStore(store.sessions)
    _, token = await here.create("anna", Role.OPERATOR, operator="op1001", by="root")
    assert await here.authenticate(token) is not None

    await there.disable("anna", by="root")

    ticker.now += 29.0
    assert await here.authenticate(token) is not None  # still cached: no database hit
    ticker.now += 2.0
    assert await here.authenticate(token) is None


async def test_given_rotation_when_done_then_old_token_refused_new_one_works(store: ContactStore) -> None:
    users = UserStore(store.sessions)
    _, old = await users.create("anna", Role.OPERATOR, operator="op1001", by="root")
    assert await users.authenticate(old) is not None

    user, new = await users.rotate("anna", by="root")

    assert new != old and user.name == "anna"
    assert await users.authenticate(old) is None
    assert (await users.authenticate(new)) == user
    await users.disable("anna", by="root")
    with pytest.raises(UserDisabled, match="user 'anna' is disabled"):
        await users.rotate("anna", by="root")
    with pytest.raises(UnknownUser):
        await users.rotate("nobody", by="root")
    assert [a[1] for a in await _audit(store)] == ["user.create", "user.rotate", "user.disable"]


@pytest.mark.parametrize("token", ["", "x", "a" * 1000, "sha256:" + "0" * 64])
async def test_given_junk_token_when_authenticating_then_none(store: ContactStore, token: str) -> None:
    users = UserStore(store.sessions)
    await users.create("anna", Role.SUPERVISOR, by="root")
    assert await users.authenticate(token) is None


async def test_given_stored_hash_when_presented_as_token_then_refused(store: ContactStore) -> None:
    users = UserStore(store.sessions)
    await users.create("anna", Role.SUPERVISOR, by="root")
    async with store.sessions() as session:
        stored = await session.scalar(select(ApiUser.token_hash))
    assert stored is not None
    assert await users.authenticate(stored) is None


# -- unico users ----------------------------------------------------------------------------------


def _args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="unico")
    add_users_parser(parser.add_subparsers(dest="command"))
    return parser.parse_args(["users", *argv])


async def _run(db_url: str, *argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    status = await run_users(db_url, _args(*argv), out, err)
    return status, out.getvalue(), err.getvalue()


async def test_given_cli_when_adding_listing_rotating_disabling_then_tokens_once_and_audited(
    db_url: str,
) -> None:
    status, token, err = await _run(db_url, "add", "anna", "--role", "operator", "--operator", "op1001", "--by", "me")
    assert status == 0 and "created user anna (operator, operator op1001)" in err
    token = token.strip()
    status, listed, _ = await _run(db_url, "list", "--json")
    assert status == 0
    assert [json.loads(line)["name"] for line in listed.splitlines()] == ["anna"]
    status, table, _ = await _run(db_url, "list")
    assert table.splitlines()[0].split() == ["NAME", "ROLE", "OPERATOR", "CREATED", "(UTC)", "DISABLED", "(UTC)"]
    assert table.splitlines()[1].split()[:3] == ["anna", "operator", "op1001"]

    status, new, err = await _run(db_url, "rotate", "anna")
    assert status == 0 and new.strip() not in ("", token) and "the old one no longer works" in err
    status, out, err = await _run(db_url, "disable", "anna")
    assert (status, out) == (0, "") and "disabled user anna" in err

    async with ContactStore(db_url) as store:
        assert await UserStore(store.sessions).authenticate(new.strip()) is None
        audit = await _audit(store)
    assert [(a[0], a[1]) for a in audit][:1] == [("me", "user.create")]
    assert [a[1] for a in audit] == ["user.create", "user.rotate", "user.disable"]


async def test_given_cli_when_refused_then_exit_1_with_the_reason(db_url: str) -> None:
    assert (await _run(db_url, "add", "anna", "--role", "operator"))[0] == 1
    status, out, err = await _run(db_url, "disable", "nobody")
    assert (status, out) == (1, "") and "unico users disable: no user 'nobody'" in err


async def test_given_database_down_when_cli_runs_then_exit_1_without_the_password() -> None:
    status, _, err = await _run("postgresql+asyncpg://unico:s3cret@127.0.0.1:1/unico", "list")
    assert status == 1 and "cannot use the database" in err and "s3cret" not in err


def test_given_cli_roles_when_compared_then_they_are_the_store_roles() -> None:
    assert tuple(role.value for role in Role) == ROLES
    with pytest.raises(SystemExit):
        _args("add", "anna", "--role", "root")
