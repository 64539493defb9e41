"""Deliver the incidents' feed to one chat surface: post each routed incident's notification (the
war-room thread's root), then its updates, closure and notes into that thread.

Runs inside ``bot.delivery.Delivery``'s loop for the surface, under the same lock and with a cursor of
its own (``<surface>:incidents``) leased by the same owner, so request cards that belong in an incident's
thread never race the thread's root.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from approvals.db import Database
from approvals.incidents import service as incidents
from approvals.incidents.models import IncidentRecord, IncidentThread
from approvals.outbox import service as outbox
from approvals.outbox.models import DeliveryCursor
from approvals.views import IncidentView
from bot.surfaces.base import ChatSurface, MessageRef

log = logging.getLogger(__name__)


class IncidentDelivery:
    def __init__(self, db: Database, owner: str, lease: timedelta, batch: int = 100) -> None:
        self.db = db
        self.owner = owner
        self.lease = lease
        self.batch = batch

    @staticmethod
    def cursor_name(surface: str) -> str:
        return f"{surface}:incidents"

    async def deliver_once(self, surface: ChatSurface) -> int:
        key = self.cursor_name(surface.name)
        async with self.db.sessions() as session:  # a read first: most rounds have no incident news to lease for
            seen = await session.get(DeliveryCursor, key)
            if (seen.last_event_id if seen else 0) >= await incidents.latest_event_id(session):
                return 0
        async with self.db.transaction() as session:
            cursor = await outbox.lease_cursor(session, key, self.owner, self.lease)
            if cursor is None:
                return 0
            events = await incidents.events_after(session, cursor, self.batch)
        if not events:
            return 0
        for event in events:
            await self._apply(surface, event.incident_id, event.kind, event.payload or {})
        async with self.db.transaction() as session:
            await outbox.advance_cursor(session, key, self.owner, events[-1].id)
        return len(events)

    async def _threads(self, incident_id: int, surface: str) -> list[IncidentThread]:
        async with self.db.sessions() as session:
            return await incidents.threads_for(session, incident_id, surface)

    async def _apply(self, surface: ChatSurface, incident_id: int, kind: str, payload: dict[str, object]) -> None:
        for thread in await self._threads(incident_id, surface.name):
            posted = thread.message_id is not None
            ref = await self.ensure_root(surface, thread)
            if ref is None or not posted or kind == "opened":
                continue  # a root posted just now already shows the incident as it is
            if kind in ("updated", "closed"):
                await surface.update_notification(ref, await self._view(incident_id, thread.mention))
            text = {"updated": f"Update: {payload.get('text', '')}", "closed": "The incident was closed."}.get(
                kind, str(payload.get("text", ""))
            )
            if text:
                await surface.post_in_thread(ref, text)

    async def _view(self, incident_id: int, mention: str | None) -> IncidentView:
        async with self.db.sessions() as session:
            record = await session.get(IncidentRecord, incident_id)
        assert record is not None
        return incidents.build_view(record, mention)

    async def ensure_root(self, surface: ChatSurface, thread: IncidentThread) -> MessageRef | None:
        """The thread's root, posting the notification first if it is not out yet."""
        if thread.message_id is None:
            async with self.db.sessions() as session:
                context = thread.context or await incidents.conversation_context(
                    session, thread.surface, thread.channel_id
                )
                record = await session.get(IncidentRecord, thread.incident_id)
            assert record is not None
            try:
                ref = await surface.post_notification(
                    thread.channel_id, incidents.build_view(record, thread.mention), context
                )
            except LookupError as exc:  # e.g. Teams: the bot was never added to that channel
                log.warning("incident %s: cannot post to %s %s: %s", record.id, surface.name, thread.channel_id, exc)
                return None
            async with self.db.transaction() as session:
                row = await session.get(IncidentThread, thread.id)
                assert row is not None
                row.message_id, row.context = ref.message_id, ref.context
            thread.message_id, thread.context = ref.message_id, ref.context
        return MessageRef(
            surface=surface.name, channel_id=thread.channel_id, message_id=thread.message_id, context=thread.context
        )

    async def root_for(self, surface: ChatSurface, incident_id: int, channel_id: str) -> MessageRef | None:
        async with self.db.sessions() as session:
            thread = await incidents.thread_for(session, incident_id, surface.name, channel_id)
        return None if thread is None else await self.ensure_root(surface, thread)
