"""``mde-chatops doctor``: check a deployment from the outside in, one line per check.

Settings, policy, database and schema, an MDE token and the application permissions its ``roles`` claim
grants for the actions the policy enables, one cheap MDE call, the Microsoft Graph token advanced hunting
uses (``query:`` targets, schedules) and its ``ThreatHunting.Read.All``, and the enabled chat platforms. Every failure
is one actionable sentence; nothing raises, nothing prints a secret (the token's claims are decoded without
verifying its signature, and only role names and the audience are shown).

``doctor_report`` returns the same report as text for the chat ``doctor`` command.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from collections.abc import Awaitable, Callable, Collection, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

import jwt

from approvals.db import Database, normalize_url
from approvals.policy import Policy
from approvals.verbs import ACTIONS, Verb
from bot.config import HuntingApi, MdeAuth, Settings, SettingsError, load_settings
from bot.mde_access import api_base_url, graph_base_url, graph_scope, token_provider
from bot.secrets import resolve_settings
from mde.auth import TokenProvider
from mde.client import ROLE_FOR_PATH

if TYPE_CHECKING:
    from mde.client import MdeClient
    from mde.models import Machine

DEFAULT_TIMEOUT_S = 15.0
READ_ROLES = ("Machine.Read.All", "Machine.ReadWrite.All")
#: a role that a broader one includes: Ti.ReadWrite.All sees every indicator, Ti.ReadWrite the app's own
#: (get-ti-indicators-collection.md)
BROADER = {"Ti.ReadWrite": ("Ti.ReadWrite", "Ti.ReadWrite.All")}
HUNTING_ROLE = ROLE_FOR_PATH["run"]
#: Microsoft Graph's runHuntingQuery (GR:includes/permissions/security-security-runhuntingquery-permissions.md)
GRAPH_HUNTING_ROLE = ROLE_FOR_PATH["runHuntingQuery"]
HUNTING_FEATURES = ("query targets", "schedules")
#: Microsoft Graph's first-party app id; a Graph token's aud is it or the Graph root URL
GRAPH_APP_ID = "00000003-0000-0000-c000-000000000000"
GRAPH_GRANT_HINT = "add it under API permissions → Microsoft Graph → Application permissions and grant admin consent"
#: WindowsDefenderATP: its first-party app id and identifier URIs; a token for another API gets 403
MDE_AUDIENCES = frozenset(
    {
        "fc780465-2017-40d4-a0c5-307022471b92",
        "https://api.securitycenter.microsoft.com",
        "https://securitycenter.onmicrosoft.com/windowsatpservice",
    }
)
GRANT_HINT = "add it under API permissions → WindowsDefenderATP → Application permissions and grant admin consent"


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    ok: bool
    detail: str = ""

    def line(self) -> str:
        if not self.ok:
            return f"{self.name}: FAIL: {self.detail}"
        return f"{self.name}: ok" + (f" ({self.detail})" if self.detail else "")


@dataclass(frozen=True, slots=True)
class Permission:
    """One requirement: any of ``roles`` suffices for ``features``."""

    roles: tuple[str, ...]
    features: tuple[str, ...]
    #: what does not work without it, when the rest works (the check passes and says so)
    optional: str | None = None

    @property
    def label(self) -> str:
        return " or ".join(self.roles)


def required_permissions(verbs: Collection[str], *, mde_hunting: bool = False) -> list[Permission]:
    """Reads always (targets and polling use them), each enabled verb's role, and MDE's hunting role when
    hunting goes through MDE (``HUNTING_API=mde``; through Graph, the Graph token is checked on its own)."""
    out = [Permission(READ_ROLES, ("device lookups", "action status"))]
    by_role: dict[str, list[str]] = {}
    for verb, spec in ACTIONS.items():
        if verb in verbs:
            by_role.setdefault(spec.role, []).append(verb)
    out += [Permission(BROADER.get(role, (role,)), tuple(features)) for role, features in by_role.items()]
    if mde_hunting:
        out.append(Permission((HUNTING_ROLE,), HUNTING_FEATURES))
    if Verb.BLOCK in verbs:
        out.append(
            Permission(("File.Read.All",), ("how common a file is",), "block cards cannot warn about common files")
        )
    # get-user-related-machines.md lists only Machine.ReadWrite.All; get-machine-log-on-users.md User.Read.All
    out.append(Permission(("Machine.ReadWrite.All",), ("user targets",), "user: targets are refused"))
    out.append(Permission(("User.Read.All",), ("last logon of user targets",), "user: targets are refused"))
    return out


def enabled_verbs(policy: Policy) -> list[Verb]:
    """A verb is enabled when the policy lets someone request it."""
    return [verb for verb in ACTIONS if policy.action(verb).requesters]


def _one_line(text: object, limit: int = 300) -> str:
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _reason(exc: BaseException) -> str:
    """The most specific message of an exception (SQLAlchemy wraps the driver's), on one line."""
    inner = getattr(exc, "orig", None) or exc
    message = _one_line(inner)
    return f"{type(inner).__name__}: {message}" if message else type(inner).__name__


def _safe_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    try:
        return make_url(normalize_url(url)).render_as_string(hide_password=True)
    except Exception:  # an unparsable URL is reported by the connection attempt itself
        return "DATABASE_URL"


class _Borrowed:
    """A token provider the doctor uses but does not own: closing it is the owner's business."""

    def __init__(self, inner: TokenProvider) -> None:
        self._inner = inner

    async def get_token(self) -> str:
        return await self._inner.get_token()

    def invalidate(self) -> None:
        self._inner.invalidate()

    async def close(self) -> None:
        return None


class Doctor:
    def __init__(
        self,
        settings: Settings,
        *,
        db: Database | None = None,
        token_provider: TokenProvider | None = None,
        graph_token_provider: TokenProvider | None = None,
        policy: Policy | None = None,
        timeout_s: float = DEFAULT_TIMEOUT_S,
    ) -> None:
        self.settings = settings
        self._db = db
        self._provider = token_provider
        self._graph_provider = graph_token_provider
        self._policy = policy
        self.timeout_s = timeout_s

    async def run(self) -> list[Check]:
        checks: list[Check] = [Check("settings", True, f"MDE_AUTH={self.settings.mde_auth.value}")]
        policy_check, verbs = self._check_policy()
        checks.append(policy_check)
        checks += await self._guard("database", self._check_database)
        checks += await self._guard("mde token", lambda: self._check_mde(verbs))
        if verbs:  # anyone who may request anything may target query:, and schedules run hunting queries
            checks += await self._guard("hunting", self._check_hunting)
        checks += await self._guard("chat", self._check_chat)
        return checks

    async def _guard(self, name: str, check: Callable[[], Awaitable[list[Check]]]) -> list[Check]:
        """Whatever goes wrong inside a check becomes its FAIL line, never a traceback."""
        try:
            return await check()
        except Exception as exc:
            if getattr(exc, "user_facing", False):  # already one sentence naming the setting
                return [Check(name, False, str(exc))]
            return [Check(name, False, f"unexpected {_reason(exc)}")]

    async def _within(self, awaitable: Awaitable[Any], what: str) -> Any:
        try:
            return await asyncio.wait_for(awaitable, self.timeout_s)
        except TimeoutError:
            raise TimeoutError(f"{what} did not answer within {self.timeout_s:g} s") from None

    # -- policy -------------------------------------------------------------------------------------------
    def _check_policy(self) -> tuple[Check, list[Verb]]:
        from approvals.policy import PolicyError, load_policy

        policy = self._policy
        if policy is None:
            if self.settings.policy_file is None:
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
                policy = load_policy(self.settings.policy_file)
            except PolicyError as exc:
                return Check("policy", False, _one_line(exc)), []
        verbs = enabled_verbs(policy)
        if not verbs:
            return Check("policy", False, f"{policy.name} lets nobody request anything: list requesters"), []
        return Check("policy", True, f"{policy.name}; enabled: {', '.join(verbs)}"), verbs

    # -- database -----------------------------------------------------------------------------------------
    async def _check_database(self) -> list[Check]:
        from approvals.migrate import current_revision, head_revision

        url = self._db.url if self._db is not None else normalize_url(self.settings.database_url)
        where = _safe_url(url)
        sqlite = url.startswith("sqlite")
        if sqlite and self._db is None:
            path = _sqlite_path(url)
            if path is not None and not path.exists():
                return [
                    Check("database", True, f"{where} does not exist yet; `serve` creates it"),
                    Check("database schema", True, "`serve` migrates SQLite at start"),
                ]
        try:
            current = await self._within(current_revision(url), "the database")
        except Exception as exc:
            return [Check("database", False, f"cannot reach {where}: {_reason(exc)} (running? DATABASE_URL right?)")]
        head = head_revision()
        checks = [Check("database", True, where)]
        if current == head:
            checks.append(Check("database schema", True, f"at the latest revision {head}"))
        elif current is not None and not _known_revision(current):
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

    # -- MDE ----------------------------------------------------------------------------------------------
    async def _check_mde(self, verbs: Sequence[str]) -> list[Check]:
        owned = self._provider is None
        provider = token_provider(self.settings) if self._provider is None else _Borrowed(self._provider)
        try:
            try:
                token = await self._within(provider.get_token(), "the token endpoint")
            except Exception as exc:
                return [Check("mde token", False, self._token_failure(exc))]
            claims = _claims(token)
            checks = [Check("mde token", True, _token_summary(self.settings.mde_auth, claims))]
            checks += self._check_roles(claims, verbs)
            checks.append(await self._check_reachability(provider))
            return checks
        finally:
            if owned:
                await provider.close()

    def _token_failure(self, exc: Exception) -> str:
        auth = self.settings.mde_auth
        hint = {
            MdeAuth.MANAGED_IDENTITY: "is a managed identity assigned to this workload (and MDE_CLIENT_ID set to "
            "its client id when it is user-assigned)?",
            MdeAuth.CLIENT_SECRET: "check MDE_TENANT_ID, MDE_CLIENT_ID and MDE_CLIENT_SECRET (expired secret?)",
            MdeAuth.CERTIFICATE: "check MDE_TENANT_ID, MDE_CLIENT_ID and the PEM at MDE_CERTIFICATE_PATH",
            MdeAuth.STATIC: "check MDE_STATIC_TOKEN",
        }[auth]
        return f"no token with MDE_AUTH={auth.value} ({_reason(exc)}): {hint}"

    def _check_roles(self, claims: dict[str, Any] | None, verbs: Sequence[str]) -> list[Check]:
        if claims is None:
            if self.settings.mde_auth is MdeAuth.STATIC:
                return [Check("mde permissions", True, "not checked: the static token is not a JWT")]
            return [Check("mde permissions", False, "the token is not a JWT, so its roles cannot be read")]
        checks = []
        audience = self._audience_problem(claims)
        if audience:
            checks.append(Check("mde token audience", False, audience))
        roles = claims.get("roles")
        granted = {str(r) for r in roles} if isinstance(roles, list) else set()
        for need in required_permissions(verbs, mde_hunting=self.settings.hunting_api is HuntingApi.MDE):
            name = f"mde permission {need.label} ({', '.join(need.features)})"
            if granted & set(need.roles):
                checks.append(Check(name, True))
            elif need.optional:
                checks.append(Check(name, True, f"not granted, so {need.optional}"))
            else:
                checks.append(Check(name, False, f"the token's roles lack {need.roles[0]}: {GRANT_HINT}"))
        return checks

    def _audience_problem(self, claims: dict[str, Any]) -> str | None:
        from mde.clouds import cloud_endpoints

        aud = claims.get("aud")
        audiences = [aud] if isinstance(aud, str) else [str(a) for a in aud or []]
        scope = self.settings.mde_scope or cloud_endpoints(self.settings.mde_cloud).scope
        accepted = MDE_AUDIENCES | {scope.removesuffix("/.default").rstrip("/")}
        if not audiences or any(a.rstrip("/") in accepted for a in audiences):
            return None
        return (
            f"the token is for {', '.join(audiences)}, not WindowsDefenderATP, so MDE answers 403: set "
            "MDE_SCOPE=https://api.securitycenter.microsoft.com/.default (or unset it)"
        )

    # -- advanced hunting (Microsoft Graph) ----------------------------------------------------------------
    async def _check_hunting(self) -> list[Check]:
        if self.settings.hunting_api is HuntingApi.MDE:
            return [
                Check(
                    "hunting api",
                    True,
                    "HUNTING_API=mde: Microsoft is retiring MDE's advanced hunting API (MC1220762); move to "
                    "HUNTING_API=graph with ThreatHunting.Read.All on Microsoft Graph",
                )
            ]
        borrowed = self._graph_provider
        owned = borrowed is None
        provider = token_provider(self.settings, graph=True) if borrowed is None else _Borrowed(borrowed)
        graph = graph_base_url(self.settings)
        try:
            try:
                token = await self._within(provider.get_token(), "the token endpoint")
            except Exception as exc:
                return [
                    Check(
                        "graph token",
                        False,
                        f"no Microsoft Graph token for {graph_scope(self.settings)}: {_reason(exc)}",
                    )
                ]
        finally:
            if owned:
                await provider.close()
        claims = _claims(token)
        checks = [Check("graph token", True, f"HUNTING_API=graph, {graph}")]
        name = f"graph permission {GRAPH_HUNTING_ROLE} ({', '.join(HUNTING_FEATURES)})"
        if claims is None:
            if self.settings.mde_auth is MdeAuth.STATIC:
                return [*checks, Check(name, True, "not checked: the static token is not a JWT")]
            return [*checks, Check(name, False, "the Graph token is not a JWT, so its roles cannot be read")]
        aud = claims.get("aud")
        audiences = [aud] if isinstance(aud, str) else [str(a) for a in aud or []]
        if audiences and not any(a.rstrip("/") in (GRAPH_APP_ID, graph) for a in audiences):
            checks.append(
                Check(
                    "graph token audience",
                    False,
                    f"the token is for {', '.join(audiences)}, not Microsoft Graph at {graph}: set "
                    f"GRAPH_SCOPE={graph}/.default (or unset it)",
                )
            )
        roles = claims.get("roles")
        if isinstance(roles, list) and GRAPH_HUNTING_ROLE in roles:
            checks.append(Check(name, True))
        else:
            checks.append(Check(name, False, f"the Graph token's roles lack {GRAPH_HUNTING_ROLE}: {GRAPH_GRANT_HINT}"))
        return checks

    async def _check_reachability(self, provider: TokenProvider) -> Check:
        """One cheap call (``GET /api/machines?$top=1``), no retries: proves host, token and read access."""
        from mde.client import MdeClient
        from mde.errors import AuthenticationFailed, MdeError, PermissionDenied, RateLimited
        from mde.retry import RetryPolicy

        base_url = api_base_url(self.settings)
        client = MdeClient(base_url, _Borrowed(provider), timeout=self.timeout_s, retry=RetryPolicy(max_attempts=1))
        try:
            first = await self._within(_first_machine(client), "MDE")
        except AuthenticationFailed:
            return Check(
                "mde api",
                False,
                f"{base_url} rejected the token (401): check MDE_TENANT_ID and MDE_SCOPE (the token must be for "
                "WindowsDefenderATP)",
            )
        except PermissionDenied as exc:
            return Check(
                "mde api",
                False,
                f"{base_url} refused GET /api/machines (403 {exc.code or 'Forbidden'}): grant "
                f"{exc.missing_role or READ_ROLES[0]} and admin consent, or fix the token audience (MDE_SCOPE)",
            )
        except RateLimited as exc:
            return Check("mde api", True, f"{base_url} answered, but throttled (429, retry after {exc.retry_after} s)")
        except MdeError as exc:
            return Check("mde api", False, f"cannot use MDE at {base_url}: {_one_line(exc)} (check MDE_BASE_URL)")
        finally:
            await client.aclose()
        seen = "one device listed" if first is not None else "no devices onboarded yet"
        return Check("mde api", True, f"GET {base_url}/api/machines?$top=1: {seen}")

    # -- chat ---------------------------------------------------------------------------------------------
    async def _check_chat(self) -> list[Check]:
        settings = self.settings
        if not settings.slack_enabled and not settings.teams_enabled:
            return [
                Check(
                    "chat",
                    False,
                    "no chat platform is enabled: set SLACK_BOT_TOKEN and SLACK_SIGNING_SECRET "
                    "(docs/deploy-slack.md) or TEAMS_APP_ID",
                )
            ]
        checks = []
        if settings.slack_enabled:
            checks.append(await self._guard_one("slack", self._check_slack))
        if settings.teams_enabled:
            checks.append(self._check_teams())
        return checks

    async def _guard_one(self, name: str, check: Callable[[], Awaitable[Check]]) -> Check:
        try:
            return await check()
        except Exception as exc:
            return Check(name, False, f"unexpected {_reason(exc)}")

    async def _check_slack(self) -> Check:
        from slack_sdk.errors import SlackApiError
        from slack_sdk.web.async_client import AsyncWebClient

        token = self.settings.slack_bot_token
        assert token is not None
        base_url = self.settings.slack_api_url or AsyncWebClient.BASE_URL
        client = AsyncWebClient(token=token.get_secret_value(), base_url=base_url, timeout=int(self.timeout_s))
        try:
            answer = await self._within(client.auth_test(), "Slack")
        except SlackApiError as exc:
            error = exc.response.get("error") if exc.response is not None else None
            return Check("slack", False, f"Slack rejected SLACK_BOT_TOKEN ({error or exc}): use the xoxb- bot token")
        except Exception as exc:
            return Check("slack", False, f"cannot reach Slack at {base_url}: {_reason(exc)}")
        return Check("slack", True, f"auth.test: team {answer.get('team_id')}, bot user {answer.get('user_id')}")

    def _check_teams(self) -> Check:
        settings = self.settings
        if settings.teams_auth == "playground":
            return Check("teams", False, "TEAMS_AUTH=playground is development only: it takes activities with no token")
        missing = [] if settings.teams_tenant_id else ["TEAMS_TENANT_ID"]
        if settings.teams_auth == "client_secret" and settings.teams_client_secret is None:
            missing.append("TEAMS_CLIENT_SECRET")
        if settings.teams_auth == "certificate":
            path = settings.teams_certificate_path
            if path is None:
                missing.append("TEAMS_CERTIFICATE_PATH")
            elif not Path(path).is_file():
                return Check("teams", False, f"TEAMS_CERTIFICATE_PATH={path} is not a readable file")
        if missing:
            return Check("teams", False, f"TEAMS_AUTH={settings.teams_auth} needs {', '.join(missing)}")
        return Check("teams", True, f"app {settings.teams_app_id}, TEAMS_AUTH={settings.teams_auth}")


async def _first_machine(client: MdeClient) -> Machine | None:
    async for machine in client.iter_machines(page_size=1):
        return machine
    return None


def _sqlite_path(url: str) -> Path | None:
    from sqlalchemy.engine import make_url

    database = make_url(url).database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return Path(database)


def _known_revision(revision: str) -> bool:
    from alembic.script import ScriptDirectory

    from approvals.migrate import alembic_config

    try:
        return ScriptDirectory.from_config(alembic_config("sqlite://")).get_revision(revision) is not None
    except Exception:
        return False


def _claims(token: str) -> dict[str, Any] | None:
    """The token's claims, read without verifying the signature: MDE verifies it; we only read roles."""
    try:
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        return None
    return claims if isinstance(claims, dict) else None


def _token_summary(auth: MdeAuth, claims: dict[str, Any] | None) -> str:
    if claims is None:
        return f"MDE_AUTH={auth.value}"
    expires = claims.get("exp")
    if isinstance(expires, int | float):
        minutes = int((expires - time.time()) // 60)
        return f"MDE_AUTH={auth.value}, expires in {minutes} min"
    return f"MDE_AUTH={auth.value}"


async def run_checks(
    settings: Settings | None = None,
    *,
    db: Database | None = None,
    token_provider: TokenProvider | None = None,
    graph_token_provider: TokenProvider | None = None,
    policy: Policy | None = None,
    timeout_s: float = DEFAULT_TIMEOUT_S,
) -> list[Check]:
    if settings is None:
        try:
            # the same settings serve runs with: file: and Key Vault references resolved
            settings = await resolve_settings(load_settings())
        except SettingsError as exc:
            message = str(exc).replace(":\n  ", ": ").replace("\n  ", "; ")
            return [Check("settings", False, _one_line(message, limit=1000))]
    doctor = Doctor(
        settings,
        db=db,
        token_provider=token_provider,
        graph_token_provider=graph_token_provider,
        policy=policy,
        timeout_s=timeout_s,
    )
    return await doctor.run()


def render(checks: Sequence[Check]) -> str:
    failed = sum(not c.ok for c in checks)
    summary = f"all {len(checks)} checks passed" if not failed else f"{failed} of {len(checks)} checks failed"
    return "\n".join([*(c.line() for c in checks), summary])


async def doctor_report(
    settings: Settings | None = None,
    *,
    db: Database | None = None,
    token_provider: TokenProvider | None = None,
    policy: Policy | None = None,
) -> str:
    """The report as text for the chat ``doctor`` command: one line per check, then a summary line.

    Pass the running process's objects to check what it really uses; a borrowed database or token provider
    is neither disposed nor closed.
    """
    return render(await run_checks(settings, db=db, token_provider=token_provider, policy=policy))


def main(out: TextIO = sys.stdout) -> int:
    """The CLI: exit 0 when every check passes, 1 otherwise."""
    logging.getLogger("azure").setLevel(logging.CRITICAL)  # its failures are in our FAIL lines already
    checks = asyncio.run(run_checks())
    print(render(checks), file=out)
    return 0 if all(c.ok for c in checks) else 1
