"""A 100,000-device request: one card within Slack's and Teams' limits, one job per device, riskiest first.

Not timed (the figures are in benchmarks/large_request.py): this proves the size works end to end, from the
simulator's paged listing over real HTTP to the stored jobs.
"""

from __future__ import annotations

from sqlalchemy import func, select

from approvals.execution.models import Job
from approvals.identity import Origin
from approvals.policy import Policy
from approvals.requests.models import RequestDevice
from bot.console.repl import console_actor
from bot.slack.blocks import request_blocks
from bot.teams.cards import request_card
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
        assert len(view.devices) + len(view.exclusions) == len(stack.sim.tenant.machines)
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
        assert all(len(ids) == 1 for ids in jobs)
        assert sorted(ids[0] for ids in jobs) == sorted(d.machine_id for d in view.devices)
        assert first_rank == riskiest
