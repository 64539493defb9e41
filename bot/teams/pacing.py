"""Stay within Teams' per-conversation limits for a bot: 7 sends per second, 60 per 30 s, 1,800 per hour.

Sends into one conversation wait for room in every window instead of collecting 429s; card edits are
coalesced upstream by ``bot.delivery`` and spaced by at least ``min_edit_interval_s`` here.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque

TEAMS_WINDOWS: tuple[tuple[int, float], ...] = ((7, 1.0), (60, 30.0), (1800, 3600.0))


class ConversationPacer:
    def __init__(self, windows: tuple[tuple[int, float], ...] = TEAMS_WINDOWS, min_edit_interval_s: float = 1.0):
        self._windows = windows
        self._longest = max(w for _, w in windows)
        self._sent: dict[str, deque[float]] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._last_edit: dict[str, float] = {}
        self._min_edit = min_edit_interval_s

    def _wait_for(self, sent: deque[float], now: float) -> float:
        while sent and sent[0] <= now - self._longest:
            sent.popleft()
        wait = 0.0
        for calls, window in self._windows:
            in_window = [t for t in sent if t > now - window]
            if len(in_window) >= calls:
                wait = max(wait, in_window[len(in_window) - calls] + window - now)
        return wait

    async def send(self, conversation_id: str) -> None:
        """Wait until one more operation in ``conversation_id`` stays within every window, and record it."""
        lock = self._locks.setdefault(conversation_id, asyncio.Lock())
        async with lock:
            sent = self._sent.setdefault(conversation_id, deque())
            wait = self._wait_for(sent, time.monotonic())
            if wait > 0:  # the waits are exact: after it, the oldest send has left its window
                await asyncio.sleep(wait)
            sent.append(time.monotonic())

    async def edit(self, conversation_id: str, message_id: str) -> None:
        """Like ``send``, and also keep edits of one message at least ``min_edit_interval_s`` apart."""
        wait = self._last_edit.get(message_id, 0.0) + self._min_edit - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)
        await self.send(conversation_id)
        self._last_edit[message_id] = now = time.monotonic()
        if len(self._last_edit) > 1000:  # only recent edits matter for spacing: forget the rest
            self._last_edit = {k: t for k, t in self._last_edit.items() if now - t < 10 * self._min_edit}
