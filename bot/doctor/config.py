"""The checks that need no network beyond the database: the policy and what it enables, the database and its
schema. The verbs the policy enables decide which MDE permissions the token checks ask for."""

from __future__ import annotations

from pathlib import Path

from approvals.db import Database, normalize_url
from approvals.policy import Policy
from approvals.verbs import ACTIONS, Verb
from bot.doctor.report import Check, Context, one_line, reason


def enabled_verbs(policy: Policy) -> list[Verb]:
    """A verb is enabled when the policy lets someone request it."""
    return [verb for verb in ACTIONS if policy.action(verb).requesters]


def check_policy(ctx: Context, policy: Policy | None) -> tuple[Check, list[Verb]]:
    from approvals.policy import PolicyError, load_policy

    if policy is None:
        if ctx.settings.policy_file is None:
            return (
                Check(
                    "policy",
                    False,
                    "POLICY_FILE is not set, so nobody may request or approve anything: write a policy "
                    "(examples/policy.yaml, docs/configure-approvals.md) and set POLICY_FILE",
                ),
                [],
            )
        try:
            policy = load_policy(ctx.settings.policy_file)
        except PolicyError as exc:
            return Check("policy", False, one_line(exc)), []
    verbs = enabled_verbs(policy)
    if not verbs:
        return Check("policy", False, f"{policy.name} lets nobody request anything: list requesters"), []
    return Check("policy", True, f"{policy.name}; enabled: {', '.join(verbs)}"), verbs


async def check_database(ctx: Context, db: Database | None) -> list[Check]:
    from approvals.migrate import current_revision, head_revision

    url = db.url if db is not None else normalize_url(ctx.settings.database_url)
    where = safe_url(url)
    sqlite = url.startswith("sqlite")
    if sqlite and db is None:
        path = sqlite_path(url)
        if path is not None and not path.exists():
            return [
                Check("database", True, f"{where} does not exist yet; `serve` creates it"),
                Check("database schema", True, "`serve` migrates SQLite at start"),
            ]
    try:
        current = await ctx.within(current_revision(url), "the database")
    except Exception as exc:
        return [Check("database", False, f"cannot reach {where}: {reason(exc)} (running? DATABASE_URL right?)")]
    head = head_revision()
    checks = [Check("database", True, where)]
    if current == head:
        checks.append(Check("database schema", True, f"at the latest revision {head}"))
    elif current is not None and not known_revision(current):
        checks.append(
            Check(
                "database schema",
                False,
                f"the schema is at {current}, which this version does not know (a newer release migrated "
                "it): deploy that release or newer",
            )
        )
    elif sqlite:
        checks.append(Check("database schema", True, f"at {current or 'nothing'}; `serve` upgrades SQLite"))
    else:
        checks.append(
            Check(
                "database schema",
                False,
                f"the schema is at {current or 'nothing'}, the code needs {head}: run `mde-chatops db upgrade`",
            )
        )
    return checks


def safe_url(url: str) -> str:
    """The URL with its password hidden: the report may be pasted into chat or a ticket."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(normalize_url(url)).render_as_string(hide_password=True)
    except Exception:  # an unparsable URL is reported by the connection attempt itself
        return "DATABASE_URL"


def sqlite_path(url: str) -> Path | None:
    from sqlalchemy.engine import make_url

    database = make_url(url).database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return Path(database)


def known_revision(revision: str) -> bool:
    from alembic.script import ScriptDirectory

    from approvals.migrate import alembic_config

    try:
        return ScriptDirectory.from_config(alembic_config("sqlite://")).get_revision(revision) is not None
    except Exception:
        return False
