"""``unico users``: API users from the command line (the same store as ``/api/users``).

::

    unico users add NAME --role operator --operator op1001     prints the token, once
    unico users list [--json]
    unico users disable NAME
    unico users rotate NAME                                    prints the new token, once

The token goes alone on standard output (``TOKEN=$(unico users add ...)`` works); everything
else goes to standard error. Like the other database commands it first brings the schema to head,
and a database that is down is one line naming the (password-masked) URL and exit status 1.
Every change is audited with ``--by`` (default: the login name).
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from contacts.users import UserRecord

#: ``contacts.users.Role``'s values, spelt out: the parser is built on every ``unico`` command,
#: which must not import the database layer for it (a test checks the two agree)
ROLES = ("admin", "supervisor", "operator")


def add_users_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``unico users`` on the ``unico`` subcommands."""
    try:
        login = getpass.getuser()
    except (OSError, KeyError):
        login = "unknown"
    users = sub.add_parser("users", help="API and console users: add, list, disable, rotate (docs/api.md)")
    actions = users.add_subparsers(dest="action", required=True)
    add = actions.add_parser("add", help="create a user and print their token (once)")
    add.add_argument("name")
    add.add_argument("--role", required=True, choices=ROLES)
    add.add_argument("--operator", metavar="ID", help="the operator id (softphone) of an operator user")
    listing = actions.add_parser("list", help="every user")
    listing.add_argument("--json", action="store_true", help="JSON lines")
    for name, text in (("disable", "refuse the user's token from now on"), ("rotate", "a new token (printed once)")):
        action = actions.add_parser(name, help=text)
        action.add_argument("name")
    for parser in actions.choices.values():
        parser.add_argument("--by", default=login, help="who is acting, for the audit log (default: the login name)")


async def run_users(url: str, args: argparse.Namespace, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """Carry out ``unico users <action>``; the exit status."""
    from sqlalchemy.exc import SQLAlchemyError

    from contacts.db import safe_url, upgrade
    from contacts.store import ContactStore
    from contacts.users import UserError, UserStore

    out, err = out or sys.stdout, err or sys.stderr
    try:
        await upgrade(url)
        async with ContactStore(url) as store:
            users = UserStore(store.sessions)
            if args.action == "add":
                user, token = await users.create(args.name, args.role, operator=args.operator, by=args.by)
                print(f"created {_describe(user)}; its token, shown only now:", file=err)
                print(token, file=out)
            elif args.action == "rotate":
                user, token = await users.rotate(args.name, by=args.by)
                print(f"new token for {_describe(user)}; the old one no longer works:", file=err)
                print(token, file=out)
            elif args.action == "disable":
                user = await users.disable(args.name, by=args.by)
                print(f"disabled {_describe(user)}", file=err)
            else:
                _print_list(await users.list(), args.json, out)
    except UserError as exc:
        print(f"unico users {args.action}: {exc}", file=err)
        return 1
    except (SQLAlchemyError, OSError) as exc:
        print(f"unico users: cannot use the database {safe_url(url)}: {type(exc).__name__}", file=err)
        return 1
    return 0


def _describe(user: UserRecord) -> str:
    operator = f", operator {user.operator}" if user.operator else ""
    return f"user {user.name} ({user.role.value}{operator})"


def _print_list(users: list[UserRecord], as_json: bool, out: TextIO) -> None:
    if as_json:
        for user in users:
            out.write(json.dumps(user.to_json_dict()) + "\n")
        return
    rows = [("NAME", "ROLE", "OPERATOR", "CREATED (UTC)", "DISABLED (UTC)")]
    for user in users:
        disabled = f"{user.disabled_at:%Y-%m-%d %H:%M}" if user.disabled_at else "-"
        rows.append((user.name, user.role.value, user.operator or "-", f"{user.created_at:%Y-%m-%d %H:%M}", disabled))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        out.write("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() + "\n")
