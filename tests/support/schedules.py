"""Schedule test helpers: create and approve a schedule, read its runs and the bulk tag calls MDE received."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, update

from approvals.db import utcnow
from approvals.schedules.models import Schedule, ScheduleRun
from mde.simulator import Simulator
from tests.support.actors import ALICE, BOB, HERE
from tests.support.stack import Stack

DC_QUERY = "DeviceNetworkEvents | where LocalPort == 88 | distinct DeviceId"


def dc_ids(sim: Simulator) -> set[str]:
    return {m["id"] for m in sim.tenant.machines.values() if m["computerDnsName"].startswith("dc-")}


def tagged(sim: Simulator, tag: str) -> set[str]:
    return {m["id"] for m in sim.tenant.machines.values() if tag in m["machineTags"]}


def bulk_calls(sim: Simulator) -> list[dict[str, Any]]:
    """Bodies of the successful AddOrRemoveTagForMultipleMachines calls, in order."""
    return [
        e.body for e in sim.request_log if e.path.endswith("/AddOrRemoveTagForMultipleMachines") and e.status == 200
    ]


async def create(stack: Stack, text: str) -> int:
    """Type a schedule command as alice; returns the request id."""
    reply = await stack.chatops.handle(ALICE, HERE, text)
    assert not reply.error and reply.request is not None, reply.text
    return reply.request.id


async def create_active(stack: Stack, tag: str = "Kerberos", extra: str = "", query: str = DC_QUERY) -> Schedule:
    request_id = await create(stack, f'schedule tag "{tag}" query:"{query}" every fri 06:00 {extra} --reason "DCs"')
    decision = await stack.chatops.decide(BOB, request_id, approve=True)
    assert not decision.error, decision.text
    return await schedule_of(stack, request_id)


async def schedule_of(stack: Stack, request_id: int) -> Schedule:
    async with stack.db.sessions() as session:
        schedule = await session.scalar(select(Schedule).where(Schedule.request_id == request_id))
    assert schedule is not None
    return schedule


async def reload(stack: Stack, schedule_id: int) -> Schedule:
    async with stack.db.sessions() as session:
        schedule = await session.get(Schedule, schedule_id)
    assert schedule is not None
    return schedule


async def runs(stack: Stack, schedule_id: int) -> list[ScheduleRun]:
    async with stack.db.sessions() as session:
        rows = await session.scalars(
            select(ScheduleRun).where(ScheduleRun.schedule_id == schedule_id).order_by(ScheduleRun.id)
        )
        return list(rows)


async def make_due(stack: Stack, schedule_id: int, **ago: float) -> None:
    """Pretend the next occurrence has passed (``weeks=3``: the bot was down for three occurrences)."""
    from datetime import timedelta

    async with stack.db.transaction() as session:
        await session.execute(
            update(Schedule).where(Schedule.id == schedule_id).values(next_run_at=utcnow() - timedelta(**ago))
        )
