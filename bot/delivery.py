"""Deliver the engine's stored event feed to each chat surface, in order, at least once.

Each surface has a cursor in the database. A batch of events is rendered (card updates coalesced: one
``update_request`` per request per batch, whatever number of events touched it), and the cursor moves
only when the whole batch went through; a surface that fails (Slack or Teams down) is retried with
backoff and catches up from storage, so reports queue and arrive later, in order. A lease on the cursor
makes one replica deliver a surface at a time.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import uuid
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import timedelta

from approvals.db import Database
from approvals.outbox import service as outbox
from approvals.outbox.models import Event, EventKind
from approvals.periodic import Periodic
from approvals.requests.models import RequestRecord
from approvals.requests.states import RequestState
from approvals.service import ChatOps
from approvals.verbs import Effect, Verb
from bot.incident_delivery import IncidentDelivery
from bot.surfaces.base import ChatSurface, MessageRef

log = logging.getLogger(__name__)

MILESTONES = (25, 50, 75)
REQUEST_CACHE = 10_000
#: the thread line at approval, by what approval sets off (a schedule's own line then says it is active)
APPROVED_LINES = {
    Effect.ACTS_NOW: "Approved by {by}; execution is starting.",
    Effect.ACTIVATES_SCHEDULE: "Approved by {by}.",
}
STATE_LINES = {
    "approved": APPROVED_LINES[Effect.ACTS_NOW],
    "rejected": "Rejected by {by}.",
    "expired": "Expired without enough approvals.",
    "cancelled": "Cancelled by {by}; nothing more will be submitted.",
}


@dataclass
class _Batch:
    dirty: set[int] = field(default_factory=set)
    #: requests that crossed a progress milestone in this batch: one line each, after the batch
    progressed: dict[int, MessageRef] = field(default_factory=dict)
    last_id: int = 0


class Delivery:
    def __init__(
        self,
        db: Database,
        chatops: ChatOps,
        surfaces: list[ChatSurface],
        *,
        owner: str | None = None,
        poll_s: float = 1.0,
        batch: int = 100,
        lease_s: float = 30.0,
        max_backoff_s: float = 60.0,
    ) -> None:
        self.db = db
        self.chatops = chatops
        self.surfaces = {s.name: s for s in surfaces}
        self.owner = owner or f"delivery-{uuid.uuid4().hex[:12]}"
        self.batch = batch
        self.lease = timedelta(seconds=lease_s)
        self.max_backoff_s = max_backoff_s
        #: one batch at a time per surface in this process (the lease covers other processes)
        self._locks: dict[str, asyncio.Lock] = {name: asyncio.Lock() for name in self.surfaces}
        #: one loop per surface: a surface that is down backs off without holding up the others
        self._loops = {
            name: Periodic(
                functools.partial(self._round, name),
                interval_s=poll_s,
                name=f"delivery to {name}",
                backoff=self._backoff,
            )
            for name in self.surfaces
        }
        #: request id -> (origin surface, verb); bounded (a long-running bot sees many requests)
        self._requests: OrderedDict[int, tuple[str, Verb]] = OrderedDict()
        self._milestone: dict[tuple[str, int], int] = {}
        self.incidents = IncidentDelivery(db, self.owner, self.lease, batch)
        chatops.subscribe(self.wake)

    def wake(self) -> None:
        for loop in self._loops.values():
            loop.wake()

    async def start(self) -> None:
        for loop in self._loops.values():
            await loop.start()

    async def stop(self) -> None:
        for loop in self._loops.values():
            await loop.stop()

    async def drain(self, name: str, *, max_rounds: int = 1000) -> None:
        """Deliver everything stored so far to one surface (console, tests): deterministic output."""
        for _ in range(max_rounds):
            if not await self.deliver_once(name):
                return

    async def _round(self, name: str) -> bool:
        """One batch; True while there is more (a surface catching up does not wait between batches)."""
        return await self.deliver_once(name) > 0

    def _backoff(self, failures: int) -> float:
        """1 s, 2 s, 4 s, … at most ``max_backoff_s`` (read each time: tests shorten it on a running engine)."""
        return min(self.max_backoff_s, 2.0 ** (failures - 1))

    async def _about(self, request_id: int) -> tuple[str, Verb] | None:
        """(origin surface, verb) of a request, read once."""
        if request_id not in self._requests:
            async with self.db.sessions() as session:
                record = await session.get(RequestRecord, request_id)
            if record is None:
                return None
            self._requests[request_id] = (record.origin_surface, record.verb)
            while len(self._requests) > REQUEST_CACHE:
                self._requests.popitem(last=False)
        return self._requests[request_id]

    async def deliver_once(self, name: str) -> int:
        """Deliver one batch to one surface; returns how many events it consumed (0: nothing to do)."""
        async with self._locks[name]:
            return await self._deliver_batch(name)

    async def _deliver_batch(self, name: str) -> int:
        surface = self.surfaces[name]
        handled = await self.incidents.deliver_once(surface)
        return handled + await self._deliver_requests(name, surface)

    async def _deliver_requests(self, name: str, surface: ChatSurface) -> int:
        async with self.db.transaction() as session:
            cursor = await outbox.lease_cursor(session, name, self.owner, self.lease)
            if cursor is None:
                return 0
            events = await outbox.events_after(session, cursor, self.batch)
        if not events:
            return 0
        batch = _Batch(last_id=events[-1].id)
        for event in events:
            about = await self._about(event.request_id)
            if about is None or about[0] != name:
                continue
            await self._apply(surface, event, batch)
        for request_id, thread in sorted(batch.progressed.items()):
            await self._progress_line(surface, thread, request_id)
        for request_id in sorted(batch.dirty):
            ref = await self._ref(request_id, name)
            if ref is not None:
                await surface.update_request(ref, await self.chatops.view(request_id))
        async with self.db.transaction() as session:
            await outbox.advance_cursor(session, name, self.owner, batch.last_id)
        return len(events)

    async def _ref(self, request_id: int, name: str) -> MessageRef | None:
        async with self.db.sessions() as session:
            row = await outbox.get_message_ref(session, request_id, name)
        if row is None:
            return None
        return MessageRef(
            surface=name,
            channel_id=row.channel_id,
            message_id=row.message_id,
            context=row.context,
            thread_id=row.thread_id,
        )

    async def _apply(self, surface: ChatSurface, event: Event, batch: _Batch) -> None:
        kind = EventKind(event.kind)
        request_id = event.request_id
        if kind is EventKind.CREATED:
            await self._post_card(surface, request_id)
            return
        ref = await self._ref(request_id, surface.name)
        if ref is None:
            await self._post_card(surface, request_id)
            ref = await self._ref(request_id, surface.name)
            if ref is None:
                return
        payload = event.payload or {}
        if kind in (EventKind.DECISION, EventKind.PROGRESS, EventKind.STATE):
            batch.dirty.add(request_id)
        if kind is EventKind.STATE and payload.get("state") in STATE_LINES:
            template = STATE_LINES[payload["state"]]
            about = await self._about(request_id)
            effect = about[1].effect if about is not None else None
            if payload["state"] == "approved" and effect is not None:
                template = APPROVED_LINES[effect]
            await surface.post_in_thread(ref, template.format(by=payload.get("by", "someone")))
        elif kind is EventKind.DECISION:
            await surface.post_in_thread(ref, f"Approved by {payload.get('by')} ({payload.get('approvals')} so far).")
        elif kind is EventKind.PROGRESS and self._crossed_milestone(surface.name, request_id, payload):
            batch.progressed[request_id] = ref
        elif kind is EventKind.DEVICE_FAILED:
            names = ", ".join(payload.get("devices") or [])  # none for a tenant-wide indicator
            subject = f"{names}: " if names else ""
            await surface.post_in_thread(ref, f"✗ {subject}{payload.get('outcome')} — {payload.get('error') or ''}")
        elif kind is EventKind.NOTE:
            await surface.post_in_thread(ref, str(payload.get("text", "")))
        elif kind is EventKind.FINISHED:
            batch.dirty.discard(request_id)
            batch.progressed.pop(request_id, None)  # the summary already says it all
            self._milestone.pop((surface.name, request_id), None)  # per-request memory ends with the request
            view = await self.chatops.view(request_id)
            await surface.update_request(ref, view)
            await surface.post_summary(ref, view, await self.chatops.results_csv(request_id))

    def _crossed_milestone(self, name: str, request_id: int, payload: dict) -> bool:  # type: ignore[type-arg]
        """Whether this progress event crosses a milestone not yet reported for the request on this surface."""
        total = int(payload.get("total") or 0)
        if not total:
            return False
        percent = 100 * int(payload.get("done") or 0) // total
        reached = max((m for m in MILESTONES if percent >= m), default=0)
        key = (name, request_id)
        if reached <= self._milestone.get(key, 0):
            return False
        self._milestone[key] = reached
        return True

    async def _progress_line(self, surface: ChatSurface, ref: MessageRef, request_id: int) -> None:
        """One line per batch however many milestones it crossed: each would show the same current numbers."""
        view = await self.chatops.view(request_id)
        # a progress event can be committed just after the final one; the summary already says it all
        if view.progress is not None and not RequestState(view.state).is_final:
            await surface.post_in_thread(ref, f"Progress: {view.progress.sentence()}.")

    async def _post_card(self, surface: ChatSurface, request_id: int) -> None:
        async with self.db.sessions() as session:
            if await outbox.get_message_ref(session, request_id, surface.name) is not None:
                return
            record = await session.get(RequestRecord, request_id)
        if record is None:
            return
        view = await self.chatops.view(request_id)
        thread_id = None
        if record.incident_id and record.incident_id.isdigit():  # in the incident's war-room thread
            root = await self.incidents.root_for(surface, int(record.incident_id), record.origin_channel)
            thread_id = root.message_id if root is not None else None
        ref = await surface.post_request(record.origin_channel, view, record.origin_context, thread_id)
        async with self.db.transaction() as session:
            outbox.save_message_ref(
                session, request_id, surface.name, ref.channel_id, ref.message_id, ref.context, ref.thread_id
            )
