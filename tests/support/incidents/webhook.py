"""The incident webhook on the stack as a SIEM reaches it: signed or bearer-authenticated posts to ``/api/incidents``,
one rule that proposes isolation, the war-room thread on the console."""

from __future__ import annotations

import io
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
from sqlalchemy import func, select

from approvals.incidents.rules import RuleSet
from bot.console.surface import ConsoleSurface
from bot.server import build_app, start_site
from bot.webhooks import SIGNATURE_HEADER, IncidentWebhook, sign
from tests.support.stack import Stack

SECRET = "incident-secret"
TOKEN = "incident-token"
RULES = RuleSet.model_validate(
    {
        "rules": [
            {
                "name": "ransomware-high",
                "when": {"severity": ["high", "critical"], "title_contains": ["ransomware"]},
                "post": [{"surface": "console", "channel": "soc", "mention": "@soc-oncall"}],
                "propose": {"action": "isolate", "type": "selective"},
            }
        ]
    }
)


@dataclass
class Rig:
    stack: Stack
    console: ConsoleSurface
    url: str
    http: httpx.AsyncClient

    async def send(self, body: Any, *, auth: str = "signature", timestamp: int | None = None) -> httpx.Response:
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        headers = {"Content-Type": "application/json"}
        if auth == "signature":
            headers[SIGNATURE_HEADER] = sign(SECRET, raw, timestamp)
        elif auth == "bearer":
            headers["Authorization"] = f"Bearer {TOKEN}"
        elif auth:
            headers.update(json.loads(auth))
        return await self.http.post(self.url + "/api/incidents", content=raw, headers=headers)

    async def count(self, model: Any) -> int:
        async with self.stack.db.sessions() as session:
            return int(await session.scalar(select(func.count()).select_from(model)) or 0)

    def hosts(self, n: int) -> list[dict[str, Any]]:
        return eligible_hosts(self.stack, n)


def eligible_hosts(stack: Stack, n: int) -> list[dict[str, Any]]:
    """Active Windows workstations without protection tags."""
    machines = [
        m
        for m in stack.sim.tenant.machines.values()
        if m["computerDnsName"].startswith("ws-0")
        and m["healthStatus"] == "Active"
        and m["onboardingStatus"] == "onboarded"
        and m["osPlatform"].startswith("Windows1")
        and not m["machineTags"]
    ]
    return sorted(machines, key=lambda m: m["computerDnsName"])[:n]


@asynccontextmanager
async def incident_rig() -> AsyncIterator[Rig]:
    """The stack with the webhook served on loopback and a console surface (what the ``rig`` fixtures yield)."""
    console = ConsoleSurface(io.StringIO())
    async with Stack.start(make_surfaces=lambda _c: [console], rules=RULES) as stack:
        webhook = IncidentWebhook(stack.db, stack.engine.incidents, secret=SECRET, token=TOKEN)
        runner, port = await start_site(build_app(stack.db, [webhook]), "127.0.0.1", 0)
        async with httpx.AsyncClient(timeout=30) as http:
            yield Rig(stack, console, f"http://127.0.0.1:{port}", http)
        await runner.cleanup()
