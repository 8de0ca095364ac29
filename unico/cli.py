"""The ``unico`` command. Each subcommand is a thin shell over a library call.

unico run                         the controller (ARI + IVR + admin API)
unico check [PATH]                validate dialplan/ and skills/ YAML (exit 1 with file:line errors)
unico asterisk install|start|stop|status|cli [COMMAND]
unico contacts [--json] [--last N]
unico db upgrade                  apply database migrations (safe on every start)
unico prompts render              render text prompts to recordings/tts/
unico parcels set CODE STATUS     demo data for the parcel-tracking self-service
unico reload                      ask the running controller to reload its config
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
import urllib.error
import urllib.request
from pathlib import Path

from unico.settings import SettingsError, load_settings


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    if args.command == "check":
        return _check(args.path)
    try:
        settings = load_settings()
    except SettingsError as exc:
        print(exc, file=sys.stderr)
        return 2
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    # aiosqlite logs every statement at DEBUG, which would drown the controller's own log
    logging.getLogger("aiosqlite").setLevel(logging.INFO)
    logging.getLogger("alembic").setLevel(logging.WARNING)
    if args.command == "run":
        from unico.main import serve

        return asyncio.run(serve(settings))
    if args.command == "asterisk":
        return _asterisk(settings, args.action, args.rest)
    if args.command == "contacts":
        from contacts.cli import print_recent

        return asyncio.run(print_recent(settings.db_url, args.last, args.json))
    if args.command == "db":
        from contacts.cli import db_upgrade

        return asyncio.run(db_upgrade(settings.db_url))
    if args.command == "parcels":
        from contacts.cli import parcel_set

        return asyncio.run(parcel_set(settings.db_url, args.code, args.status, args.detail))
    if args.command == "prompts":
        return _render(settings)
    if args.command == "reload":
        return _reload(settings)
    parser.error(f"unknown command {args.command}")
    return 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="unico", description="Unico IVR and ACD controller")
    sub = parser.add_subparsers(dest="command")
    sub.add_parser("run", help="run the controller")
    check = sub.add_parser("check", help="validate the YAML configuration")
    check.add_argument("path", nargs="?", default=".", help="project folder, dialplan folder or one YAML file")
    ast = sub.add_parser("asterisk", help="the local Asterisk 22")
    ast.add_argument("action", choices=["install", "start", "stop", "status", "cli"])
    ast.add_argument("rest", nargs=argparse.REMAINDER, help="CLI command for 'cli'")
    contacts = sub.add_parser("contacts", help="the most recent calls")
    contacts.add_argument("--json", action="store_true", help="JSON lines")
    contacts.add_argument("--last", type=int, default=20, metavar="N")
    db = sub.add_parser("db", help="database")
    db.add_argument("action", choices=["upgrade"])
    prompts = sub.add_parser("prompts", help="text prompts")
    prompts.add_argument("action", choices=["render"])
    parcels = sub.add_parser("parcels", help="parcel tracking data")
    parcels.add_argument("action", choices=["set"])
    parcels.add_argument("code")
    parcels.add_argument("status")
    parcels.add_argument("--detail")
    sub.add_parser("reload", help="reload the running controller's configuration")
    return parser


def _check(path: str) -> int:
    from ivr.config import load_config
    from ivr.source import ConfigErrors

    target = Path(path)
    if target.is_file():
        target = target.parent
    if (target / "dialplan").is_dir():
        dialplan, skills = target / "dialplan", target / "skills"
    else:
        dialplan, skills = target, target.parent / "skills"
    try:
        config = load_config(dialplan, skills)
    except ConfigErrors as exc:
        for error in exc.errors:
            print(error, file=sys.stderr)
        print(f"{len(exc.errors)} problem(s) found", file=sys.stderr)
        return 1
    print(
        f"OK: {len(config.numbers)} numbers, {len(config.nodes)} nodes, {len(config.prompts)} prompts, "
        f"{len(config.calendars)} calendars, {len(config.skills)} skills, {len(config.operators)} operators, "
        f"{len(config.queues)} queues (version {config.version})"
    )
    return 0


def _asterisk(settings: object, action: str, rest: list[str]) -> int:
    from unico import pbx
    from unico.settings import Settings

    assert isinstance(settings, Settings)
    try:
        if action == "install":
            pbx.install(settings)
        elif action == "start":
            # The roster's softphone endpoints must be on disk before Asterisk reads pjsip.conf.
            from ivr.config import load_config
            from ivr.source import ConfigErrors
            from unico.pbx.operators import write_operators

            try:
                config = load_config(settings.dialplan_dir, settings.skills_dir)
            except ConfigErrors as exc:
                print(f"configuration refused, Asterisk not started:\n{exc}", file=sys.stderr)
                return 1
            write_operators(settings, config)
            pbx.start(settings)
        elif action == "stop":
            pbx.stop(settings)
        elif action == "status":
            text = pbx.status(settings)
            print(text)
            return 0 if pbx.is_running(settings) else 3
        else:
            print(pbx.cli(settings, " ".join(rest) or "core show version"))
    except pbx.PbxError as exc:
        print(f"asterisk {action}: {exc}", file=sys.stderr)
        return 1
    return 0


def _render(settings: object) -> int:
    from ivr.config import load_config
    from ivr.source import ConfigErrors
    from ivr.tts import TtsError, render_prompts
    from unico.settings import Settings

    assert isinstance(settings, Settings)
    try:
        config = load_config(settings.dialplan_dir, settings.skills_dir)
        written = render_prompts(config, settings.tts_dir)
    except (ConfigErrors, TtsError) as exc:
        print(exc, file=sys.stderr)
        return 1
    print(f"{len(written)} prompt(s) rendered into {settings.tts_dir}")
    return 0


def _reload(settings: object) -> int:
    from unico.settings import Settings

    assert isinstance(settings, Settings)
    request = urllib.request.Request(
        f"http://{settings.web_host}:{settings.web_port}/admin/reload",
        method="POST",
        headers={"Authorization": f"Bearer {settings.admin_token.get_secret_value()}"},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            body = json.load(response)
    except urllib.error.HTTPError as exc:
        body = json.load(exc)
    except OSError as exc:
        print(f"cannot reach the controller: {exc}", file=sys.stderr)
        return 1
    if body.get("ok"):
        print(f"reloaded: config {body['version']}")
        return 0
    print(f"reload refused, still running config {body.get('version')}:", file=sys.stderr)
    for error in body.get("errors", [body.get("error")]):
        print(f"  {error}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
