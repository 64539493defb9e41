"""A 100,000-device request: one card within Slack's and Teams' limits, one job per device, riskiest first.

Not timed (the figures are in benchmarks/large_request.py): this proves the size works end to end, from the
simulator's paged listing over real HTTP to the stored jobs.
"""

from __future__ import annotations

from sqlalchemy import func, select, update

from approvals.execution.models import Job
from approvals.identity import Origin
from approvals.policy import Policy
from approvals.requests.models import DeviceState, RequestDevice
from approvals.requests.views import VIEW_ROWS
from bot.console.repl import console_actor
from bot.slack.blocks import request_blocks
from bot.teams.cards import ALL_DEVICES_ROWS, all_devices_card, request_card, summary_card
from tests.support.block_kit_checks import message_problems
from tests.support.card_checks import all_problems
from tests.support.stack import Stack

ALICE, BOB = console_actor("alice"), console_actor("bob")
HERE = Origin(surface="console", channel_id="console")
N = 100_000
POLICY = {"defaults": {"requesters": ["*"], "approvers": ["*"], "thresholds": [], "max_devices": N}}


async def test_a_100000_device_request_is_one_card_within_limits_and_one_job_per_device() -> None:
    async with Stack.start(devices=N, start_engine=False, policy=Policy.from_dict(POLICY)) as stack:
        for machine in stack.sim.tenant.machines.values():
            machine["machineTags"].append("Whole Fleet")
        reply = await stack.chatops.handle(ALICE, HERE, 'scan tag:"Whole Fleet" --reason "INC-100k sweep"')
        assert reply.request is not None, reply.text
        view = reply.request
        # the view is counts and the first rows, never every device (issue 18): bounded at any size
        assert len(view.devices) == VIEW_ROWS and len(view.exclusions) <= VIEW_ROWS
        assert [d.name for d in view.devices] == sorted(d.name for d in view.devices)
        assert view.device_count + view.exclusion_count == len(stack.sim.tenant.machines)
        assert view.counts.by_state == ((None, view.device_count),) and view.devices_label == str(view.device_count)
        assert view.order_note and view.order_note.startswith("Riskiest first")
        assert message_problems(request_blocks(view)) == []
        assert not any(all_problems(request_card(view)).values()), all_problems(request_card(view))

        approved = await stack.chatops.decide(BOB, view.id, approve=True)
        assert not approved.error, approved.text
        assert await stack.engine.worker.prepare_once() == [view.id]  # the jobs come after the click's answer
        async with stack.db.sessions() as session:
            jobs = list(await session.scalars(select(Job.machine_ids).where(Job.request_id == view.id)))
            first = await session.scalar(select(Job.machine_ids).order_by(Job.id).limit(1))
            riskiest = await session.scalar(select(func.min(RequestDevice.priority)))
            first_rank = await session.scalar(
                select(RequestDevice.priority).where(RequestDevice.machine_id == (first or [""])[0])
            )
            snapshot = list(
                await session.scalars(select(RequestDevice.machine_id).where(RequestDevice.request_id == view.id))
            )
        assert all(len(ids) == 1 for ids in jobs)
        assert len(snapshot) == view.device_count
        assert sorted(ids[0] for ids in jobs) == sorted(snapshot)
        assert first_rank == riskiest

        async with stack.db.transaction() as session:  # half of them fail: the summary counts, lists a few
            await session.execute(
                update(RequestDevice)
                .where(RequestDevice.request_id == view.id, RequestDevice.id % 2 == 0)
                .values(state=DeviceState.FAILED, error="MDE reported the action as Failed")
            )
        failed = await stack.chatops.view(view.id)
        assert failed.counts.not_succeeded_total == len(snapshot) // 2 and len(failed.counts.not_succeeded) == VIEW_ROWS
        assert dict(failed.counts.by_state)["Failed"] == len(snapshot) // 2
        assert not any(all_problems(summary_card(failed)).values())
        shown = await stack.chatops.device_rows(view.id, limit=ALL_DEVICES_ROWS)
        assert len(shown) == ALL_DEVICES_ROWS and not any(all_problems(all_devices_card(failed, shown)).values())
        csv_rows = (await stack.chatops.results_csv(view.id)).splitlines()
        assert len(csv_rows) == 1 + len(snapshot) and len({row.split(",")[0] for row in csv_rows[1:]}) == len(snapshot)
