"""The Entra ID tokens and the application permissions their ``roles`` claim grants.

The MDE token is checked for its audience and for the role of every verb the policy enables; the Microsoft
Graph token advanced hunting uses for its own audience and ``ThreatHunting.Read.All``. Claims are decoded
without verifying the signature (MDE and Graph verify it; the doctor only reads), and only role names and
audiences are ever shown.
"""

from __future__ import annotations

import time
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

import jwt

from approvals.verbs import ACTIONS, Verb
from bot.config import HuntingApi, MdeAuth
from bot.doctor.report import Borrowed, Check, Context, reason
from bot.mde_access import graph_base_url, graph_scope, token_provider
from mde.auth import TokenProvider
from mde.client import ROLE_FOR_PATH

READ_ROLES = ("Machine.Read.All", "Machine.ReadWrite.All")
#: a role that a broader one includes: Ti.ReadWrite.All sees every indicator, Ti.ReadWrite the app's own
#: (get-ti-indicators-collection.md)
BROADER = {"Ti.ReadWrite": ("Ti.ReadWrite", "Ti.ReadWrite.All")}
HUNTING_ROLE = ROLE_FOR_PATH["run"]
#: Microsoft Graph's runHuntingQuery (GR:includes/permissions/security-security-runhuntingquery-permissions.md)
GRAPH_HUNTING_ROLE = ROLE_FOR_PATH["runHuntingQuery"]
HUNTING_FEATURES = ("query targets", "schedules")
#: get-alerts.md: Alert.Read.All, or Alert.ReadWrite.All which includes it
ALERT_ROLES = (ROLE_FOR_PATH["alerts"], "Alert.ReadWrite.All")
ALERTS_CHECK = f"mde permission {ALERT_ROLES[0]} (riskiest first)"
#: what the bot does without it (docs/device-actions.md "Riskiest first"), then what to grant
ALERTS_WARNING = (
    f"not granted, so a request of more than 100 devices is ordered by MDE risk score only, not devices with "
    f"active alerts first, and its card says so: grant the application permission {ALERT_ROLES[0]} under API "
    "permissions → WindowsDefenderATP → Application permissions, with admin consent"
)
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


async def mde_token(ctx: Context, provider: TokenProvider) -> tuple[Check, dict[str, Any] | None]:
    """The ``mde token`` line and the token's claims (None when it is not a JWT or there is no token)."""
    try:
        token = await ctx.within(provider.get_token(), "the token endpoint")
    except Exception as exc:
        return Check("mde token", False, token_failure(ctx.settings.mde_auth, exc)), None
    claims = decode_claims(token)
    return Check("mde token", True, token_summary(ctx.settings.mde_auth, claims)), claims


def token_failure(auth: MdeAuth, exc: Exception) -> str:
    hint = {
        MdeAuth.MANAGED_IDENTITY: "is a managed identity assigned to this workload (and MDE_CLIENT_ID set to "
        "its client id when it is user-assigned)?",
        MdeAuth.CLIENT_SECRET: "check MDE_TENANT_ID, MDE_CLIENT_ID and MDE_CLIENT_SECRET (expired secret?)",
        MdeAuth.CERTIFICATE: "check MDE_TENANT_ID, MDE_CLIENT_ID and the PEM at MDE_CERTIFICATE_PATH",
        MdeAuth.STATIC: "check MDE_STATIC_TOKEN",
    }[auth]
    return f"no token with MDE_AUTH={auth.value} ({reason(exc)}): {hint}"


def check_roles(ctx: Context, claims: dict[str, Any] | None, verbs: Sequence[str]) -> list[Check]:
    if claims is None:
        if ctx.settings.mde_auth is MdeAuth.STATIC:
            return [Check("mde permissions", True, "not checked: the static token is not a JWT")]
        return [Check("mde permissions", False, "the token is not a JWT, so its roles cannot be read")]
    checks = []
    audience = audience_problem(ctx, claims)
    if audience:
        checks.append(Check("mde token audience", False, audience))
    granted = roles_of(claims)
    for need in required_permissions(verbs, mde_hunting=ctx.settings.hunting_api is HuntingApi.MDE):
        name = f"mde permission {need.label} ({', '.join(need.features)})"
        if granted & set(need.roles):
            checks.append(Check(name, True))
        elif need.optional:
            checks.append(Check(name, True, f"not granted, so {need.optional}"))
        else:
            checks.append(Check(name, False, f"the token's roles lack {need.roles[0]}: {GRANT_HINT}"))
    return checks


def alerts_from_roles(claims: dict[str, Any] | None) -> Check | None:
    """The ``Alert.Read.All`` verdict a JWT's roles give; None when only MDE can tell (the token is no JWT),
    or when the roles grant it (MDE is then asked to prove it)."""
    if claims is None or set(ALERT_ROLES) & roles_of(claims):
        return None
    return Check(ALERTS_CHECK, True, ALERTS_WARNING, warning=True)


def audience_problem(ctx: Context, claims: dict[str, Any]) -> str | None:
    from mde.clouds import cloud_endpoints

    settings = ctx.settings
    audiences = audiences_of(claims)
    scope = settings.mde_scope or cloud_endpoints(settings.mde_cloud).scope
    accepted = MDE_AUDIENCES | {scope.removesuffix("/.default").rstrip("/")}
    if not audiences or any(a.rstrip("/") in accepted for a in audiences):
        return None
    return (
        f"the token is for {', '.join(audiences)}, not WindowsDefenderATP, so MDE answers 403: set "
        "MDE_SCOPE=https://api.securitycenter.microsoft.com/.default (or unset it)"
    )


async def check_hunting(ctx: Context, graph_provider: TokenProvider | None) -> list[Check]:
    """Advanced hunting's token: Microsoft Graph's by default, a reminder of the retirement with HUNTING_API=mde."""
    settings = ctx.settings
    if settings.hunting_api is HuntingApi.MDE:
        return [
            Check(
                "hunting api",
                True,
                "HUNTING_API=mde: Microsoft is retiring MDE's advanced hunting API (MC1220762); move to "
                "HUNTING_API=graph with ThreatHunting.Read.All on Microsoft Graph",
            )
        ]
    owned = graph_provider is None
    provider = token_provider(settings, graph=True) if graph_provider is None else Borrowed(graph_provider)
    graph = graph_base_url(settings)
    try:
        try:
            token = await ctx.within(provider.get_token(), "the token endpoint")
        except Exception as exc:
            return [Check("graph token", False, f"no Microsoft Graph token for {graph_scope(settings)}: {reason(exc)}")]
    finally:
        if owned:
            await provider.close()
    claims = decode_claims(token)
    checks = [Check("graph token", True, f"HUNTING_API=graph, {graph}")]
    name = f"graph permission {GRAPH_HUNTING_ROLE} ({', '.join(HUNTING_FEATURES)})"
    if claims is None:
        if settings.mde_auth is MdeAuth.STATIC:
            return [*checks, Check(name, True, "not checked: the static token is not a JWT")]
        return [*checks, Check(name, False, "the Graph token is not a JWT, so its roles cannot be read")]
    audiences = audiences_of(claims)
    if audiences and not any(a.rstrip("/") in (GRAPH_APP_ID, graph) for a in audiences):
        checks.append(
            Check(
                "graph token audience",
                False,
                f"the token is for {', '.join(audiences)}, not Microsoft Graph at {graph}: set "
                f"GRAPH_SCOPE={graph}/.default (or unset it)",
            )
        )
    if GRAPH_HUNTING_ROLE in roles_of(claims):
        checks.append(Check(name, True))
    else:
        checks.append(Check(name, False, f"the Graph token's roles lack {GRAPH_HUNTING_ROLE}: {GRAPH_GRANT_HINT}"))
    return checks


def decode_claims(token: str) -> dict[str, Any] | None:
    """The token's claims, read without verifying the signature: MDE verifies it; we only read roles."""
    try:
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        return None
    return claims if isinstance(claims, dict) else None


def roles_of(claims: dict[str, Any]) -> set[str]:
    roles = claims.get("roles")
    return {str(r) for r in roles} if isinstance(roles, list) else set()


def audiences_of(claims: dict[str, Any]) -> list[str]:
    aud = claims.get("aud")
    return [aud] if isinstance(aud, str) else [str(a) for a in aud or []]


def token_summary(auth: MdeAuth, claims: dict[str, Any] | None) -> str:
    if claims is None:
        return f"MDE_AUTH={auth.value}"
    expires = claims.get("exp")
    if isinstance(expires, int | float):
        minutes = int((expires - time.time()) // 60)
        return f"MDE_AUTH={auth.value}, expires in {minutes} min"
    return f"MDE_AUTH={auth.value}"
