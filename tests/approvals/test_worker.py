"""The worker on its own: a database, the real MDE client and the simulator; no chat surface, no delivery."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import select, update

from approvals.commands.models import Target, TargetKind
from approvals.db import Database
from approvals.execution.actions import comment_for, marker
from approvals.execution.cancels import cancel_unsubmitted
from approvals.execution.flows import Worker, WorkerConfig
from approvals.execution.models import Job
from approvals.identity import Origin
from approvals.outbox.models import Event, EventKind
from approvals.policy import Policy
from approvals.requests.approval import ApprovalFlows
from approvals.requests.flows import RequestFlows
from approvals.requests.models import DeviceState, RequestDevice, RequestRecord
from approvals.resolution.flows import Resolver
from approvals.verbs import Verb
from bot.console.repl import console_actor
from mde.auth import StaticTokenProvider
from mde.client import MdeClient
from mde.simulator import Simulator, SimulatorConfig

REQUESTER, APPROVER = console_actor("alice"), console_actor("bob")
ORIGIN = Origin(surface="console", channel_id="console")
FAST = WorkerConfig(
    concurrency=4, batch_size=2, poll_interval_s=0.1, heartbeat_s=0.5, idle_wait_s=0.1, housekeeping_s=0.1
)


@pytest.fixture
async def mde() -> AsyncIterator[tuple[Simulator, MdeClient]]:
    async with (
        Simulator(SimulatorConfig(devices=60, time_scale=600)) as sim,
        MdeClient(sim.url, StaticTokenProvider("sim-token")) as client,
    ):
        yield sim, client


async def _approved(db: Database, client: MdeClient, sim: Simulator, *, devices: int, canary: int | None) -> int:
    names = [
        m["computerDnsName"]
        for m in sim.tenant.machines.values()
        if m["osPlatform"].startswith("Windows1") and m["healthStatus"] == "Active"
    ][:devices]
    policy = Policy.demo()
    resolution = await Resolver(client, policy).resolve(
        [Target(TargetKind.DEVICE, name) for name in names], verb=Verb.ISOLATE
    )
    assert len(resolution.devices) >= 2
    flows = RequestFlows(db, policy, stop_jobs=cancel_unsubmitted)
    record = await flows.create(
        actor=REQUESTER,
        origin=ORIGIN,
        verb=Verb.ISOLATE,
        params={"isolation_type": "Full"},
        reason="unit",
        target_text=" ".join(names),
        resolution=resolution,
        canary=canary,
    )
    verdict = await ApprovalFlows(db, policy).decide(APPROVER, record.id, approve=True, reason=None, break_glass=False)
    assert verdict.allowed, verdict.reason
    return record.id


async def _run_until_final(db: Database, worker: Worker, request_id: int) -> RequestRecord:
    await worker.start()
    try:
        async with asyncio.timeout(60):
            while True:
                async with db.sessions() as session:
                    record = await session.get(RequestRecord, request_id)
                    assert record is not None
                    if record.summarized_at is not None:
                        return record
                await asyncio.sleep(0.05)
    finally:
        await worker.stop()


async def test_an_approved_request_is_submitted_once_per_device_and_closes(
    db: Database, mde: tuple[Simulator, MdeClient]
) -> None:
    sim, client = mde
    request_id = await _approved(db, client, sim, devices=4, canary=None)
    record = await _run_until_final(db, Worker(db, client, config=FAST), request_id)
    assert record.state == "succeeded"
    async with db.sessions() as session:
        devices = list(await session.scalars(select(RequestDevice).where(RequestDevice.request_id == request_id)))
    assert {d.state for d in devices} == {DeviceState.SUCCEEDED}
    actions = await client.list_machine_actions(type="Isolate")
    mine = [a for a in actions if marker(request_id) in (a.requestor_comment or "")]
    assert sorted(a.machine_id for a in mine) == sorted(d.machine_id for d in devices)
    assert sorted(a.id for a in mine) == sorted(d.action_id for d in devices if d.action_id)


async def test_a_canary_batch_releases_the_rest_once_it_succeeded(
    db: Database, mde: tuple[Simulator, MdeClient]
) -> None:
    sim, client = mde
    request_id = await _approved(db, client, sim, devices=4, canary=1)
    record = await _run_until_final(db, Worker(db, client, config=FAST), request_id)
    assert record.state == "succeeded"
    async with db.sessions() as session:
        notes = [
            e.payload.get("text", "")
            for e in await session.scalars(
                select(Event).where(Event.request_id == request_id, Event.kind == EventKind.NOTE.value)
            )
        ]
    assert any(n.startswith("Canary batch of 1 succeeded") for n in notes), notes


async def _claimed_by_a_dead_worker(db: Database, client: MdeClient, sim: Simulator) -> tuple[int, dict[str, str]]:
    """Six devices' jobs claimed by a worker that died; its calls for the first three had reached MDE."""
    request_id = await _approved(db, client, sim, devices=6, canary=None)
    assert await Worker(db, client).prepare_once() == [request_id]  # the approved request's jobs
    async with db.transaction() as session:
        jobs = list(await session.scalars(select(Job).where(Job.request_id == request_id).order_by(Job.id)))
        record = await session.get(RequestRecord, request_id)
        assert record is not None
        comment = comment_for(request_id, record.reason, record.requester_label)
        await session.execute(
            update(Job).where(Job.request_id == request_id).values(state="submitting", owner="gone", attempts=1)
        )
    created = {j.machine_ids[0]: (await client.isolate(j.machine_ids[0], comment=comment)).id for j in jobs[:3]}
    return request_id, created


async def _resumed_once_each(db: Database, client: MdeClient, sim: Simulator, request_id: int) -> list[Any]:
    """Run a fresh worker to the end: every device actioned exactly once; the look-ups it made."""
    before = len(sim.request_log)
    worker = Worker(db, client, config=WorkerConfig(concurrency=8, batch_size=8, poll_interval_s=0.1))
    record = await _run_until_final(db, worker, request_id)
    assert record.state == "succeeded"
    async with db.sessions() as session:
        stored = dict(
            (
                await session.execute(
                    select(RequestDevice.machine_id, RequestDevice.action_id).where(
                        RequestDevice.request_id == request_id
                    )
                )
            ).all()
        )
    per_device = sorted(a.machine_id for a in sim.tenant.actions.values())
    assert per_device == sorted(stored)  # every device once, none twice
    assert sorted(a or "" for a in stored.values()) == sorted(sim.tenant.actions)  # MDE holds what was recorded
    return [e for e in sim.request_log[before:] if e.path.endswith("/machineactions") and e.method == "GET"]


def _per_device(lookups: list[Any]) -> int:
    return sum("machineId" in e.query.get("$filter", "") for e in lookups)


async def test_claims_taken_over_from_a_dead_worker_are_found_with_one_listing_not_one_look_up_each(
    db: Database, mde: tuple[Simulator, MdeClient]
) -> None:
    """A restarted replica adopts a whole batch at once: per-device look-ups would spend the 100-a-minute budget
    of ``GET /api/machineactions`` (a minute and more for a full batch) before anything is resumed."""
    sim, client = mde
    request_id, created = await _claimed_by_a_dead_worker(db, client, sim)
    lookups = await _resumed_once_each(db, client, sim, request_id)
    assert all(sim.tenant.actions[a].machine_id == m for m, a in created.items())  # adopted, not redone
    assert _per_device(lookups) == 0
    listings = [e for e in lookups if "creationDateTimeUtc" in e.query.get("$filter", "")]
    assert sum("Isolate" in e.query["$filter"] for e in listings) == 1


async def test_a_listing_that_fills_its_page_leaves_the_devices_it_does_not_show_to_per_device_look_ups(
    db: Database, mde: tuple[Simulator, MdeClient], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A full page may hide older actions: only what it shows is trusted, the rest is looked up as before."""
    sim, client = mde
    monkeypatch.setattr("approvals.execution.adoption.MAX_PAGE", 2)
    request_id, _created = await _claimed_by_a_dead_worker(db, client, sim)
    lookups = await _resumed_once_each(db, client, sim, request_id)
    assert _per_device(lookups) == 4  # six claims, two shown by the full page
