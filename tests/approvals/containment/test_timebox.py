"""Time-boxed isolation: the planned release on the card and in the register, a release proposed once at the
end (pre-approved when the policy says so), a restart in the middle, and reminders."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update

from approvals.audit.models import AuditEntry
from approvals.containment.models import Containment
from approvals.db import utcnow
from approvals.incidents.models import IncidentEvent
from approvals.incidents.payloads import parse_incident
from approvals.outbox.models import Event
from approvals.policy import Policy
from approvals.requests.models import RequestRecord
from bot.containment_timers import ContainmentTimers
from tests.support.actors import ALICE, HERE
from tests.support.containment import containments, machine_id, plain_devices, run_request
from tests.support.databases import database
from tests.support.incidents import sentinel_incident
from tests.support.stack import Stack

AUTO_AT_END: dict[str, Any] = {
    "defaults": {"requesters": ["*"], "approvers": ["*"], "thresholds": []},
    "containment": {"release": "auto_at_end"},
}


def timers_at(stack: Stack, later: timedelta) -> ContainmentTimers:
    """The timers of ``stack`` with their clock moved ``later`` (the planned end comes without waiting)."""
    return ContainmentTimers(stack.db, stack.chatops, lambda: utcnow() + later)


async def notes(stack: Stack, request_id: int) -> list[str]:
    async with stack.db.sessions() as session:
        rows = await session.scalars(select(Event).where(Event.request_id == request_id, Event.kind == "note"))
        return [str(e.payload.get("text")) for e in rows]


async def releases(stack: Stack) -> list[RequestRecord]:
    async with stack.db.sessions() as session:
        query = select(RequestRecord).where(RequestRecord.requester_key == "system:timed-release")
        return list(await session.scalars(query))


async def test_the_card_and_the_register_show_the_planned_release(db_kind: str) -> None:
    async with Stack.start(db_kind=db_kind, devices=120) as stack:
        first, second = plain_devices(stack, 2)
        boxed = await run_request(stack, f'isolate {first} --reason "IR-1" --for 8h')
        until = await run_request(stack, f'isolate {second} --reason "IR-2" --until 2099-12-03T18:00Z')

        assert (await stack.chatops.view(boxed)).action_label == "Isolate (Full) · release proposed 8h after isolation"
        assert (await stack.chatops.view(until)).action_label.endswith("release proposed at 2099-12-03 18:00 UTC")
        rows = {r.request_id: r for r in await containments(stack)}
        planned = rows[boxed].planned_end
        assert planned is not None and abs((planned - rows[boxed].isolated_at) - timedelta(hours=8)) < timedelta(
            seconds=1
        )
        assert rows[until].planned_end is not None and rows[until].planned_end.isoformat().startswith(
            "2099-12-03T18:00"
        )
        assert "planned end 2099-12-03 18:00 UTC" in (await stack.chatops.handle(ALICE, HERE, "isolated")).text
        past = await stack.chatops.handle(ALICE, HERE, 'isolate ws-0010 --reason "r" --until 2020-01-01T00:00Z')
        assert past.error and past.text.startswith("--until is in the past")


async def test_at_the_planned_end_one_release_is_proposed_in_the_requests_thread(db_kind: str, tmp_path: Path) -> None:
    async with (
        database(db_kind, tmp_path) as db,
        Stack.start(db=db, devices=120, owner="a") as a,
        Stack.start(db=db, owner="b", start_engine=False, sim=a.sim) as b,
    ):
        first, second = plain_devices(a, 2)
        isolate = await run_request(a, f'isolate {first} {second} --reason "IR-3" --for 8h')
        assert await timers_at(a, timedelta(hours=7)).propose_due_releases() == [], "not before the end"

        made = await asyncio.gather(*(timers_at(s, timedelta(hours=9)).propose_due_releases() for s in (a, b, a, b)))

        (proposal,) = await releases(a)
        assert [p for p in made if p] == [[proposal.id]]
        assert proposal.state == "pending" and proposal.verb == "unisolate"
        assert (proposal.params or {}).get("timed_release_of") == isolate
        assert f"Planned end reached: request #{proposal.id} releases" in "\n".join(await notes(a, isolate))
        # the original requester may approve the release of her own request: the bot is its requester
        decided = await a.chatops.decide(ALICE, proposal.id, approve=True)
        assert not decided.error, decided.text
        assert await a.wait_for_state(proposal.id, {"succeeded"}) == "succeeded"
        assert all(r.open_key is None and r.release_request_id == proposal.id for r in await containments(a))


async def test_auto_at_end_releases_without_a_person_and_is_audited_as_pre_approved() -> None:
    async with Stack.start(devices=120, policy=Policy.from_dict(AUTO_AT_END)) as stack:
        (name,) = plain_devices(stack, 1)
        isolate = await run_request(stack, f'isolate {name} --reason "IR-4" --for 2h')
        assert "pre-approved" in (await stack.chatops.view(isolate)).action_label

        await timers_at(stack, timedelta(hours=3)).tick()

        (proposal,) = await releases(stack)
        assert await stack.wait_for_state(proposal.id, {"succeeded"}) == "succeeded"
        async with stack.db.sessions() as session:
            entry = await session.scalar(
                select(AuditEntry).where(
                    AuditEntry.request_id == proposal.id, AuditEntry.event == "request.auto_approved"
                )
            )
        assert entry is not None and "auto_at_end" in (entry.text or "")
        assert [r.open_key for r in await containments(stack)] == [None]


async def test_a_restart_in_the_middle_of_a_timed_release_neither_loses_nor_repeats_it(
    db_kind: str, tmp_path: Path
) -> None:
    async with database(db_kind, tmp_path) as db:
        policy = Policy.from_dict(AUTO_AT_END)
        async with Stack.start(db=db, devices=120, policy=policy) as before:
            (name,) = plain_devices(before, 1)
            await run_request(before, f'isolate {name} --reason "IR-5" --for 1h')
            timers = timers_at(before, timedelta(hours=2))
            real = before.chatops.flows.create_in

            async def crash(*args: Any, **kwargs: Any) -> Any:
                await real(*args, **kwargs)
                raise ConnectionError("the process died before the proposal committed")

            before.chatops.flows.create_in = crash  # type: ignore[method-assign]
            with pytest.raises(ConnectionError):
                await timers.propose_due_releases()
            assert await releases(before) == [] and (await containments(before))[0].release_proposal_id is None
            before.chatops.flows.create_in = real  # type: ignore[method-assign]
            await timers.propose_due_releases()  # proposed; the process stops before approving it
            sim_state = before.sim.tenant
            (proposal,) = await releases(before)
            assert proposal.state == "pending"
        async with Stack.start(db=db, devices=120, policy=policy) as after:
            after.sim.tenant = sim_state
            await timers_at(after, timedelta(hours=2)).tick()
            assert [p.id for p in await releases(after)] == [proposal.id], "not proposed twice"
            assert await after.wait_for_state(proposal.id, {"succeeded"}) == "succeeded"
            assert machine_id(after, name) in {
                a.machine_id for a in after.sim.tenant.actions.values() if a.type == "Unisolate"
            }


async def test_a_long_containment_is_reminded_once_then_daily_until_acknowledged(db_kind: str) -> None:
    async with Stack.start(db_kind=db_kind, devices=120) as stack:
        (name,) = plain_devices(stack, 1)
        isolate = await run_request(stack, f'isolate {name} --reason "IR-6"')
        async with stack.db.transaction() as session:
            await session.execute(update(Containment).values(isolated_at=utcnow() - timedelta(hours=25)))

        assert await timers_at(stack, timedelta(0)).remind() == 1
        assert await timers_at(stack, timedelta(hours=2)).remind() == 0, "once, not every tick"
        assert await timers_at(stack, timedelta(hours=25)).remind() == 1, "then daily"
        reminders = [n for n in await notes(stack, isolate) if n.startswith("Reminder:")]
        assert len(reminders) == 2 and f"adopt device:{name}" in reminders[0]

        kept = await stack.chatops.handle(ALICE, HERE, f'adopt device:{name} --reason "kept for forensics, IR-6"')
        assert not kept.error and "no more reminders" in kept.text
        assert await timers_at(stack, timedelta(days=3)).remind() == 0


async def test_a_reminder_also_goes_to_the_incidents_war_room() -> None:
    async with Stack.start(devices=120) as stack:
        (name,) = plain_devices(stack, 1)
        host = stack.sim.tenant.machines[machine_id(stack, name)]
        received = await stack.engine.incidents.receive(
            parse_incident(sentinel_incident(77, hosts=[(host["computerDnsName"], host["id"])])), {}
        )
        await run_request(stack, 'isolate incident:77 --reason "INC-77"')
        async with stack.db.transaction() as session:
            await session.execute(update(Containment).values(isolated_at=utcnow() - timedelta(days=2)))
            opened = len(list(await session.scalars(select(IncidentEvent))))

        assert await timers_at(stack, timedelta(0)).remind() == 1

        async with stack.db.sessions() as session:
            events = list(await session.scalars(select(IncidentEvent).order_by(IncidentEvent.id)))
        assert len(events) == opened + 1
        assert events[-1].incident_id == received.incident_id and events[-1].kind == "note"
        assert str(events[-1].payload["text"]).startswith(f"Reminder: {name}.contoso.local has been isolated for 2d")


async def test_at_the_end_nothing_is_proposed_for_a_device_mde_already_released() -> None:
    async with Stack.start(devices=120) as stack:
        (name,) = plain_devices(stack, 1)
        isolate = await run_request(stack, f'isolate {name} --reason "IR-8" --for 1h')
        await run_request(stack, f'unisolate {name} --reason "done early"')
        async with stack.db.transaction() as session:  # the register missed the release (no reconciliation yet)
            await session.execute(update(Containment).values(open_key=Containment.machine_id, released_at=None))

        assert await timers_at(stack, timedelta(hours=2)).propose_due_releases() == []

        assert await releases(stack) == []
        (note,) = [n for n in await notes(stack, isolate) if n.startswith("Planned end reached")]
        assert "nothing to release" in note and name in note
        assert await timers_at(stack, timedelta(hours=3)).propose_due_releases() == [], "once"
