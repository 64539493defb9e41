"""Reconciliation reads MDE's machine actions and finds what changed behind the register's back: a release
made in the portal, an isolation made outside the bot; once, whatever the number of replicas."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import select

from approvals.containment import service as store
from approvals.db import utcnow
from approvals.outbox.models import Event
from approvals.requests.models import RequestRecord
from bot.containment_reconcile import ReconcileConfig, Reconciler
from tests.support.actors import ALICE, HERE
from tests.support.containment import containments, machine_id, plain_devices, run_request, timeline
from tests.support.databases import database
from tests.support.stack import Stack

DUE_EVERY_TIME = ReconcileConfig(interval_s=0)


async def portal(stack: Stack, action: str, short_name: str, requestor: str = "analyst@contoso.com") -> dict[str, Any]:
    """Someone acts in the Defender portal (the simulator's admin endpoint), not through the bot."""
    async with httpx.AsyncClient() as http:
        answer = await http.post(
            f"{stack.sim.url}/_sim/portal",
            json={"action": action, "machineId": machine_id(stack, short_name), "requestor": requestor},
        )
    assert answer.status_code == 201, answer.text
    data: dict[str, Any] = answer.json()
    return data


def reconciler(stack: Stack, owner: str = "replica") -> Reconciler:
    return Reconciler(stack.db, stack.chatops, owner=owner, config=DUE_EVERY_TIME)


async def notes(stack: Stack, request_id: int) -> list[str]:
    async with stack.db.sessions() as session:
        rows = await session.scalars(select(Event).where(Event.request_id == request_id, Event.kind == "note"))
        return [str(e.payload.get("text")) for e in rows]


async def proposals(stack: Stack) -> list[RequestRecord]:
    async with stack.db.sessions() as session:
        rows = await session.scalars(
            select(RequestRecord).where(RequestRecord.requester_key == "system:reconciliation")
        )
        return list(rows)


async def test_a_portal_release_of_a_device_we_isolated_is_one_message_and_one_proposal(db_kind: str) -> None:
    async with Stack.start(db_kind=db_kind, devices=120) as stack:
        first, second = plain_devices(stack, 2)
        isolate = await run_request(stack, f'isolate {first} {second} --reason "INC-8" --type selective')
        quiet = await reconciler(stack).run_once()
        assert quiet is not None and quiet.actions == 2 and not quiet.released_outside, "our own actions are no drift"

        release = await portal(stack, "release", first, requestor="mallory@contoso.com")
        report = await reconciler(stack).run_once()

        assert report is not None and report.released_outside == [f"{first}.contoso.local"]
        rows = {r.machine_id: r for r in await containments(stack)}
        closed = rows[machine_id(stack, first)]
        assert closed.open_key is None and closed.released_by == "mallory@contoso.com"
        assert rows[machine_id(stack, second)].open_key is not None, "the other device stays isolated"
        (drift,) = [n for n in await notes(stack, isolate) if n.startswith("Drift:")]
        assert "released outside the bot by mallory@contoso.com" in drift and release["id"] in drift
        (proposal,) = await proposals(stack)
        assert proposal.id == report.proposals[0] and proposal.verb == "isolate" and proposal.state == "pending"
        assert proposal.params["isolation_type"] == "Selective"
        assert (proposal.origin_surface, proposal.origin_channel) == (HERE.surface, HERE.channel_id)
        kinds = [e.kind for e in await timeline(stack) if e.machine_id == machine_id(stack, first)]
        assert kinds == ["isolated", "released_outside"]

        again = await reconciler(stack).run_once()
        assert again is not None and not again.released_outside and not again.proposals
        assert len(await proposals(stack)) == 1


async def test_an_isolation_outside_the_bot_enters_the_register_with_who_and_when(db_kind: str) -> None:
    async with Stack.start(db_kind=db_kind, devices=120) as stack:
        touched, untouched = plain_devices(stack, 2)
        earlier = await run_request(stack, f'scan {touched} --reason "IOC sweep"')
        action = await portal(stack, "isolate", touched, requestor="soc-lead@contoso.com")
        await portal(stack, "isolate", untouched, requestor="attack-disruption")

        report = await reconciler(stack).run_once()

        assert report is not None and sorted(report.isolated_outside) == sorted(
            f"{n}.contoso.local" for n in (touched, untouched)
        )
        row = next(r for r in await containments(stack) if r.machine_id == machine_id(stack, touched))
        assert (row.source, row.requested_by, row.request_id) == ("outside", "soc-lead@contoso.com", None)
        assert abs((row.isolated_at - _parse(action["creationDateTimeUtc"])).total_seconds()) < 2
        (note,) = await notes(stack, earlier)
        assert "isolated outside the bot by soc-lead@contoso.com" in note and f"adopt device:{touched}" in note
        listed = (await stack.chatops.handle(ALICE, HERE, "isolated")).text
        assert "Isolated outside the bot" in listed and "isolated by attack-disruption" in listed
        assert (await reconciler(stack).run_once()) is not None
        assert len(await containments(stack)) == 2 and len(await notes(stack, earlier)) == 1


async def test_several_replicas_run_one_reconciliation_and_post_one_message(db_kind: str, tmp_path: Path) -> None:
    async with (
        database(db_kind, tmp_path) as db,
        Stack.start(db=db, devices=120, owner="replica-a") as a,
        Stack.start(db=db, owner="replica-b", start_engine=False, sim=a.sim) as b,
    ):
        (name,) = plain_devices(a, 1)
        isolate = await run_request(a, f'isolate {name} --reason "INC-9"')
        await portal(a, "release", name)
        replicas = [Reconciler(stack.db, stack.chatops, owner=f"r{i}") for i, stack in enumerate((a, b, a, b, a))]

        reports = await asyncio.gather(*(r.run_once() for r in replicas))

        assert sum(r is not None for r in reports) == 1
        assert [n for n in await notes(a, isolate) if n.startswith("Drift:")] and len(await proposals(a)) == 1
        assert all(r is None for r in await asyncio.gather(*(r.run_once() for r in replicas))), "not due again yet"


async def test_a_run_whose_holder_died_is_taken_over_after_its_lease() -> None:
    async with Stack.start(devices=50) as stack:
        now = utcnow()
        async with stack.db.transaction() as session:
            assert await store.lease_run(session, "dead-replica", now=now, lease=timedelta(minutes=10)) is not None
        survivor = reconciler(stack, "survivor")
        assert await survivor.run_once() is None, "a live lease is respected"
        survivor.clock = lambda: utcnow() + timedelta(minutes=11)
        assert await survivor.run_once() is not None


async def test_a_run_pages_through_every_action_with_one_call_per_page() -> None:
    async with Stack.start(devices=120) as stack:
        names = plain_devices(stack, 5)
        for name in names:
            await portal(stack, "isolate", name)
        before = len(stack.sim.request_log)

        report = await Reconciler(stack.db, stack.chatops, config=ReconcileConfig(interval_s=0, page_size=2)).run_once()

        calls = [e for e in stack.sim.request_log[before:] if e.path.endswith("/machineactions")]
        assert report is not None and len(report.isolated_outside) == 5 and len(calls) == report.calls == 3
        assert (
            "creationDateTimeUtc gt" in calls[0].query["$filter"] and "type eq 'Unisolate'" in calls[0].query["$filter"]
        )


def _parse(text: str) -> Any:
    from mde.models import parse_datetime

    return parse_datetime(text)
