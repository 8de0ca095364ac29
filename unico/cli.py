"""The ``unico`` command. Each subcommand is a thin shell over a library call.

unico run                         the controller (ARI + IVR + admin API)
unico check [PATH]                validate dialplan/ and skills/ YAML (exit 1 with file:line errors)
unico asterisk install|start|stop|status|cli [COMMAND]
unico contacts [--json] [--last N]
unico db upgrade                  apply database migrations (safe on every start)
unico prompts render              render text prompts to recordings/tts/
unico parcels set CODE STATUS     demo data for the parcel-tracking self-service
unico reload                      ask the running controller to reload its config
unico settings                    the effective settings, secrets shown as ****
unico plan [--history CSV | --forecast CSV | --contacts]   workforce plan (docs/wfm.md)
unico customers import FILE.csv [--skip-invalid]          customers, all or nothing (docs/complaints.md)
unico customer export|erase PHONE_OR_ID                   GDPR access (JSON) and erasure
unico purge                       delete or anonymise what outlived its retention
unico users add|list|disable|rotate [NAME]                 API and console users (docs/api.md)
unico report --from DATE --to DATE [--interval 60m] [--by queue] [--csv F] [--png F] [--json]   KPIs (docs/reports.md)
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import logging
import sys
import urllib.error
import urllib.request
from datetime import date
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
    if args.command == "plan":
        return _plan(args)
    if args.command == "report":
        from reports.cli import run_report

        return run_report(args)
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
    if args.command == "settings":
        print(settings_dump(settings))
        return 0
    if args.command == "users":
        from unico.api.users_cli import run_users

        return asyncio.run(run_users(settings.db_url, args))
    if args.command in ("customer", "customers", "purge"):
        return asyncio.run(_privacy(settings, args))
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
    sub.add_parser("settings", help="print the effective settings (secrets masked)")
    _add_plan(sub)
    _add_privacy(sub)
    from unico.api.users_cli import add_users_parser

    add_users_parser(sub)
    from reports.cli import add_report_parser

    add_report_parser(sub)
    return parser


def _add_plan(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    plan = sub.add_parser("plan", help="workforce plan: forecast, Erlang staffing, shifts, roster")
    source = plan.add_mutually_exclusive_group()
    source.add_argument("--history", metavar="CSV", help="history CSV: timestamp,queue,offered[,aht]")
    source.add_argument("--forecast", metavar="CSV", help="a forecast in the same CSV shape, planned as given")
    source.add_argument("--contacts", action="store_true", help="history from the contacts database (default)")
    plan.add_argument("--db-url", help="contacts database (default: the controller's)")
    day = date.fromisoformat
    plan.add_argument("--since", type=day, metavar="DATE", help="first history day (default: 8 weeks back)")
    plan.add_argument("--until", type=day, metavar="DATE", help="history up to this day, excluded (default: today)")
    plan.add_argument("--config", default=".", metavar="PATH", help="project, dialplan folder or YAML file")
    plan.add_argument("--start", type=day, metavar="DATE", help="first planned day (default: after the history)")
    plan.add_argument("--weeks", type=int, default=1)
    plan.add_argument("--interval", type=int, choices=[15, 30, 60], default=30, help="minutes")
    plan.add_argument("--step", type=int, choices=[15, 30, 60], help="shift start step, minutes (default 30)")
    plan.add_argument("--shift-hours", type=float, help="shift length (default 6)")
    plan.add_argument("--service-level", type=float, help="share answered within --answer-within (default 0.8)")
    plan.add_argument("--answer-within", type=float, metavar="SECONDS", help="default 20")
    plan.add_argument("--asa", type=float, metavar="SECONDS", help="average speed of answer target")
    plan.add_argument("--max-occupancy", type=float, help="default 0.85")
    plan.add_argument("--shrinkage", type=float, help="default 0.3")
    plan.add_argument("--model", choices=["erlang-c", "erlang-a"], help="default erlang-c")
    plan.add_argument("--patience", type=float, metavar="SECONDS", help="callers' mean patience (erlang-a)")
    plan.add_argument("--max-abandon", type=float, help="largest abandonment share (erlang-a)")
    plan.add_argument("--min-agents", type=int, help="agents on an open queue even without traffic")
    plan.add_argument("--max-staff", type=int, metavar="SEATS", help="operators one queue may have at once")
    plan.add_argument("--area", help="calendar for queues not in skills/queues.yaml (default customers)")
    plan.add_argument("--ignore-closed", action="store_true", help="leave out traffic in closed hours")
    plan.add_argument("--roster", action="store_true", help="also give the shifts to named operators")
    plan.add_argument("--rules", metavar="YAML", help="roster rules: days off, max shifts a week (implies --roster)")
    plan.add_argument("--time-limit", type=float, metavar="SECONDS", help="rostering time limit (default 30)")
    plan.add_argument("--out", default="plan", metavar="DIR", help="output folder (default ./plan)")


def _plan(args: argparse.Namespace) -> int:
    from wfm.cli import run_plan

    db_url = args.db_url
    if db_url is None and args.history is None and args.forecast is None:
        try:
            db_url = load_settings().db_url
        except SettingsError as exc:
            print(exc, file=sys.stderr)
            return 2
    return run_plan(args, db_url=db_url)


def _add_privacy(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    try:
        login = getpass.getuser()
    except (OSError, KeyError):
        login = "unknown"
    by_help = "who is acting, for the audit log (default: the login name)"
    customers = sub.add_parser("customers", help="customer data")
    customers.add_argument("action", choices=["import"])
    customers.add_argument("file", type=Path, metavar="FILE.csv")
    customers.add_argument("--skip-invalid", action="store_true", help="import the valid rows, report the rest")
    customers.add_argument("--by", default=login, help=by_help)
    customer = sub.add_parser("customer", help="one customer's data: GDPR export (JSON) or erasure")
    customer.add_argument("action", choices=["export", "erase"])
    customer.add_argument("who", metavar="PHONE_OR_ID")
    customer.add_argument("--by", default=login, help=by_help)
    purge = sub.add_parser("purge", help="delete or anonymise personal data past its retention")
    purge.add_argument("--by", default="retention", help="for the audit log (default: retention)")


async def _privacy(settings: object, args: argparse.Namespace) -> int:
    from contacts import RetentionPolicy, customer_erase, customer_export, customers_import, purge_data
    from unico.settings import Settings

    assert isinstance(settings, Settings)
    url, spool = settings.db_url, settings.recording_spool_dir
    if args.command == "customers":
        return await customers_import(url, args.file, by=args.by, skip_invalid=args.skip_invalid)
    if args.command == "purge":
        policy = RetentionPolicy.from_days(settings.retention_days)
        return await purge_data(url, policy=policy, files=spool, by=args.by)
    if args.action == "export":
        return await customer_export(url, args.who, by=args.by)
    return await customer_erase(url, args.who, by=args.by, files=spool)


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


def settings_dump(settings: object) -> str:
    """The effective settings as ``UNICO_<KEY>=value`` lines, as an admin would set them.

    Secrets print as ``****`` (``(unset)`` when empty) and so does the password inside a URL
    (``postgresql+asyncpg://unico:****@db/unico``), so the output can go into a ticket.

    Example::

        print(settings_dump(load_settings()))    # UNICO_ARI_PASSWORD=****  ...
    """
    from pydantic import SecretStr

    from unico.settings import Settings

    assert isinstance(settings, Settings)
    lines = []
    for name in sorted(Settings.model_fields):
        value = getattr(settings, name)
        if isinstance(value, SecretStr):
            shown = MASK if value.get_secret_value() else "(unset)"
        elif value is None:
            shown = ""
        elif isinstance(value, dict):
            shown = json.dumps(value, sort_keys=True)
        elif isinstance(value, bool):
            shown = "true" if value else "false"
        else:
            shown = _mask_url_password(str(value))
        lines.append(f"UNICO_{name.upper()}={shown}")
    return "\n".join(lines)


MASK = "****"


def _mask_url_password(value: str) -> str:
    """``scheme://user:secret@host/...`` -> ``scheme://user:****@host/...``; other text unchanged."""
    from urllib.parse import urlsplit, urlunsplit

    if "://" not in value:
        return value
    try:
        parts = urlsplit(value)
        password = parts.password
    except ValueError:
        return value
    if not password:
        return value
    user = parts.username or ""
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{user}:{MASK}@{host}"))


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
