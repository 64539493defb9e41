"""``TEAMS_AUTH=playground``: Microsoft 365 Agents Playground on this machine. Development only.

The Playground (``@microsoft/m365agentsplayground``) posts Teams-shaped activities to ``/api/messages``
with no Bot Framework token at all, so nothing it sends can be verified. This mode is therefore fenced in
three ways, and is refused at start-up unless all three hold (``bot.loopback``, checked by ``bot.config``
and again by the surface factory):

* the bot listens on a loopback address only (``HOST`` is an IP literal in 127.0.0.0/8 or ``::1``);
* replies go to the Playground's mocked Bot Connector on loopback (``TEAMS_PLAYGROUND_URL``), and every
  activity must name exactly that ``serviceUrl``; an activity that carries a token is not the Playground's;
* MDE is on loopback too (``MDE_BASE_URL``, the simulator): a Playground user can never touch a tenant.

Whoever the Playground says is speaking becomes a ``playground:`` principal (``PLATFORM``): never a
``teams:``, ``email:`` or ``entra-group:`` one, so no policy written for real Teams users matches it.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from approvals.identity import Actor
from bot.teams.ingress import Caller, CallerKind, Unauthorized

log = logging.getLogger(__name__)
PLATFORM = "playground"
#: what the bot presents to the Playground's connector, which asks for no token at all
CONNECTOR_TOKEN = "playground"


def _same_url(a: str, b: str) -> bool:
    return a.rstrip("/").lower() == b.rstrip("/").lower()


@dataclass(frozen=True, slots=True)
class PlaygroundVerifier:
    """The ``CallerVerifier`` for the Playground: no token, and exactly its connector as ``serviceUrl``."""

    service_url: str

    async def verify(self, authorization: str | None, activity: Mapping[str, Any] | None) -> Caller:
        if authorization:
            raise Unauthorized("TEAMS_AUTH=playground: a request with a token is not from the Playground")
        if activity is not None and not _same_url(str(activity.get("serviceUrl") or ""), self.service_url):
            raise Unauthorized("TEAMS_AUTH=playground: serviceUrl is not the Playground's connector")
        return Caller(kind=CallerKind.PLAYGROUND)


def playground_actor(sender: Any) -> Actor:
    """The Playground's user as a ``playground:`` principal: no e-mail, no groups, nothing a real policy names."""
    user_id = str(getattr(sender, "aad_object_id", None) or getattr(sender, "id", None) or "")
    name = str(getattr(sender, "name", None) or user_id)
    return Actor(platform=PLATFORM, user_id=user_id, display_name=name)


def announce(host: str, port: int, playground_url: str) -> None:
    """Said loudly at start: this process accepts unauthenticated Teams activities."""
    line = "!" * 100
    log.warning(
        "%s\nTEAMS_AUTH=playground: DEVELOPMENT ONLY. /api/messages on %s:%s accepts activities WITHOUT any token "
        "from the Agents Playground at %s; its users are playground: principals. Never run this in production.\n%s",
        line,
        host,
        port,
        playground_url,
        line,
    )
