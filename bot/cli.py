"""``mde-chatops``: the command line. Bad input gets one clear sentence and exit code 2, never a traceback."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, TextIO

EXIT_USAGE = 2


class CliError(Exception):
    """Shown to the user as ``error: <message>``."""


def _parse_time(value: str) -> datetime:
    """ISO dates/times, or a relative ``7d`` / ``12h`` / ``30m``."""
    value = value.strip()
    units = {"d": 86400, "h": 3600, "m": 60}
    if value[:-1].isdigit() and value[-1:] in units:
        from datetime import timedelta

        return datetime.now(UTC) - timedelta(seconds=int(value[:-1]) * units[value[-1]])
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"'{value}' is not a time: use an ISO date such as 2026-11-01 or a span such as 7d, 12h, 30m"
        ) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mde-chatops", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    demo = sub.add_parser("demo", help="simulator + SQLite + an interactive console chat, no credentials needed")
    demo.add_argument("--script", help="run the commands in FILE instead of reading the keyboard")
    demo.add_argument("--devices", type=int, default=300, help="simulated tenant size (default 300)")
    demo.add_argument("--time-scale", type=float, default=60.0, help="simulated time speed-up (default 60)")
    demo.add_argument("--database", default=None, help="database URL (default: a fresh SQLite file in a temp dir)")
    demo.add_argument("--user", default="alice", help="who you are at the start (default alice)")
    demo.set_defaults(run=_run_demo)

    sim = sub.add_parser("simulator", help="run the MDE simulator HTTP server")
    from mde.simulator.cli import add_arguments as sim_arguments

    sim_arguments(sim)
    sim.set_defaults(run=_run_simulator)

    serve = sub.add_parser("serve", help="run the bot: web server, workers and chat surfaces from settings")
    serve.set_defaults(run=_run_serve)

    doctor = sub.add_parser("doctor", help="check settings, database, MDE token and permissions, chat credentials")
    doctor.set_defaults(run=_run_doctor)

    db = sub.add_parser("db", help="database maintenance")
    db_sub = db.add_subparsers(dest="db_command", required=True, metavar="ACTION")
    up = db_sub.add_parser("upgrade", help="apply Alembic migrations up to the latest")
    up.add_argument("--database", help="database URL (default: DATABASE_URL)")
    up.set_defaults(run=_run_db_upgrade)

    audit = sub.add_parser("audit", help="the audit log")
    audit_sub = audit.add_subparsers(dest="audit_command", required=True, metavar="ACTION")
    export = audit_sub.add_parser("export", help="export the audit log as CSV or JSON lines")
    export.add_argument("--format", choices=["csv", "json"], default="json")
    export.add_argument("--since", type=_parse_time, help="ISO time or span (7d, 12h)")
    export.add_argument("--until", type=_parse_time)
    export.add_argument("--out", help="file to write (default: standard output)")
    export.add_argument("--database", help="database URL (default: DATABASE_URL)")
    export.add_argument(
        "--containments",
        action="store_true",
        help="export the containment register (one row per containment) instead of the audit log",
    )
    export.set_defaults(run=_run_audit_export)

    incidents = sub.add_parser("incidents", help="incident notifications")
    incidents_sub = incidents.add_subparsers(dest="incidents_command", required=True, metavar="ACTION")
    replay = incidents_sub.add_parser("replay", help="post a saved incident payload to a running bot (test rules)")
    replay.add_argument("file", help="a JSON file: a Sentinel incident or alert, or a Graph incident / alert")
    replay.add_argument("--url", default="http://127.0.0.1:3978/api/incidents", help="the bot's incidents endpoint")
    replay.add_argument("--secret", help="HMAC secret (default: INCIDENTS_SECRET)")
    replay.add_argument("--token", help="bearer token instead of a signature (default: INCIDENTS_TOKEN)")
    replay.set_defaults(run=_run_incidents_replay)

    manifest = sub.add_parser("manifest", help="build app manifests")
    manifest_sub = manifest.add_subparsers(dest="manifest_command", required=True, metavar="PLATFORM")
    teams = manifest_sub.add_parser("teams", help="validate and zip the Teams app package")
    teams.add_argument("--out", default="app.zip")
    teams.add_argument("--app-id", required=True, help="the Entra app (client) id of the bot")
    teams.add_argument("--name", default="mde-chatops")
    teams.add_argument("--domain", action="append", default=[], help="valid domain (repeatable)")
    teams.set_defaults(run=_run_manifest_teams)
    return parser


def _database_url(value: str | None) -> str:
    if value:
        return value
    from bot.config import load_settings

    return load_settings().database_url


def _run_demo(args: argparse.Namespace) -> int:
    from bot.demo import run_demo

    return asyncio.run(run_demo(args))


def _run_simulator(args: argparse.Namespace) -> int:
    from mde.simulator.cli import serve

    asyncio.run(serve(args))
    return 0


def _run_serve(args: argparse.Namespace) -> int:
    from bot.config import load_settings
    from bot.serve import serve

    return asyncio.run(serve(load_settings()))


def _run_doctor(args: argparse.Namespace) -> int:
    from bot.doctor import main as doctor_main

    return doctor_main()


def _run_db_upgrade(args: argparse.Namespace) -> int:
    from approvals.migrate import upgrade

    url = _database_url(args.database)
    upgrade(url)
    print("database is at the latest schema")
    return 0


def _run_audit_export(args: argparse.Namespace) -> int:
    from approvals.audit.export import export_audit
    from approvals.containment.export import export_containments
    from approvals.db import Database

    async def run(out: TextIO) -> int:
        db = Database(_database_url(args.database))
        export = export_containments if args.containments else export_audit
        try:
            return await export(db, out, fmt=args.format, since=args.since, until=args.until)
        finally:
            await db.dispose()

    if args.out:
        with open(args.out, "w", encoding="utf-8", newline="") as handle:
            count = asyncio.run(run(handle))
    else:
        count = asyncio.run(run(sys.stdout))
    print(f"exported {count} {'containments' if args.containments else 'audit entries'}", file=sys.stderr)
    return 0


def _run_manifest_teams(args: argparse.Namespace) -> int:
    from pathlib import Path

    from bot.teams.package import build_package

    path = build_package(
        Path(args.out),
        app_id=args.app_id,
        bot_id=args.app_id,
        name=args.name,
        valid_domains=list(args.domain),
    )
    print(f"wrote {path}")
    return 0


def _run_incidents_replay(args: argparse.Namespace) -> int:
    import json
    import os
    from pathlib import Path

    import httpx

    from bot.webhooks import SIGNATURE_HEADER, sign

    body = Path(args.file).read_bytes()
    try:
        json.loads(body)
    except ValueError as exc:
        raise CliError(f"{args.file} is not JSON: {exc}") from None
    secret = args.secret or os.environ.get("INCIDENTS_SECRET")
    token = args.token or os.environ.get("INCIDENTS_TOKEN")
    headers = {"Content-Type": "application/json"}
    if secret:
        headers[SIGNATURE_HEADER] = sign(secret, body)
    elif token:
        headers["Authorization"] = f"Bearer {token}"
    else:
        raise CliError("give --secret or --token (or set INCIDENTS_SECRET / INCIDENTS_TOKEN)")
    try:
        response = httpx.post(args.url, content=body, headers=headers, timeout=30)
    except httpx.HTTPError as exc:
        raise CliError(f"cannot reach {args.url}: {exc}") from None
    print(f"{response.status_code} {response.text}")
    return 0 if response.status_code == 200 else 1


def _friendly(exc: BaseException) -> str | None:
    """Known failures become one sentence; anything else is a bug and keeps its traceback."""
    from bot.config import SettingsError

    known: tuple[type[BaseException], ...] = (CliError, SettingsError, FileNotFoundError, PermissionError)
    try:
        from approvals.errors import RulesError
        from approvals.policy import PolicyError

        known += (PolicyError, RulesError)
    except ImportError:  # pragma: no cover
        pass
    try:
        from sqlalchemy.exc import OperationalError

        if isinstance(exc, OperationalError):
            return f"cannot reach the database: {exc.orig}"
    except ImportError:  # pragma: no cover
        pass
    if isinstance(exc, ConnectionError) or (isinstance(exc, OSError) and "connect" in str(exc).lower()):
        return f"cannot connect ({exc}): is the database in DATABASE_URL (or the service named) running?"
    if isinstance(exc, OSError) and not isinstance(exc, FileNotFoundError | PermissionError):
        return f"{exc.strerror or exc}"
    if isinstance(exc, known):
        return str(exc)
    if isinstance(exc, ValueError) and getattr(exc, "user_facing", False):
        return str(exc)
    return None


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    run: Callable[[argparse.Namespace], Any] = args.run
    try:
        return int(run(args) or 0)
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        message = _friendly(exc)
        if message is None:
            raise
        print(f"error: {message}", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
