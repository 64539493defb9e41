"""The console as a ChatSurface: cards, thread lines and summaries are printed to a stream."""

from __future__ import annotations

import itertools
from collections import deque
from typing import TextIO

from approvals.views import IncidentView, RequestView
from bot.console.render import render_card, render_incident, render_summary
from bot.surfaces.base import MessageRef

#: what the console keeps of its own output (for the scripted demo's checks and tests); older output is dropped
TRANSCRIPT_LINES = 5000


class ConsoleSurface:
    name = "console"

    def __init__(self, out: TextIO, *, csv_dir: str | None = None) -> None:
        self.out = out
        self.csv_dir = csv_dir
        self._ids = itertools.count(1)
        #: what was shown, for the scripted demo's checks and for tests
        self.transcript: deque[str] = deque(maxlen=TRANSCRIPT_LINES)

    async def start(self) -> None:
        """Nothing to open: the stream belongs to the caller."""

    async def stop(self) -> None:
        """Nothing to close: the stream belongs to the caller."""

    def _print(self, text: str) -> None:
        self.transcript.append(text)
        self.out.write(text + "\n")
        self.out.flush()

    async def post_request(
        self, channel_id: str, view: RequestView, context: str | None, thread_id: str | None = None
    ) -> MessageRef:
        card = render_card(view)
        self._print(card if thread_id is None else "\n".join(f"  ↳ {line}" for line in card.splitlines()))
        return MessageRef(
            surface=self.name, channel_id=channel_id, message_id=str(next(self._ids)), thread_id=thread_id
        )

    async def post_notification(self, channel_id: str, view: IncidentView, context: str | None) -> MessageRef:
        self._print(render_incident(view))
        return MessageRef(surface=self.name, channel_id=channel_id, message_id=str(next(self._ids)))

    async def update_notification(self, ref: MessageRef, view: IncidentView) -> None:
        self._print(f"[incident {view.external_id} updated] {view.headline()}")

    async def update_request(self, ref: MessageRef, view: RequestView) -> None:
        self._print(f"[card #{view.id} updated]\n{render_card(view)}")

    async def post_in_thread(self, ref: MessageRef, text: str) -> None:
        self._print(f"  ↳ {text}")

    async def post_summary(self, ref: MessageRef, view: RequestView, csv_text: str) -> None:
        self._print(f"  ↳ {render_summary(view)}")
        if self.csv_dir:
            from pathlib import Path

            path = Path(self.csv_dir) / f"request-{view.id}.csv"
            path.write_text(csv_text, encoding="utf-8")
            self._print(f"  ↳ results: {path}")
