"""Which HTTP requests on ``/slack/events`` reach bolt (the idea of bolt's own request-verification
middleware, made stricter; the surface only translates).

1. The signature: ``v0=`` HMAC-SHA256 of ``v0:<X-Slack-Request-Timestamp>:<raw body>`` with the signing
   secret, the timestamp within five minutes (slack_sdk's ``SignatureVerifier``). Checked before bolt
   parses anything, so a malformed body from a stranger is a 401, never a 500.
2. Each signature once: Slack signs every delivery anew, so the same signature twice is a replay. It is
   recorded in ``webhook_nonces`` (shared by every replica, like the incident webhook's) and a repeat is
   refused with 401.
3. Each Events API event once: Slack retries a delivery (``X-Slack-Retry-Num``, same ``event_id``) when
   the answer took over three seconds or failed. A retry of an event already taken is answered 200 and
   not run again; a retry of one that never arrived is run.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import timedelta
from enum import Enum
from typing import Any
from urllib.parse import parse_qs

from aiohttp import web
from slack_sdk.signature import SignatureVerifier

from approvals.db import Database
from approvals.incidents.service import first_use
from bot.bodies import BodyError, loads_bounded

WINDOW_S = 300  # slack_sdk's SignatureVerifier refuses timestamps further than this from now
RETRY_HEADER = "X-Slack-Retry-Num"


class Verdict(Enum):
    DISPATCH = "dispatch"  # a new, signed request: hand it to bolt
    ALREADY_HANDLED = "already-handled"  # Slack retrying a delivery we took: 200, nothing runs
    REFUSED = "refused"  # 401
    UNREADABLE = "unreadable"  # 400: signed, but not a body bolt could read safely


@dataclass(frozen=True, slots=True)
class Admission:
    verdict: Verdict
    reason: str = ""


@dataclass
class SlackIngress:
    db: Database
    signing_secret: str

    def __post_init__(self) -> None:
        self._verifier = SignatureVerifier(self.signing_secret) if self.signing_secret else None

    async def admit(self, request: web.Request) -> Admission:
        body = await request.text()
        if self._verifier is None:
            return Admission(Verdict.REFUSED, reason="no SLACK_SIGNING_SECRET is configured")
        if not self._verifier.is_valid_request(body, dict(request.headers)):
            return Admission(Verdict.REFUSED, reason="bad or expired signature")
        retry = bool(request.headers.get(RETRY_HEADER))
        if not await self._first("signature", request.headers.get("X-Slack-Signature", "")):
            if retry:
                return Admission(Verdict.ALREADY_HANDLED)
            return Admission(Verdict.REFUSED, reason="replayed signature")
        try:
            payload = _payload(body)
        except BodyError as exc:
            return Admission(Verdict.UNREADABLE, reason=str(exc))
        event_id = payload.get("event_id") if isinstance(payload, dict) else None
        if isinstance(event_id, str) and event_id and not await self._first("event", event_id):
            return Admission(Verdict.ALREADY_HANDLED)
        return Admission(Verdict.DISPATCH)

    async def _first(self, kind: str, value: str) -> bool:
        """Record a value as seen, on every replica; False if it was seen inside the window."""
        digest = hashlib.sha256(f"slack-{kind}:{value}".encode()).hexdigest()  # never collides with other routes
        async with self.db.transaction() as session:
            return await first_use(session, digest, timedelta(seconds=WINDOW_S))


def _payload(body: str) -> Any:
    """The JSON inside a delivery, depth-bounded before bolt parses it: the whole body for the Events API,
    the ``payload`` form field for interactions; None for a slash command (plain form fields)."""
    if body.startswith("{"):
        return loads_bounded(body)
    fields = parse_qs(body, max_num_fields=100)
    payload = fields.get("payload")
    return loads_bounded(payload[0]) if payload else None
