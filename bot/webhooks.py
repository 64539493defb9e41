"""``POST /api/incidents``: incident notifications from a Sentinel playbook, a Logic App or any sender.

Authentication, one of:

* ``X-MDE-ChatOps-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<raw body>" with INCIDENTS_SECRET>``,
  within five minutes of now, each signature accepted once across all replicas (stored in the database);
* ``Authorization: Bearer <INCIDENTS_TOKEN>`` (what a Logic App HTTP action can send without code).

Both compare in constant time. Anything else is 401 and is not stored. An authenticated body that cannot
be read (not JSON, nested deeper than ``bot.bodies.MAX_DEPTH``, not an incident) is 400 with the reason,
and is kept in ``webhook_rejects`` for inspection.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import time
from dataclasses import dataclass
from datetime import timedelta

from aiohttp import web

from approvals.db import Database
from approvals.errors import PayloadError
from approvals.incidents import service as incidents
from approvals.incidents.flows import IncidentFlows
from approvals.incidents.payloads import parse_incident
from bot.bodies import BodyError, loads_bounded

log = logging.getLogger(__name__)
PATH = "/api/incidents"
SIGNATURE_HEADER = "X-MDE-ChatOps-Signature"
WINDOW_S = 300


def sign(secret: str, body: bytes, timestamp: int | None = None) -> str:
    """The header value a sender computes (used by ``mde-chatops incidents replay`` and the tests)."""
    ts = int(time.time()) if timestamp is None else timestamp
    return f"t={ts},v1={_digest(secret, body, ts)}"


def _digest(secret: str, body: bytes, timestamp: int) -> str:
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


@dataclass
class IncidentWebhook:
    db: Database
    flows: IncidentFlows
    secret: str | None = None
    token: str | None = None

    def register_routes(self, app: web.Application) -> None:
        app.router.add_post(PATH, self._handle)

    async def _check_signature(self, header: str, body: bytes, now: float) -> str | None:
        """None when valid, else the reason (logged, not returned)."""
        if not self.secret:
            return "no INCIDENTS_SECRET is configured"
        parts = dict(p.split("=", 1) for p in header.split(",") if "=" in p)
        try:
            ts = int(parts.get("t", ""))
        except ValueError:
            return "malformed signature header"
        if abs(now - ts) > WINDOW_S:
            return "signature timestamp outside the five-minute window"
        expected = _digest(self.secret, body, ts)
        if not hmac.compare_digest(expected, parts.get("v1", "")):
            return "bad signature"
        async with self.db.transaction() as session:  # shared by every replica on the database
            if not await incidents.first_use(session, expected, timedelta(seconds=WINDOW_S)):
                return "replayed signature"
        return None

    async def _authenticate(self, request: web.Request, body: bytes) -> str | None:
        header = request.headers.get(SIGNATURE_HEADER)
        if header:
            return await self._check_signature(header, body, time.time())
        scheme, _, value = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            if not self.token:
                return "no INCIDENTS_TOKEN is configured"
            return None if hmac.compare_digest(value.strip().encode(), self.token.encode()) else "bad bearer token"
        return "no signature and no bearer token"

    async def _reject(self, reason: str, body: bytes) -> web.Response:
        async with self.db.transaction() as session:
            incidents.record_reject(session, reason, body)
        return web.json_response({"error": reason}, status=400)

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        refusal = await self._authenticate(request, body)
        if refusal is not None:
            log.warning("incident webhook refused: %s", refusal)
            return web.json_response({"error": "unauthorized"}, status=401)
        try:
            payload = loads_bounded(body)
        except BodyError as exc:
            return await self._reject(str(exc), body)
        try:
            data = parse_incident(payload)
        except PayloadError as exc:
            return await self._reject(str(exc), body)
        received = await self.flows.receive(data, payload)
        return web.json_response(
            {
                "incident": received.incident_id,
                "created": received.created,
                "changed": received.changed,
                "rules": received.rules,
                "requests": received.requests,
            }
        )
