"""The port between the approvals engine and a chat platform.

Inbound, a surface turns platform payloads into calls on ``approvals.service.ChatOps``
(``handle(actor, origin, text)`` for commands, ``decide(actor, request_id, approve, reason)`` for
button clicks) and renders the returned ``Reply``.

Outbound, ``bot.delivery`` reads the engine's stored event feed and calls the methods below, so a
surface that was down catches up, in order, from storage. A surface never posts request cards on its
own: delivery posts the card when the request is created and keeps it up to date.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from approvals.views import IncidentView, RequestView


@dataclass(frozen=True, slots=True)
class MessageRef:
    """Where a posted card lives, enough to edit it and to reply in its thread."""

    surface: str
    channel_id: str
    message_id: str  # Slack ts, Teams activity id, console sequence number
    #: Teams: the serialized conversation reference; Slack: unused
    context: str | None = None
    #: the root of the thread the message was posted in (an incident's war-room thread), if any
    thread_id: str | None = None

    @property
    def thread_root(self) -> str:
        """Where replies about this message go: its own thread, or the thread it lives in."""
        return self.thread_id or self.message_id


class ChatSurface(Protocol):
    name: str

    async def start(self) -> None:
        """Open what the surface holds while it runs (a keep-alive session, a socket); before any post.
        A no-op where there is nothing to open."""
        ...

    async def stop(self) -> None:
        """Close what ``start`` opened; called at shutdown, after delivery has stopped."""
        ...

    async def post_request(
        self, channel_id: str, view: RequestView, context: str | None, thread_id: str | None = None
    ) -> MessageRef:
        """Post a new request card in a channel (``context`` is ``Origin.context``), or in a thread."""
        ...

    async def update_request(self, ref: MessageRef, view: RequestView) -> None:
        """Re-render the card in place (state, approvals, progress)."""
        ...

    async def post_in_thread(self, ref: MessageRef, text: str) -> None:
        """A progress line or failure in the thread of ``ref`` (``ref.thread_root``)."""
        ...

    async def post_notification(self, channel_id: str, view: IncidentView, context: str | None) -> MessageRef:
        """An incident notification: the root of the incident's war-room thread."""
        ...

    async def update_notification(self, ref: MessageRef, view: IncidentView) -> None:
        """Re-render the notification in place (status, severity, devices)."""
        ...

    async def post_summary(self, ref: MessageRef, view: RequestView, csv_text: str) -> None:
        """The final summary in the thread, with the per-device results as CSV."""
        ...
