"""Containment test helpers: plain devices of the simulated tenant, a request run to success, the register."""

from __future__ import annotations

from sqlalchemy import select

from approvals.containment.models import Containment, TimelineEntry
from tests.support.actors import ALICE, BOB, HERE
from tests.support.stack import Stack


def plain_devices(stack: Stack, count: int, *, skip: int = 0) -> list[str]:
    """Short names of active, onboarded Windows workstations without tags (no exclusion, no warning)."""
    names = sorted(
        m["computerDnsName"].split(".")[0]
        for m in stack.sim.tenant.machines.values()
        if m["computerDnsName"].startswith("ws-0") and m["healthStatus"] == "Active" and not m["machineTags"]
    )
    return names[skip : skip + count]


def machine_id(stack: Stack, short_name: str) -> str:
    (machine,) = [m for m in stack.sim.tenant.machines.values() if m["computerDnsName"].split(".")[0] == short_name]
    return str(machine["id"])


async def run_request(stack: Stack, text: str) -> int:
    """Alice asks, Bob approves, and the request succeeds; returns its id."""
    reply = await stack.chatops.handle(ALICE, HERE, text)
    assert not reply.error and reply.request is not None, reply.text
    decision = await stack.chatops.decide(BOB, reply.request.id, approve=True)
    assert not decision.error, decision.text
    assert await stack.wait_for_state(reply.request.id, {"succeeded"}) == "succeeded"
    return reply.request.id


async def containments(stack: Stack) -> list[Containment]:
    async with stack.db.sessions() as session:
        return list(await session.scalars(select(Containment).order_by(Containment.id)))


async def timeline(stack: Stack) -> list[TimelineEntry]:
    async with stack.db.sessions() as session:
        return list(await session.scalars(select(TimelineEntry).order_by(TimelineEntry.id)))
