"""Schedules hunt through Microsoft Graph; on MDE's retired hunting API a run fails and says what to do."""

from __future__ import annotations

from tests.support.actors import ALICE, HERE
from tests.support.events import notes
from tests.support.schedules import create_active, runs
from tests.support.simulator import calls
from tests.support.stack import Stack


async def test_a_schedule_run_hunts_through_graph() -> None:
    async with Stack.start(devices=50, start_engine=False) as stack:
        schedule = await create_active(stack)
        before = len(calls(stack.sim, "graph_hunting"))
        await stack.chatops.handle(ALICE, HERE, f"schedule run {schedule.id}")
        assert await stack.engine.scheduler.tick() == 1  # type: ignore[union-attr]
        assert len(calls(stack.sim, "graph_hunting")) == before + 1 and not calls(stack.sim, "advanced_queries")


async def test_a_run_on_the_retired_mde_hunting_api_fails_and_says_what_to_do() -> None:
    async with Stack.start(devices=50, start_engine=False) as stack:
        schedule = await create_active(stack)
        stack.client.graph = None  # HUNTING_API=mde, where MDE's endpoint is retired
        await stack.chatops.handle(ALICE, HERE, f"schedule run {schedule.id}")
        await stack.engine.scheduler.tick()  # type: ignore[union-attr]
        (run,) = await runs(stack, schedule.id)
        assert run.state == "failed" and run.added == 0
        line = (await notes(stack, schedule.request_id))[-1]
        assert "HUNTING_API=graph" in line and "ThreatHunting.Read.All" in line, line
