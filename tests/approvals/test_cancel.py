"""A cancel that cancels: nothing submitted after the command, newest first, and the truth reported."""

from __future__ import annotations

import asyncio
import re

from approvals.text import cancel_report
from mde.simulator import SimulatorConfig
from mde.simulator.tenant import make_machine
from tests.support.actors import ALICE, BOB, CAROL, HERE
from tests.support.stack import Stack


def _add_fleet(stack: Stack, n: int, tag: str) -> None:
    for i in range(n):
        stack.sim.tenant.add(make_machine(f"{i:040x}", f"fleet-{i:04d}.contoso.local", tags=[tag]))


async def _start(stack: Stack, command: str) -> int:
    reply = await stack.chatops.handle(ALICE, HERE, command)
    assert reply.request is not None, reply.text
    for approver in (BOB, CAROL)[: reply.request.required_approvals]:
        assert not (await stack.chatops.decide(approver, reply.request.id, approve=True)).error
    return reply.request.id


async def _until(predicate: object, timeout: float = 30.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():  # type: ignore[operator]
        assert loop.time() < deadline, "timed out"
        await asyncio.sleep(0.02)


def _counts(report: str) -> dict[str, int]:
    found = {k: int(n) for n, k in re.findall(r"(\d+) (cancelled in MDE|stopped before submission)", report)}
    finished = re.search(r"(\d+) had already finished \(([^)]*)\)", report)
    found["finished"] = int(finished.group(1)) if finished else 0
    for n, state in re.findall(r"(\d+) (Succeeded|Failed|TimeOut)", finished.group(2) if finished else ""):
        found[state] = int(n)
    return found


async def test_cancelling_300_devices_reports_what_mde_really_did() -> None:
    config = SimulatorConfig(
        devices=20, time_scale=60, action_pending_s=120, action_in_progress_s=60, fail_action_rate=0.1
    )
    async with Stack.start(sim_config=config) as stack:
        _add_fleet(stack, 300, "Fleet")
        request_id = await _start(stack, 'isolate tag:Fleet --reason "INC-300"')
        actions = stack.sim.tenant.actions
        # cancel once half is submitted and the first actions finished (3 s each): the rest is still pending
        await _until(lambda: len(actions) >= 150 and any(a.status() != "Pending" for a in actions.values()))
        reply = await stack.chatops.handle(ALICE, HERE, f"cancel {request_id} --reason 'wrong scope'")
        assert not reply.error and "No more submissions" in reply.text, reply.text
        assert await stack.wait_for_state(request_id, {"cancelled"}) == "cancelled"

        ours = [a for a in stack.sim.tenant.actions.values() if f"[mde-chatops #{request_id}]" in a.comment]
        truth = {s: sum(1 for a in ours if a.status() == s) for s in ("Cancelled", "Succeeded", "Failed")}
        report = cancel_report((await stack.chatops.view(request_id)).counts.outcomes)
        assert truth["Cancelled"] > 0 and truth["Succeeded"] > 0, (truth, report, len(ours))
        counts = _counts(report)
        assert counts["cancelled in MDE"] == truth["Cancelled"], report
        assert counts.get("Succeeded", 0) == truth["Succeeded"], report
        assert counts.get("Failed", 0) == truth["Failed"], report
        assert counts["stopped before submission"] == 300 - len(ours), report
        assert counts["cancelled in MDE"] + counts["finished"] + counts["stopped before submission"] == 300
        assert "could not be cancelled" not in report and "still being cancelled" not in report

        log = stack.sim.request_log
        posts = [e for e in log if e.method == "POST" and e.path.endswith("/isolate") and e.status == 201]
        cancels = [e for e in log if e.method == "POST" and e.path.endswith("/cancel")]
        assert len(posts) == len(ours) and max(p.received for p in posts) < min(c.received for c in cancels)
        stats = stack.sim.stats()
        assert stats["http_429"] == 0 and stats["duplicate_actions"] == 0


async def test_cancels_go_out_newest_first() -> None:
    """A canary batch of 150 is submitted and the rest held, so no submission is in flight at the cancel."""
    config = SimulatorConfig(devices=20, time_scale=60, action_pending_s=120, action_in_progress_s=60)
    async with Stack.start(sim_config=config) as stack:
        _add_fleet(stack, 300, "Fleet")
        request_id = await _start(stack, 'isolate tag:Fleet --reason "INC-301" --canary 150')
        actions = stack.sim.tenant.actions
        await _until(lambda: len(actions) == 150 and any(a.status() != "Pending" for a in actions.values()))
        assert not (await stack.chatops.handle(ALICE, HERE, f"cancel {request_id}")).error
        assert await stack.wait_for_state(request_id, {"cancelled"}) == "cancelled"
        newest_first = sorted(actions.values(), key=lambda a: a.created_mono, reverse=True)
        rank = {a.id: i for i, a in enumerate(newest_first)}  # 0 = the newest
        cancels = sorted((e for e in stack.sim.request_log if e.path.endswith("/cancel")), key=lambda e: e.received)
        sent = [rank[e.path.split("/")[-2]] for e in cancels]
        quarter = max(1, len(sent) // 4)
        assert len(sent) >= 8 and sum(sent[:quarter]) < sum(sent[-quarter:]), sent
        report = cancel_report((await stack.chatops.view(request_id)).counts.outcomes)
        assert "150 stopped before submission" in report, report


async def test_a_throttled_cancel_waits_for_retry_after_and_the_card_says_so() -> None:
    config = SimulatorConfig(devices=20, time_scale=60, action_pending_s=3600, burst_429_retry_after_s=60)
    async with Stack.start(sim_config=config) as stack:
        _add_fleet(stack, 20, "Few")
        request_id = await _start(stack, 'isolate tag:Few --reason "INC-429"')
        await _until(lambda: len(stack.sim.tenant.actions) == 20)
        await stack.wait_for_state(request_id, {"executing"})
        stack.sim.config.burst_429, stack.sim.config.burst_429_match = 3, "/cancel"  # three cancels throttled
        reply = await stack.chatops.handle(ALICE, HERE, f"cancel {request_id}")
        assert not reply.error, reply.text
        waiting: list[str] = []

        async def card_says_waiting() -> None:
            while True:
                progress = (await stack.chatops.view(request_id)).progress
                if progress is not None and progress.cancel_waiting:
                    waiting.append(progress.sentence())
                    return
                await asyncio.sleep(0.02)

        await asyncio.wait_for(card_says_waiting(), 20)
        assert "throttled by MDE: waiting for its Retry-After" in waiting[0]
        assert await stack.wait_for_state(request_id, {"cancelled"}) == "cancelled"
        assert all(a.status() == "Cancelled" for a in stack.sim.tenant.actions.values())
        report = cancel_report((await stack.chatops.view(request_id)).counts.outcomes)
        assert report.startswith("Cancel: 20 cancelled in MDE, 0 stopped before submission"), report
        assert stack.sim.stats()["http_429"] == 3


async def test_a_request_that_lost_the_race_reports_who_isolated_the_device() -> None:
    config = SimulatorConfig(devices=20, time_scale=60, action_pending_s=3600)
    async with Stack.start(sim_config=config) as stack:
        first = (await stack.chatops.handle(ALICE, HERE, 'isolate device:ws-0005 --reason "a"')).request
        second = (await stack.chatops.handle(ALICE, HERE, 'isolate device:ws-0005 --reason "b"')).request
        assert first is not None and second is not None
        assert not (await stack.chatops.decide(BOB, first.id, approve=True)).error
        await _until(lambda: len(stack.sim.tenant.actions) == 1)
        assert not (await stack.chatops.decide(BOB, second.id, approve=True)).error
        assert await stack.wait_for_state(second.id, {"succeeded", "failed"}) == "succeeded"
        (row,) = (await stack.chatops.view(second.id)).devices
        assert row.state == "skipped" and row.error == f"already being isolated by #{first.id} (MDE action pending)"
