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

from approvals.views import RequestView


@dataclass(frozen=True, slots=True)
class MessageRef:
    """Where a posted card lives, enough to edit it and to reply in its thread."""

    surface: str
    channel_id: str
    message_id: str  # Slack ts, Teams activity id, console sequence number
    #: Teams: the serialized conversation reference; Slack: unused
    context: str | None = None


class ChatSurface(Protocol):
    name: str

    async def post_request(self, channel_id: str, view: RequestView, context: str | None) -> MessageRef:
        """Post a new request card in a channel (``context`` is ``Origin.context``)."""
        ...

    async def update_request(self, ref: MessageRef, view: RequestView) -> None:
        """Re-render the card in place (state, approvals, progress)."""
        ...

    async def post_in_thread(self, ref: MessageRef, text: str) -> None:
        """A progress line or failure in the card's thread."""
        ...

    async def post_summary(self, ref: MessageRef, view: RequestView, csv_text: str) -> None:
        """The final summary in the thread, with the per-device results as CSV."""
        ...
