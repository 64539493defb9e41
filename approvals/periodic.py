"""One background loop, written once: run a step, wait, run it again, until stopped.

The scheduler (``approvals/schedules/scheduled.py``), the drift reconciler (``bot/containment_reconcile.py``),
delivery (``bot/delivery.py``, one loop per surface) and the worker's job creation and cancels
(``approvals/execution/flows.py``) each need the same thing, and each had its own copy:

* one asyncio task, started and stopped with the engine; ``stop`` cancels it and waits until it has ended;
* a step that can never kill the loop: a failure is logged and the step runs again later;
* between rounds, a wait of ``interval_s`` that ``wake()`` cuts short (new work was stored: do not wait for
  the timer). A wake that comes while a round runs is kept: the next round starts at once;
* a step may answer True ("there is more to do"): the next round then starts without waiting;
* with ``backoff``, a step that fails for outside reasons (a chat platform that is down) waits
  ``backoff(n)`` after its n-th failure in a row, and that wait is *not* cut short by ``wake()``: a busy
  engine wakes delivery on every change, and would otherwise hammer the platform that is down.

The wait is made of an injected ``sleep`` (``asyncio.sleep`` by default), so tests drive the loop with a
fake clock instead of real time (``tests/approvals/test_periodic.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)

#: one round of work; True when more is waiting and the next round should start at once
Step = Callable[[], Awaitable[bool]]
Sleep = Callable[[float], Awaitable[None]]


class Periodic:
    def __init__(
        self,
        step: Step,
        *,
        interval_s: float,
        name: str,
        backoff: Callable[[int], float] | None = None,
        wake: asyncio.Event | None = None,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        """``wake``: an event others set to cut the wait short (the same as calling ``wake()``), for a hook
        that is made before the loop's owner (``bot/engine.py``: ``ChatOps(on_schedule_queued=event.set)``)."""
        self.step = step
        self.interval_s = interval_s
        #: in log lines and as the task's name
        self.name = name
        self.backoff = backoff
        self._sleep = sleep
        self._wake = wake or asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @property
    def task(self) -> asyncio.Task[None] | None:
        """The loop's task while started: an owner that ends several loops at once (the worker, fenced off by
        a newer process under its identity) cancels them together instead of one ``stop`` after another."""
        return self._task

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def wake(self) -> None:
        """Run the next round now instead of at the end of the wait (a wake during a round is kept)."""
        self._wake.set()

    async def start(self) -> None:
        """Start the loop; a second start while it runs does nothing."""
        if self._task is None:
            self._task = asyncio.create_task(self._loop(), name=self.name)

    async def stop(self) -> None:
        """Cancel the loop (also mid-step) and wait until it has ended; it can be started again."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
            self._task = None

    async def _loop(self) -> None:
        failures = 0
        while True:
            self._wake.clear()
            try:
                more = await self.step()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                failures += 1
                if self.backoff is None:
                    log.exception("%s failed; retrying", self.name)
                else:
                    delay = self.backoff(failures)
                    # the type only: a platform's error text can quote what was sent
                    log.warning("%s failed (%s); retrying in %.0f s", self.name, type(exc).__name__, delay)
                    await self._sleep(delay)
                    continue
            else:
                failures = 0
                if more:
                    continue
            await self._pause(self.interval_s)

    async def _pause(self, seconds: float) -> None:
        """Sleep ``seconds``, or until ``wake()``, whichever comes first."""
        if self._wake.is_set():
            return
        waits = {asyncio.ensure_future(self._sleep(seconds)), asyncio.ensure_future(self._wake.wait())}
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for wait in waits:
                wait.cancel()
            await asyncio.wait(waits)
