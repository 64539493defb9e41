"""Who may post to ``/api/messages``, decided before the Agents SDK sees the request (the idea of bolt's
request-verification middleware: verification is its own layer, the surface only translates).

In order, and each failure is a 401 that names nothing to the caller (the reason is logged):

1. the bearer token, checked by a ``CallerVerifier``: ``bot.teams.auth.BotFrameworkAuth`` in production
   (Bot Framework channel tokens; Entra tokens only of apps on ``TEAMS_ALLOWED_CALLERS``). Another mode
   (a development tool's tokens, say) is one more verifier with the same method;
2. the activity is a Teams one: ``channelId`` is ``msteams`` (Direct Line, Web Chat and the other Bot
   Framework channels let the sender choose ``from``);
3. its ``serviceUrl`` (where replies go) is on the allow-list of Teams hosts;
4. it names the configured tenant (``channelData.tenant.id`` / ``conversation.tenantId``) and no other.

The body is read with bounded nesting (``bot.bodies``, the depth walked only once the token is good); an
unreadable body is a 400, but only after the token was checked, so a stranger learns nothing about how its
body was read.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol
from urllib.parse import urlsplit

from aiohttp import web

from bot.bodies import BodyError, check_depth, loads

log = logging.getLogger(__name__)
TEAMS_CHANNEL = "msteams"
LOOPBACK = frozenset({"127.0.0.1", "::1", "localhost"})


class Unauthorized(Exception):
    """The request is refused; the message says why (logged, never shown to the caller, never a secret)."""


class CallerKind(StrEnum):
    #: a Teams channel token: Teams itself binds the activity's ``from`` to the user who acted
    TEAMS_USER = "teams-user"
    #: an allow-listed app's own token: it may talk to the bot, never act as a human approver
    APP = "app"
    #: no token at all: the Agents Playground on loopback (``bot.teams.playground``, development only)
    PLAYGROUND = "playground"


@dataclass(frozen=True, slots=True)
class Caller:
    kind: CallerKind
    claims: dict[str, Any] = field(default_factory=dict)
    #: the calling app's id (``azp`` / ``appid``) for ``CallerKind.APP``
    app_id: str | None = None


class CallerVerifier(Protocol):
    async def verify(self, authorization: str | None, activity: Mapping[str, Any] | None) -> Caller:
        """The verified caller, or ``Unauthorized``. ``activity`` is None when the body could not be read
        (then only the token itself is checked)."""
        ...


@dataclass(frozen=True, slots=True)
class Admitted:
    activity: dict[str, Any]
    caller: Caller


class BadBody(Exception):
    """An authenticated request whose body is not an activity (400)."""


def host_allowed(url: str, hosts: tuple[str, ...]) -> bool:
    """``https`` to exactly one of ``hosts`` (plain ``http`` only to loopback, for a local connector)."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    if parts.username or parts.password or not host:
        return False
    if parts.scheme != "https" and not (host in LOOPBACK and parts.scheme == "http"):
        return False
    return host in hosts


def _as_dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def named_tenants(activity: Mapping[str, Any]) -> set[str]:
    conversation = _as_dict(activity.get("conversation"))
    tenant = _as_dict(_as_dict(activity.get("channelData")).get("tenant"))
    return {str(t).lower() for t in (conversation.get("tenantId"), tenant.get("id")) if t}


@dataclass
class TeamsIngress:
    verifier: CallerVerifier
    tenant_id: str
    service_hosts: tuple[str, ...]

    def __post_init__(self) -> None:
        self.service_hosts = tuple(h.lower() for h in self.service_hosts)

    async def admit(self, request: web.Request) -> Admitted:
        """The activity and its verified caller, or ``Unauthorized`` / ``BadBody``."""
        authorization = request.headers.get("Authorization")
        try:  # parsed before the token is checked (the token is checked against it), bounded only after
            body = loads(await request.read())
        except BodyError as exc:
            await self.verifier.verify(authorization, None)
            raise BadBody(str(exc)) from None
        if not isinstance(body, dict):
            await self.verifier.verify(authorization, None)
            raise BadBody("the body is not a JSON activity")
        caller = await self.verifier.verify(authorization, body)
        try:
            check_depth(body)
        except BodyError as exc:
            raise BadBody(str(exc)) from None
        self.check_activity(body)
        return Admitted(activity=body, caller=caller)

    def check_activity(self, activity: Mapping[str, Any]) -> None:
        if activity.get("channelId") != TEAMS_CHANNEL:
            raise Unauthorized("the activity is not from the Teams channel")
        if not host_allowed(str(activity.get("serviceUrl") or ""), self.service_hosts):
            raise Unauthorized("serviceUrl host is not allowed")
        if named_tenants(activity) != {self.tenant_id.lower()}:
            raise Unauthorized("the activity does not name this bot's tenant (and only it)")
