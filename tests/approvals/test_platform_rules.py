"""Resolution reads the capability table before the card; inactive devices wait for isolation only."""

from __future__ import annotations

import asyncio

from approvals.policy import Policy
from mde.simulator.tenant import make_machine
from tests.support.actors import ALICE, BOB, HERE
from tests.support.stack import Stack

OLD_WIN10 = "e" * 40
OFFLINE = "d" * 40


def _add_old_win10(stack: Stack) -> None:
    stack.sim.tenant.add(
        make_machine(OLD_WIN10, "old-1607.contoso.local", os_platform="Windows10", version="1607", os_build=14393)
    )


async def test_an_old_windows_10_build_is_left_out_of_selective_isolation_before_the_card() -> None:
    async with Stack.start() as stack:
        _add_old_win10(stack)
        reply = await stack.chatops.handle(
            ALICE, HERE, 'isolate device:old-1607 device:ws-0005 --reason "INC-9" --type selective'
        )
        view = reply.request
        assert view is not None, reply.text
        assert [d.name for d in view.devices] == ["ws-0005.contoso.local"]
        (excluded,) = view.exclusions
        assert excluded.kind == "unsupported" and "1709" in excluded.reason
        assert not (await stack.chatops.decide(BOB, view.id, approve=True)).error
        assert await stack.wait_for_state(view.id, {"succeeded"}) == "succeeded"
        assert not [e for e in stack.sim.request_log if e.status == 400]


async def test_full_isolation_of_the_same_old_build_is_refused_too() -> None:
    """1607 is before 1703: no isolation type applies, and the reason says so."""
    async with Stack.start() as stack:
        _add_old_win10(stack)
        reply = await stack.chatops.handle(ALICE, HERE, 'isolate device:old-1607 --reason "INC-9"')
        assert reply.error and "before 1703" in reply.text


async def test_an_inactive_device_is_isolated_when_it_reconnects() -> None:
    async with Stack.start() as stack:
        stack.sim.tenant.add(make_machine(OFFLINE, "offline-01.contoso.local", health="Inactive"))
        reply = await stack.chatops.handle(ALICE, HERE, 'isolate device:offline-01 --reason "ransomware"')
        view = reply.request
        assert view is not None, reply.text
        assert [d.name for d in view.devices] == ["offline-01.contoso.local"]
        assert view.devices[0].note and "reconnects" in view.devices[0].note
        assert any("when each reconnects, or times it out after 3 days" in w for w in view.warnings)
        assert not (await stack.chatops.decide(BOB, view.id, approve=True)).error
        await stack.wait_for_state(view.id, {"executing"}, timeout=10)
        while not stack.sim.tenant.actions:
            await asyncio.sleep(0.05)
        (action,) = stack.sim.tenant.actions.values()
        assert action.status() == "Pending"
        stack.sim.reconnect(OFFLINE)
        assert await stack.wait_for_state(view.id, {"succeeded"}) == "succeeded"


async def test_active_only_leaves_inactive_devices_out() -> None:
    async with Stack.start() as stack:
        stack.sim.tenant.add(make_machine(OFFLINE, "offline-01.contoso.local", health="Inactive"))
        reply = await stack.chatops.handle(
            ALICE, HERE, 'isolate device:offline-01 device:ws-0005 --reason "r" --active-only'
        )
        assert reply.request is not None
        assert [(e.kind, "--active-only" in e.reason) for e in reply.request.exclusions] == [("inactive", True)]


async def test_a_scan_still_leaves_inactive_devices_out() -> None:
    async with Stack.start() as stack:
        stack.sim.tenant.add(make_machine(OFFLINE, "offline-01.contoso.local", health="Inactive"))
        reply = await stack.chatops.handle(ALICE, HERE, 'scan device:offline-01 device:ws-0005 --reason "r"')
        assert reply.request is not None
        assert [e.kind for e in reply.request.exclusions] == ["inactive"]


async def test_a_devices_preview_shows_every_match_and_marks_what_each_action_would_skip() -> None:
    async with Stack.start() as stack:
        mobile = next(m for m in stack.sim.tenant.machines.values() if m["osPlatform"] in ("iOS", "Android"))
        short = mobile["computerDnsName"].split(".")[0]
        reply = await stack.chatops.handle(ALICE, HERE, f"devices device:{short} device:ws-0005")
        assert not reply.error, reply.text
        assert "Matches: 2 device(s)" in reply.text and "Excluded" not in reply.text
        mobile_line = next(line for line in reply.text.splitlines() if short in line)
        assert "would skip isolate:" in mobile_line and "would skip tag" not in mobile_line


async def test_a_dry_run_over_the_cap_shows_the_preview_and_says_it_would_be_refused() -> None:
    policy = Policy.from_dict(
        {
            "defaults": {"requesters": ["console:alice"], "approvers": ["console:bob"]},
            "actions": {"isolate": {"requesters": ["console:alice"], "approvers": ["console:bob"], "max_devices": 1}},
        }
    )
    async with Stack.start(policy=policy) as stack:
        command = 'isolate device:ws-0005 device:ws-0007 --reason "r"'
        dry = await stack.chatops.handle(ALICE, HERE, command + " --dry-run")
        assert not dry.error and "Dry run" in dry.text and "ws-0005" in dry.text
        assert "It would be refused" in dry.text and "cap for isolate is 1" in dry.text
        real = await stack.chatops.handle(ALICE, HERE, command)
        assert real.error and real.request is None
