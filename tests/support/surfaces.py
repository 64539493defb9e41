"""A chat surface that records what delivery asks of it, in order, so delivery can be tested without a platform.

It implements ``bot.surfaces.base.ChatSurface`` and nothing more: every call is kept as a ``Call``; a method
named in ``failing`` raises, as Slack or Teams does when it is down, so at-least-once delivery can be seen.
``arrived`` is set on every call, for tests that wait for a background delivery loop without sleeping.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from approvals.views import IncidentView, RequestView
from bot.surfaces.base import MessageRef


@dataclass(frozen=True, slots=True)
class Call:
    """One call: ``method`` as on ``ChatSurface``; ``text`` a thread line, or the view's state for a card."""

    method: str
    request_id: int | None
    text: str = ""
    ref: MessageRef | None = None
    csv: str | None = None


@dataclass
class RecordingSurface:
    name: str = "console"
    calls: list[Call] = field(default_factory=list)
    #: methods that raise ConnectionError (the platform is down for them)
    failing: set[str] = field(default_factory=set)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)
    started: bool = False
    _posted: int = 0

    def _record(self, call: Call) -> None:
        if call.method in self.failing:
            raise ConnectionError(f"{self.name} is down ({call.method})")
        self.calls.append(call)
        self.arrived.set()

    def _ref(self, channel_id: str, context: str | None, thread_id: str | None) -> MessageRef:
        self._posted += 1
        return MessageRef(self.name, channel_id, f"m{self._posted}", context, thread_id)

    async def start(self) -> None:
        self.started = True

    async def stop(self) -> None:
        self.started = False

    async def post_request(
        self, channel_id: str, view: RequestView, context: str | None, thread_id: str | None = None
    ) -> MessageRef:
        self._record(Call("post_request", view.id, view.state))
        return self._ref(channel_id, context, thread_id)

    async def update_request(self, ref: MessageRef, view: RequestView) -> None:
        self._record(Call("update_request", view.id, view.state, ref))

    async def post_in_thread(self, ref: MessageRef, text: str) -> None:
        self._record(Call("post_in_thread", None, text, ref))

    async def post_notification(self, channel_id: str, view: IncidentView, context: str | None) -> MessageRef:
        self._record(Call("post_notification", None, view.title))
        return self._ref(channel_id, context, None)

    async def update_notification(self, ref: MessageRef, view: IncidentView) -> None:
        self._record(Call("update_notification", None, view.title, ref))

    async def post_summary(self, ref: MessageRef, view: RequestView, csv_text: str) -> None:
        self._record(Call("post_summary", view.id, view.state, ref, csv_text))

    def named(self, method: str) -> list[Call]:
        return [c for c in self.calls if c.method == method]

    def thread(self) -> list[str]:
        """The thread lines, in the order they were posted."""
        return [c.text for c in self.calls if c.method == "post_in_thread"]

    def forget(self) -> None:
        """Start recording afresh (what came before is not what the test is about)."""
        self.calls.clear()
        self.arrived.clear()
