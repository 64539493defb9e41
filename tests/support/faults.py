"""Fault test helpers: a tagged fleet, a bulk run approved by two people, faults injected through the simulator's
HTTP API, and the one check every fault test ends with: nothing done twice, nothing lost, the summary went out."""

from __future__ import annotations

import asyncio
import io
from collections import Counter
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any

import httpx
from sqlalchemy import select

from approvals.outbox.models import Event, EventKind
from approvals.requests.models import FINAL_DEVICE_STATES, RequestDevice
from bot.console.surface import ConsoleSurface
from mde.simulator import Simulator
from tests.support.actors import ALICE, BOB, CAROL, HERE
from tests.support.stack import Stack

FLEET_TAG = "Reliability Fleet"
FINAL_REQUEST_STATES = {"succeeded", "partially_failed", "failed"}


def tag_fleet(sim: Simulator, n: int, tag: str = FLEET_TAG) -> list[str]:
    """Tag ``n`` active, onboarded Windows devices that carry no other tag (none protected or excluded)."""
    chosen = [
        m
        for m in sim.tenant.machines.values()
        if m["healthStatus"] == "Active"
        and m["onboardingStatus"] == "onboarded"
        and m["osPlatform"] in ("Windows10", "Windows11")
        and not m["machineTags"]
    ][:n]
    assert len(chosen) == n, f"the simulated tenant has only {len(chosen)} plain Windows devices"
    for machine in chosen:
        machine["machineTags"] = [tag]
    return sorted(m["id"] for m in chosen)


def console() -> ConsoleSurface:
    return ConsoleSurface(io.StringIO())


async def request_and_approve(stack: Stack, command: str) -> int:
    """Ask as alice, approve as bob (and carol when the policy wants two); returns the request id."""
    reply = await stack.chatops.handle(ALICE, HERE, command)
    assert not reply.error and reply.request is not None, reply.text
    request_id = reply.request.id
    for approver in (BOB, CAROL)[: reply.request.required_approvals]:
        decision = await stack.chatops.decide(approver, request_id, approve=True)
        assert not decision.error, decision.text
    return request_id


@dataclass
class Outcome:
    state: str
    devices: dict[str, str]  # machine id -> final state
    summary: str


async def finish(
    stack: Stack, request_id: int, machine_ids: Collection[str], *, action_type: str = "Isolate", timeout: float = 90
) -> Outcome:
    """Wait for the summary, then check nothing was done twice and nothing was lost."""
    state = await stack.wait_for_state(request_id, FINAL_REQUEST_STATES, timeout=timeout)
    assert stack.sim.stats()["duplicate_actions"] == 0
    mine = [a for a in stack.sim.tenant.actions.values() if f"[mde-chatops #{request_id}]" in a.comment]
    per_device = Counter(a.machine_id for a in mine)
    assert all(n == 1 for n in per_device.values()), [m for m, n in per_device.items() if n > 1]
    assert set(per_device) == set(machine_ids) and {a.type for a in mine} == {action_type}
    async with stack.db.sessions() as session:
        rows = dict(
            (
                await session.execute(
                    select(RequestDevice.machine_id, RequestDevice.state).where(RequestDevice.request_id == request_id)
                )
            ).all()
        )
        finished = list(
            await session.scalars(
                select(Event.id).where(Event.request_id == request_id, Event.kind == EventKind.FINISHED.value)
            )
        )
    assert set(rows) == set(machine_ids)
    assert set(rows.values()) <= FINAL_DEVICE_STATES, Counter(rows.values())
    assert len(finished) == 1  # exactly one summary was stored (chat delivery itself is at least once)
    consoles = [s for s in stack.engine.surfaces if isinstance(s, ConsoleSurface)]
    summaries = [line for s in consoles for line in s.transcript if f"Summary of #{request_id}:" in line]
    assert summaries or not consoles, "the summary never reached the chat"
    return Outcome(state=state, devices=rows, summary=summaries[-1] if summaries else "")


async def wait_until(predicate: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    """Poll ``predicate`` until true; fail with ``what`` at the deadline."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


async def summarized(stack: Stack, request_id: int, timeout: float = 30.0) -> str:
    """Wait until the request's summary is stored (not necessarily delivered); returns its state."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while (record := await stack.record(request_id)).summarized_at is None:
        assert loop.time() < deadline, f"request #{request_id} is still {record.state}"
        await asyncio.sleep(0.05)
    return record.state


async def inject(sim: Simulator, **faults: Any) -> dict[str, Any]:
    """Through the simulator's HTTP fault API, as an operator would."""
    async with httpx.AsyncClient(base_url=sim.url) as http:
        response = await http.post("/_sim/faults", json=faults)
    assert response.status_code == 200, response.text
    return dict(response.json())
