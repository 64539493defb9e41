"""From "someone asked" to "MDE did it", through the real engine, client and simulator, on both databases."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from sqlalchemy import func, select, update

from approvals.audit.models import AuditEntry
from approvals.db import utcnow
from approvals.execution.models import Job
from approvals.policy import Policy
from approvals.requests.models import RequestDevice, RequestRecord
from mde.simulator import SimulatorConfig
from tests.support.actors import ALICE, BOB, CAROL, DAVE, HERE
from tests.support.stack import Stack

FINANCE = 'tag:"Finance Laptops"'


def _request_id(text: str) -> int:
    assert text.startswith("Request #"), text
    return int(text.split("#", 1)[1].split(" ", 1)[0].rstrip(":"))


async def test_isolate_by_tag_runs_once_per_device_and_is_audited(db_kind: str) -> None:
    async with Stack.start(db_kind=db_kind, devices=300) as stack:
        reply = await stack.chatops.handle(
            ALICE, HERE, f'isolate {FINANCE} --reason "INC-1" --type selective --active-only'
        )
        assert not reply.error and reply.request is not None
        request_id = reply.request.id
        expected = {
            m["id"]
            for m in stack.sim.tenant.machines.values()
            if "Finance Laptops" in m["machineTags"]
            and m["healthStatus"] == "Active"
            and m["onboardingStatus"] == "onboarded"
            and m["osPlatform"] not in ("iOS", "Android")
        }
        assert {d.machine_id for d in reply.request.devices} == expected
        assert {e.kind for e in reply.request.exclusions} <= {"inactive", "unsupported"}
        decision = await stack.chatops.decide(BOB, request_id, approve=True)
        assert not decision.error, decision.text
        assert await stack.wait_for_state(request_id, {"succeeded"}) == "succeeded"
        stats = stack.sim.stats()
        assert stats["duplicate_actions"] == 0 and stats["http_429"] == 0
        isolates = [a for a in stack.sim.tenant.actions.values() if a.type == "Isolate"]
        assert sorted(a.machine_id for a in isolates) == sorted(expected)
        assert all(a.scope == "Selective" and f"[mde-chatops #{request_id}]" in a.comment for a in isolates)
        async with stack.db.sessions() as session:
            states = set(
                await session.scalars(select(RequestDevice.state).where(RequestDevice.request_id == request_id))
            )
            events = list(  # in the order written: without ORDER BY, PostgreSQL promises none
                await session.scalars(
                    select(AuditEntry.event).where(AuditEntry.request_id == request_id).order_by(AuditEntry.id)
                )
            )
        assert states == {"Succeeded"}
        assert events[0] == "request.created" and events[-1] == "request.finished"
        assert events.count("action.submitted") == len(expected)
        assert "request.approved" in events


async def test_the_requester_cannot_approve_and_nothing_runs() -> None:
    async with Stack.start() as stack:
        request_id = (await stack.chatops.handle(ALICE, HERE, f"scan {FINANCE} --reason r")).request.id  # type: ignore[union-attr]
        refused = await stack.chatops.decide(ALICE, request_id, approve=True)
        assert refused.error and "own request" in refused.text
        assert (await stack.record(request_id)).state == "pending"
        async with stack.db.sessions() as session:
            assert await session.scalar(select(func.count()).select_from(Job)) == 0


async def test_above_the_threshold_two_different_people_must_approve() -> None:
    policy = Policy.from_dict(
        {
            "defaults": {
                "requesters": ["console:alice"],
                "approvers": ["*"],
                "thresholds": [{"above": 5, "approvals": 2}],
            }
        }
    )
    async with Stack.start(policy=policy) as stack:
        reply = await stack.chatops.handle(ALICE, HERE, f"scan {FINANCE} --reason r")
        request_id = reply.request.id  # type: ignore[union-attr]
        assert reply.request.required_approvals == 2  # type: ignore[union-attr]
        first = await stack.chatops.decide(BOB, request_id, approve=True)
        assert "1 of 2" in first.text and (await stack.record(request_id)).state == "pending"
        again = await stack.chatops.decide(BOB, request_id, approve=True)
        assert again.error and "already" in again.text
        second = await stack.chatops.decide(CAROL, request_id, approve=True)
        assert not second.error
        assert await stack.wait_for_state(request_id, {"succeeded", "partially_failed"}) in {
            "succeeded",
            "partially_failed",
        }


async def _expire_now(stack: Stack, request_id: int) -> None:
    async with stack.db.transaction() as session:
        await session.execute(
            update(RequestRecord)
            .where(RequestRecord.id == request_id)
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )


async def test_an_expired_request_cannot_be_approved() -> None:
    async with Stack.start() as stack:
        request_id = (await stack.chatops.handle(ALICE, HERE, f"scan {FINANCE} --reason r")).request.id  # type: ignore[union-attr]
        await _expire_now(stack, request_id)
        late = await stack.chatops.decide(BOB, request_id, approve=True)
        assert late.error and "expired" in late.text
        assert (await stack.record(request_id)).state == "expired"


async def test_the_sweeper_expires_pending_requests() -> None:
    async with Stack.start() as stack:
        request_id = (await stack.chatops.handle(ALICE, HERE, f"scan {FINANCE} --reason r")).request.id  # type: ignore[union-attr]
        await _expire_now(stack, request_id)
        assert await stack.wait_for_state(request_id, {"expired"}, timeout=10) == "expired"


async def test_a_rejection_needs_a_reason_and_ends_the_request() -> None:
    async with Stack.start() as stack:
        request_id = (await stack.chatops.handle(ALICE, HERE, f"scan {FINANCE} --reason r")).request.id  # type: ignore[union-attr]
        assert (await stack.chatops.decide(BOB, request_id, approve=False)).error
        done = await stack.chatops.handle(BOB, HERE, f"reject {request_id} --reason 'wrong scope'")
        assert not done.error and (await stack.record(request_id)).state == "rejected"


async def test_targets_over_the_cap_are_refused_before_any_card() -> None:
    policy = Policy.from_dict({"defaults": {"requesters": ["*"], "approvers": ["*"], "max_devices": 10}})
    async with Stack.start(policy=policy) as stack:
        reply = await stack.chatops.handle(ALICE, HERE, f"scan {FINANCE} --reason r")
        assert reply.error and "the cap for scan is 10" in reply.text
        async with stack.db.sessions() as session:
            assert await session.scalar(select(func.count()).select_from(RequestRecord)) == 0


async def test_protected_devices_are_skipped_unless_break_glass() -> None:
    async with Stack.start() as stack:
        target = "device:soc-jump-01 device:ws-0005 --reason r"
        plain = await stack.chatops.handle(ALICE, HERE, f"restrict {target}")
        view = plain.request
        assert view is not None and [e.kind for e in view.exclusions] == ["protected"]
        await stack.chatops.decide(BOB, view.id, approve=True)
        await stack.wait_for_state(view.id, {"succeeded"})
        assert {a.computer_dns_name for a in stack.sim.tenant.actions.values()} == {"ws-0005.contoso.local"}
        assert {a.type for a in stack.sim.tenant.actions.values()} == {"RestrictCodeExecution"}
        second = (await stack.chatops.handle(ALICE, HERE, f"collect {target}")).request
        assert second is not None
        no_reason = await stack.chatops.decide(DAVE, second.id, approve=True, break_glass=True)
        assert no_reason.error and "reason" in no_reason.text
        not_allowed = await stack.chatops.decide(BOB, second.id, approve=True, break_glass=True, reason="x")
        assert not_allowed.error and "break-glass" in not_allowed.text
        ok = await stack.chatops.decide(DAVE, second.id, approve=True, break_glass=True, reason="IR lead call")
        assert not ok.error
        await stack.wait_for_state(second.id, {"succeeded"})
        collected = {
            a.computer_dns_name for a in stack.sim.tenant.actions.values() if a.type == "CollectInvestigationPackage"
        }
        assert collected == {"soc-jump-01.contoso.local", "ws-0005.contoso.local"}


async def test_progress_counts_only_the_devices_the_card_lists_and_break_glass_is_offered_while_pending() -> None:
    async with Stack.start() as stack:
        command = "restrict device:soc-jump-01 device:ws-0005 --reason r"
        pending = (await stack.chatops.handle(ALICE, HERE, command)).request
        assert pending is not None and "only a break-glass approval" in pending.exclusions[0].reason
        await stack.chatops.decide(BOB, pending.id, approve=True)
        await stack.wait_for_state(pending.id, {"succeeded"})
        view = await stack.chatops.view(pending.id)
        assert view.progress is not None
        assert (len(view.devices), view.progress.total, view.progress.skipped) == (1, 1, 0)
        assert [e.kind for e in view.exclusions] == ["protected"]
        assert "break-glass" not in view.exclusions[0].reason and "not included" in view.exclusions[0].reason


async def test_two_devices_with_one_name_are_shown_not_guessed() -> None:
    async with Stack.start() as stack:
        reply = await stack.chatops.handle(ALICE, HERE, "isolate device:ws-dup --reason r")
        assert reply.error and "ws-dup" in reply.text and "2 devices are named" in reply.text


async def test_already_isolated_devices_are_excluded() -> None:
    async with Stack.start() as stack:
        first = (await stack.chatops.handle(ALICE, HERE, "isolate device:ws-0005 device:ws-0006 --reason r")).request
        assert first is not None
        await stack.chatops.decide(BOB, first.id, approve=True)
        await stack.wait_for_state(first.id, {"succeeded"})
        again = await stack.chatops.handle(ALICE, HERE, f"isolate device:ws-0005 {FINANCE} --reason r")
        assert again.request is not None
        reasons = {e.name: e.reason for e in again.request.exclusions}
        assert reasons["ws-0005.contoso.local"].startswith("already isolated")
        release = await stack.chatops.handle(ALICE, HERE, "unisolate device:ws-0005 device:ws-0007 --reason r")
        assert release.request is not None
        assert [d.name for d in release.request.devices] == ["ws-0005.contoso.local"]
        assert {e.name: e.reason for e in release.request.exclusions}["ws-0007.contoso.local"] == "not isolated"


async def test_canary_failure_stops_the_rest() -> None:
    config = SimulatorConfig(devices=300, time_scale=60, fail_action_rate=1.0)
    async with Stack.start(sim_config=config) as stack:
        request_id = (await stack.chatops.handle(ALICE, HERE, f"scan {FINANCE} --reason r --canary 2")).request.id  # type: ignore[union-attr]
        await stack.chatops.decide(BOB, request_id, approve=True)
        assert await stack.wait_for_state(request_id, {"failed"}) == "failed"
        assert len(stack.sim.tenant.actions) == 2
        async with stack.db.sessions() as session:
            skipped = await session.scalar(
                select(func.count()).where(RequestDevice.request_id == request_id, RequestDevice.state == "skipped")
            )
        assert skipped and skipped > 20


async def test_cancel_mid_run_cancels_only_this_requests_actions() -> None:
    config = SimulatorConfig(devices=300, time_scale=60, action_pending_s=3600)
    async with Stack.start(sim_config=config) as stack:
        other = await stack.client.run_antivirus_scan(
            "f" * 0
            + next(m["id"] for m in stack.sim.tenant.machines.values() if m["computerDnsName"].startswith("srv-")),
            comment="someone else's scan",
        )
        request_id = (await stack.chatops.handle(ALICE, HERE, f"scan {FINANCE} --reason r")).request.id  # type: ignore[union-attr]
        await stack.chatops.decide(BOB, request_id, approve=True)
        for _ in range(200):
            if len(stack.sim.tenant.actions) > 5:
                break
            await asyncio.sleep(0.02)
        reply = await stack.chatops.handle(ALICE, HERE, f"cancel {request_id} --reason 'wrong scope'")
        assert not reply.error, reply.text
        assert await stack.wait_for_state(request_id, {"cancelled"}) == "cancelled"
        ours = [a for a in stack.sim.tenant.actions.values() if f"#{request_id}]" in a.comment]
        assert ours and all(a.status() == "Cancelled" for a in ours)
        assert stack.sim.tenant.actions[other.id].status() != "Cancelled"
