"""The background loop under a fake clock: every wait is a sleep the test ends, no real time passes."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

from approvals.periodic import Periodic

INTERVAL = 30.0
#: long enough for a wrong loop to show itself, short enough to fail fast; never reached when the loop is right
PATIENCE_S = 5.0


class FakeSleep:
    """Each call is recorded and lasts until the test calls ``elapse``."""

    def __init__(self) -> None:
        self.asked: asyncio.Queue[float] = asyncio.Queue()
        self.pending: list[asyncio.Future[None]] = []

    async def __call__(self, seconds: float) -> None:
        done = asyncio.get_running_loop().create_future()
        self.pending.append(done)
        self.asked.put_nowait(seconds)
        await done

    def elapse(self) -> None:
        for done in self.pending:
            if not done.done():
                done.set_result(None)
        self.pending.clear()

    async def next_wait(self) -> float:
        return await asyncio.wait_for(self.asked.get(), PATIENCE_S)


class Steps:
    """A step that records each round and answers from a script (True: more to do; an exception: raise it)."""

    def __init__(self, *answers: bool | Exception) -> None:
        self.answers = list(answers)
        self.rounds: asyncio.Queue[int] = asyncio.Queue()
        self.count = 0

    async def __call__(self) -> bool:
        self.count += 1
        self.rounds.put_nowait(self.count)
        answer = self.answers.pop(0) if self.answers else False
        if isinstance(answer, Exception):
            raise answer
        return answer

    async def next_round(self) -> int:
        return await asyncio.wait_for(self.rounds.get(), PATIENCE_S)


def looping(*answers: bool | Exception, **options: Any) -> tuple[Periodic, FakeSleep, Steps]:
    """A loop over a scripted step, on a fake clock."""
    sleep, step = FakeSleep(), Steps(*answers)
    return Periodic(step, interval_s=INTERVAL, name="test loop", sleep=sleep, **options), sleep, step


async def idle() -> None:
    """Let every task that is ready run (no time passes: the loop's sleeps are fake)."""
    for _ in range(20):
        await asyncio.sleep(0)


async def test_it_runs_at_once_then_once_per_interval() -> None:
    loop, sleep, step = looping()
    await loop.start()
    assert await step.next_round() == 1
    assert await sleep.next_wait() == INTERVAL
    await idle()
    assert step.count == 1, "nothing runs before the interval has passed"
    sleep.elapse()
    assert await step.next_round() == 2
    await loop.stop()


@pytest.mark.parametrize("by_event", [False, True], ids=["wake()", "injected event"])
async def test_a_wake_cuts_the_wait_short(by_event: bool) -> None:
    queued = asyncio.Event()  # a hook made before the loop, e.g. ChatOps(on_schedule_queued=queued.set)
    loop, sleep, step = looping(wake=queued)
    await loop.start()
    await step.next_round()
    await sleep.next_wait()
    if by_event:
        queued.set()
    else:
        loop.wake()
    assert await step.next_round() == 2
    await loop.stop()


async def test_a_wake_during_a_round_is_kept() -> None:
    sleep, gate = FakeSleep(), asyncio.Event()
    rounds: list[int] = []

    async def slow_step() -> bool:
        rounds.append(len(rounds) + 1)
        if len(rounds) == 1:
            await gate.wait()
        return False

    loop = Periodic(slow_step, interval_s=INTERVAL, name="test loop", sleep=sleep)
    await loop.start()
    await idle()
    loop.wake()  # new work stored while the first round still reads
    gate.set()
    assert await sleep.next_wait() == INTERVAL
    assert rounds == [1, 2], "the second round ran without waiting for the interval"
    await loop.stop()


async def test_a_step_with_more_to_do_runs_again_without_waiting() -> None:
    loop, sleep, step = looping(True, True, False)
    await loop.start()
    assert await sleep.next_wait() == INTERVAL
    assert step.count == 3
    await loop.stop()


async def test_a_failing_step_is_logged_and_run_again_after_the_interval(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.ERROR, logger="approvals.periodic")
    loop, sleep, step = looping(RuntimeError("a bug"))
    await loop.start()
    assert await step.next_round() == 1
    assert await sleep.next_wait() == INTERVAL
    assert any(r.getMessage() == "test loop failed; retrying" and r.exc_info for r in caplog.records)
    sleep.elapse()
    assert await step.next_round() == 2
    assert loop.running
    await loop.stop()


async def test_backoff_grows_resets_on_success_and_no_wake_cuts_it_short(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="approvals.periodic")
    down = ConnectionError("https://hooks.example/T0/secret-path refused")
    sleep, step = FakeSleep(), Steps(down, down, False, down)
    loop = Periodic(step, interval_s=INTERVAL, name="delivery", backoff=lambda n: 2.0**n, sleep=sleep)
    await loop.start()
    assert await sleep.next_wait() == 2.0
    loop.wake()  # a busy engine wakes delivery on every change
    await idle()
    assert step.count == 1, "a wake does not end a backoff"
    sleep.elapse()
    assert await sleep.next_wait() == 4.0
    sleep.elapse()
    assert await sleep.next_wait() == INTERVAL  # the third round succeeded
    sleep.elapse()
    assert await sleep.next_wait() == 2.0, "the count starts again after a success"
    lines = [r.getMessage() for r in caplog.records]
    assert "delivery failed (ConnectionError); retrying in 2 s" in lines
    assert not any("secret-path" in line for line in lines)
    await loop.stop()


async def test_stop_cancels_a_round_in_progress_and_the_loop_can_start_again() -> None:
    sleep, cancelled, started = FakeSleep(), asyncio.Event(), asyncio.Queue[None]()

    async def stuck() -> bool:
        started.put_nowait(None)
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return False

    loop = Periodic(stuck, interval_s=INTERVAL, name="test loop", sleep=sleep)
    await loop.start()
    await asyncio.wait_for(started.get(), PATIENCE_S)
    await loop.stop()
    assert cancelled.is_set() and not loop.running
    await loop.start()
    await asyncio.wait_for(started.get(), PATIENCE_S)
    assert loop.running
    await loop.stop()


async def test_a_second_start_runs_no_second_loop() -> None:
    loop, sleep, step = looping()
    await loop.start()
    await loop.start()
    await sleep.next_wait()
    await idle()
    assert step.count == 1 and sleep.asked.empty()
    await loop.stop()
    await loop.stop()  # stopping a stopped loop is harmless


async def test_an_owner_may_cancel_the_task_itself_and_stop_then_forgets_it() -> None:
    """The worker, fenced off, cancels all its loops' tasks at once; its ``stop`` comes later."""
    loop, sleep, _step = looping()
    assert loop.task is None
    await loop.start()
    await sleep.next_wait()
    task = loop.task
    assert task is not None and not task.done()
    task.cancel()
    await asyncio.wait([task], timeout=PATIENCE_S)
    assert task.done() and not loop.running
    await loop.stop()
    assert loop.task is None
    await loop.start()
    await sleep.next_wait()
    assert loop.running
    await loop.stop()
