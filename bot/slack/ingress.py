"""Which HTTP requests on ``/slack/events`` reach bolt (the idea of bolt's own request-verification
middleware, made stricter; the surface only translates).

1. The signature: ``v0=`` HMAC-SHA256 of ``v0:<X-Slack-Request-Timestamp>:<raw body>`` with the signing
   secret, the timestamp within five minutes (slack_sdk's ``SignatureVerifier``;
   docs.slack.dev/authentication/verifying-requests-from-slack). Checked before bolt parses anything, so a
   malformed body from a stranger is a 401, never a 500.
2. Each signature once: Slack signs every delivery anew, so the same signature twice is a replay. It is
   recorded in ``webhook_nonces`` (shared by every replica, like the incident webhook's) and a repeat is
   refused with 401. On PostgreSQL (several replicas) the record is written before the request runs. On
   SQLite (one process) a write would wait behind the worker's writes, SQLite having one writer: acks took
   up to 4 s while a 1,000-device run was storing results (``benchmarks/slack_ack.py``), and Slack gives up
   after 3. There, the process's own memory refuses a repeat at once (it reads what the table holds once, after a
   restart), and the record is written in the background, by one task.
3. Each Events API event once: Slack retries a delivery (``X-Slack-Retry-Num``, same ``event_id``) when
   the answer took over three seconds or failed (docs.slack.dev/apis/events-api, "Retries"). A retry of an
   event already taken is answered 200 and not run again; a retry of one that never arrived is run.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from dataclasses import dataclass, field
from datetime import timedelta
from enum import Enum
from typing import Any
from urllib.parse import parse_qs

from aiohttp import web
from slack_sdk.signature import SignatureVerifier
from sqlalchemy import select

from approvals.db import Database, utcnow
from approvals.incidents.models import WebhookNonce
from approvals.incidents.service import first_use
from bot.bodies import BodyError, loads_bounded

WINDOW_S = 300  # slack_sdk's SignatureVerifier refuses timestamps further than this from now
RETRY_HEADER = "X-Slack-Retry-Num"
log = logging.getLogger(__name__)


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

    #: digests this process accepted, with when (monotonic): a repeat is refused without the database
    _seen: dict[str, float] = field(default_factory=dict, init=False, repr=False)
    #: accepted digests not yet written (SQLite), and the one task writing them: one connection, one
    #: transaction per batch, so a burst of commands does not take the pool's connections from the reads
    _unwritten: list[str] = field(default_factory=list, init=False, repr=False)
    _writer: asyncio.Task[None] | None = field(default=None, init=False, repr=False)
    _loaded: bool = field(default=False, init=False, repr=False)

    def __post_init__(self) -> None:
        self._verifier = SignatureVerifier(self.signing_secret) if self.signing_secret else None

    async def settled(self) -> None:
        """Wait for the records still being written in the background (SQLite; tests and shutdown)."""
        while self._writer is not None and not self._writer.done():
            await asyncio.wait({self._writer})

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
        if not self._loaded and not self.db.is_postgres:
            await self._load()
        now = time.monotonic()
        if now - self._seen.get(digest, -WINDOW_S * 2) < 2 * WINDOW_S:
            return False
        self._forget_before(now - 2 * WINDOW_S)
        self._seen[digest] = now
        if self.db.is_postgres:
            async with self.db.transaction() as session:
                return await first_use(session, digest, timedelta(seconds=WINDOW_S))
        self._unwritten.append(digest)
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write())
        return True

    async def _load(self) -> None:
        """Once per process: what was accepted before a restart, still inside the window (one read)."""
        now, wall = time.monotonic(), utcnow()
        async with self.db.sessions() as session:
            rows = await session.execute(
                select(WebhookNonce.digest, WebhookNonce.seen_at).where(
                    WebhookNonce.seen_at >= wall - timedelta(seconds=2 * WINDOW_S)
                )
            )
            for digest, seen_at in rows:
                self._seen.setdefault(digest, now - (wall - seen_at).total_seconds())
        self._loaded = True

    async def _write(self) -> None:
        while self._unwritten:
            batch, self._unwritten = self._unwritten, []
            try:
                async with self.db.transaction() as session:
                    for digest in batch:
                        await first_use(session, digest, timedelta(seconds=WINDOW_S))
            except Exception:  # the memory still refuses a repeat in this process; only a restart forgets it
                log.warning("could not record %d Slack signature(s) as used", len(batch), exc_info=True)

    def _forget_before(self, cutoff: float) -> None:
        if len(self._seen) > 10_000:
            self._seen = {d: at for d, at in self._seen.items() if at >= cutoff}


def _payload(body: str) -> Any:
    """The JSON inside a delivery, depth-bounded before bolt parses it: the whole body for the Events API,
    the ``payload`` form field for interactions; None for a slash command (plain form fields)."""
    if body.startswith("{"):
        return loads_bounded(body)
    fields = parse_qs(body, max_num_fields=100)
    payload = fields.get("payload")
    return loads_bounded(payload[0]) if payload else None
