"""Tag schedules through the real engine, client and simulator: approval, runs, --sync, caps, protection."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from sqlalchemy import select

from approvals.audit.models import AuditEntry
from approvals.db import utcnow
from approvals.policy import Policy
from tests.support.actors import ALICE, BOB, DAVE, HERE
from tests.support.events import notes
from tests.support.schedules import (
    DC_QUERY,
    bulk_calls,
    create,
    create_active,
    dc_ids,
    reload,
    runs,
    schedule_of,
    tagged,
)
from tests.support.stack import Stack

SOC_AND_DCS = "DeviceInfo | where DeviceName startswith 'soc-' or DeviceName startswith 'dc-' | project DeviceId"


async def test_the_card_shows_tag_query_cadence_sync_and_a_preview_and_approval_only_activates(db_kind: str) -> None:
    async with Stack.start(db_kind=db_kind, devices=50, start_engine=False) as stack:
        request_id = await create(
            stack, f'schedule tag "Kerberos" query:"{DC_QUERY}" every fri 06:00 --sync --reason "replaces Logic App"'
        )
        view = await stack.chatops.view(request_id)
        assert view.action == "schedule" and view.state == "pending"
        assert "tag 'Kerberos'" in view.action_label and "every fri 06:00 UTC" in view.action_label
        assert "--sync" in view.action_label and DC_QUERY in view.target_text
        assert "finds 3 device(s)" in view.warnings[0] and "dc-01.contoso.local" in view.warnings[0]
        assert view.warnings[1].startswith("--sync")
        schedule = await schedule_of(stack, request_id)
        assert not schedule.active and schedule.next_run_at is None
        calls_before = len(stack.sim.request_log)

        await stack.chatops.decide(BOB, request_id, approve=True)

        assert (await stack.record(request_id)).state == "succeeded"
        schedule = await reload(stack, schedule.id)
        assert schedule.active and schedule.next_run_at is not None
        assert schedule.next_run_at > utcnow() and schedule.next_run_at - utcnow() <= timedelta(days=7)
        assert (schedule.next_run_at.weekday(), schedule.next_run_at.hour, schedule.next_run_at.minute) == (4, 6, 0)
        assert len(stack.sim.request_log) == calls_before, "approval must not call MDE"
        assert f"Schedule #{schedule.id} is active" in (await notes(stack, request_id))[-1]
        listing = (await stack.chatops.handle(ALICE, HERE, "schedule list")).text
        assert f"#{schedule.id} tag 'Kerberos' · every fri 06:00 UTC --sync" in listing


async def test_the_approvers_reply_says_the_schedule_change_is_applied_not_that_execution_starts() -> None:
    async with Stack.start(devices=50, start_engine=False) as stack:
        request_id = await create(stack, f'schedule tag "Kerberos" query:"{DC_QUERY}" every fri 06:00 --reason "DCs"')

        reply = await stack.chatops.decide(BOB, request_id, approve=True)

        assert not reply.error, reply.text
        assert reply.text == f"Request #{request_id} approved; the schedule change is applied."
        assert "execution" not in reply.text


async def test_a_run_tags_exactly_the_querys_devices_with_the_bulk_endpoint(db_kind: str) -> None:
    async with Stack.start(db_kind=db_kind, devices=50, start_engine=False) as stack:
        schedule = await create_active(stack)
        reply = await stack.chatops.handle(ALICE, HERE, f"schedule run {schedule.id}")
        assert not reply.error, reply.text
        assert await stack.engine.scheduler.tick() == 1  # type: ignore[union-attr]

        assert tagged(stack.sim, "Kerberos") == dc_ids(stack.sim)
        calls = bulk_calls(stack.sim)
        assert len(calls) == 1 and calls[0]["Action"] == "Add"
        assert set(calls[0]["MachineIds"]) == dc_ids(stack.sim)
        (run,) = await runs(stack, schedule.id)
        assert (run.state, run.kind, run.added, run.already_tagged, run.removed) == ("succeeded", "manual", 3, 0, 0)
        line = f"Schedule #{schedule.id} run (requested by alice): 3 added, 0 already tagged, 0 removed."
        assert (await notes(stack, schedule.request_id))[-1] == line
        async with stack.db.sessions() as session:
            entry = await session.scalar(select(AuditEntry).where(AuditEntry.event == "schedule.run"))
        assert entry is not None and entry.outcome == "succeeded" and set(entry.devices) == dc_ids(stack.sim)
        assert entry.details["counts"]["added"] == 3

        await stack.chatops.handle(ALICE, HERE, f"schedule run {schedule.id}")
        assert await stack.engine.scheduler.tick() == 1  # type: ignore[union-attr]
        assert len(bulk_calls(stack.sim)) == 1, "nothing to add the second time"
        assert (await notes(stack, schedule.request_id))[-1].endswith("0 added, 3 already tagged, 0 removed.")


async def test_sync_removes_the_tag_from_devices_the_query_no_longer_finds() -> None:
    async with Stack.start(devices=50, start_engine=False) as stack:
        stale = next(m["id"] for m in stack.sim.tenant.machines.values() if m["computerDnsName"].startswith("ws-"))
        await stack.client.add_machine_tag(stale, "Kerberos")
        schedule = await create_active(stack, extra="--sync")
        await stack.chatops.handle(ALICE, HERE, f"schedule run {schedule.id}")
        await stack.engine.scheduler.tick()  # type: ignore[union-attr]

        assert tagged(stack.sim, "Kerberos") == dc_ids(stack.sim)
        assert [(c["Action"], sorted(c["MachineIds"])) for c in bulk_calls(stack.sim)] == [
            ("Add", sorted(dc_ids(stack.sim))),
            ("Remove", [stale]),
        ]
        assert (await runs(stack, schedule.id))[0].removed == 1


async def test_without_sync_a_device_the_query_stops_finding_keeps_the_tag() -> None:
    async with Stack.start(devices=50, start_engine=False) as stack:
        stale = next(m["id"] for m in stack.sim.tenant.machines.values() if m["computerDnsName"].startswith("ws-"))
        await stack.client.add_machine_tag(stale, "Kerberos")
        schedule = await create_active(stack)
        await stack.chatops.handle(ALICE, HERE, f"schedule run {schedule.id}")
        await stack.engine.scheduler.tick()  # type: ignore[union-attr]
        assert tagged(stack.sim, "Kerberos") == dc_ids(stack.sim) | {stale}


async def test_a_run_over_the_cap_does_nothing_and_says_why() -> None:
    policy = Policy.from_dict(
        {
            "defaults": {"requesters": ["*"], "approvers": ["*"]},
            "actions": {"tag": {"requesters": ["*"], "approvers": ["*"], "max_devices": 3}},
        }
    )
    async with Stack.start(devices=50, start_engine=False, policy=policy) as stack:
        schedule = await create_active(stack)
        extra = [m for m in stack.sim.tenant.machines.values() if m["computerDnsName"].startswith("ws-")][:2]
        for machine in extra:  # two more devices start listening on 88 after the approval
            stack.sim.tenant.network_events.append(
                {
                    "DeviceId": machine["id"],
                    "DeviceName": machine["computerDnsName"],
                    "LocalPort": 88,
                    "RemotePort": 0,
                    "ActionType": "ListeningConnectionCreated",
                }
            )
        await stack.chatops.handle(ALICE, HERE, f"schedule run {schedule.id}")
        await stack.engine.scheduler.tick()  # type: ignore[union-attr]

        assert bulk_calls(stack.sim) == [] and tagged(stack.sim, "Kerberos") == set()
        (run,) = await runs(stack, schedule.id)
        assert run.state == "refused" and run.added == 0
        line = (await notes(stack, schedule.request_id))[-1]
        assert "did nothing" in line and "5 devices" in line and "cap for schedule is 3" in line


async def test_a_schedule_over_the_cap_is_refused_before_any_card() -> None:
    policy = Policy.from_dict({"defaults": {"requesters": ["*"], "approvers": ["*"], "max_devices": 2}})
    async with Stack.start(devices=50, start_engine=False, policy=policy) as stack:
        reply = await stack.chatops.handle(
            ALICE, HERE, f'schedule tag "Kerberos" query:"{DC_QUERY}" every fri 06:00 --reason r'
        )
        assert reply.error and "cap for schedule is 2" in reply.text and reply.request is None


async def test_protected_devices_are_left_alone_unless_approved_with_break_glass() -> None:
    async with Stack.start(devices=50, start_engine=False) as stack:
        plain = await create_active(stack, tag="Tier0", query=SOC_AND_DCS)
        view = await stack.chatops.view(plain.request_id)
        assert [(e.name, e.kind) for e in view.exclusions] == [("soc-jump-01.contoso.local", "protected")]
        request_id = await create(stack, f'schedule tag "Tier0 all" query:"{SOC_AND_DCS}" every day 06:00 --reason r')
        glass = await stack.chatops.decide(DAVE, request_id, approve=True, break_glass=True, reason="IR lead call")
        assert not glass.error, glass.text
        forced = await schedule_of(stack, request_id)
        for schedule in (plain, forced):
            await stack.chatops.handle(ALICE, HERE, f"schedule run {schedule.id}")
        await stack.engine.scheduler.tick()  # type: ignore[union-attr]

        soc = next(m["id"] for m in stack.sim.tenant.machines.values() if m["computerDnsName"].startswith("soc-"))
        assert tagged(stack.sim, "Tier0") == dc_ids(stack.sim)
        assert tagged(stack.sim, "Tier0 all") == dc_ids(stack.sim) | {soc}
        assert "1 protected skipped" in (await notes(stack, plain.request_id))[-1]


async def test_a_query_without_deviceid_is_refused_with_the_fix() -> None:
    async with Stack.start(devices=50, start_engine=False) as stack:
        reply = await stack.chatops.handle(
            ALICE, HERE, 'schedule tag "X" query:"DeviceInfo | project DeviceName" every fri 06:00 --reason r'
        )
        assert reply.error and "DeviceId" in reply.text and "distinct DeviceId" in reply.text


async def test_removing_a_schedule_needs_approval_and_stops_it() -> None:
    async with Stack.start(devices=50, start_engine=False) as stack:
        schedule = await create_active(stack)
        reply = await stack.chatops.handle(ALICE, HERE, f"schedule remove {schedule.id} --reason 'dynamic tag'")
        assert not reply.error and reply.request is not None
        assert reply.request.action_label.startswith(f"Remove schedule #{schedule.id}")
        assert (await reload(stack, schedule.id)).active, "not before approval"
        await stack.chatops.decide(BOB, reply.request.id, approve=True)

        assert not (await reload(stack, schedule.id)).active
        assert (await stack.record(reply.request.id)).state == "succeeded"
        assert "removed" in (await notes(stack, schedule.request_id))[-1]
        assert (await stack.chatops.handle(ALICE, HERE, "schedule list")).text.startswith("No schedules")
        again = await stack.chatops.handle(ALICE, HERE, f"schedule run {schedule.id}")
        assert again.error and "no active schedule" in again.text


async def test_the_policy_decides_who_may_schedule_and_the_requester_cannot_approve() -> None:
    policy = Policy.from_dict(
        {
            "defaults": {"requesters": ["console:nobody"], "approvers": ["*"]},
            "actions": {"tag": {"requesters": ["console:alice"], "approvers": ["*"]}},
        }
    )
    async with Stack.start(devices=50, start_engine=False, policy=policy) as stack:
        text = f'schedule tag "Kerberos" query:"{DC_QUERY}" every fri 06:00 --reason r'
        refused = await stack.chatops.handle(BOB, HERE, text)
        assert refused.error and "You may not request schedule" in refused.text
        request_id = await create(stack, text)
        own = await stack.chatops.decide(ALICE, request_id, approve=True)
        assert own.error and "own request" in own.text
        assert not (await schedule_of(stack, request_id)).active
        assert not (await stack.chatops.handle(BOB, HERE, "schedule list")).error


async def test_the_running_engine_runs_a_queued_run_without_a_manual_tick() -> None:
    async with Stack.start(devices=50) as stack:
        schedule = await create_active(stack)
        await stack.chatops.handle(ALICE, HERE, f"schedule run {schedule.id}")
        for _ in range(200):
            done = [r for r in await runs(stack, schedule.id) if r.finished_at is not None]
            if done:
                break
            await asyncio.sleep(0.05)
        assert [r.state for r in done] == ["succeeded"]
        assert tagged(stack.sim, "Kerberos") == dc_ids(stack.sim)


async def test_doctor_is_refused_for_non_admins_and_answered_for_admins() -> None:
    async with Stack.start(devices=20, start_engine=False) as stack:
        assert stack.chatops.doctor is not None, "the engine wires the doctor report"

        async def report() -> str:
            return "database: ok\nall 1 checks passed"

        stack.chatops.doctor = report
        refused = await stack.chatops.handle(ALICE, HERE, "doctor")
        assert refused.error and "admins" in refused.text and "console:alice" in refused.text
        answered = await stack.chatops.handle(DAVE, HERE, "doctor")
        assert not answered.error and answered.text.endswith("all 1 checks passed")


async def test_nobody_is_an_admin_unless_the_policy_says_so() -> None:
    policy = Policy.from_dict({"defaults": {"requesters": ["*"], "approvers": ["*"]}})
    async with Stack.start(devices=20, start_engine=False, policy=policy) as stack:
        reply = await stack.chatops.handle(DAVE, HERE, "doctor")
        assert reply.error and "admins" in reply.text
