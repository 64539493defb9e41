"""The containment register is filled from our own isolate and unisolate actions, read with ``isolated``
and ``history device:``, exported and measured."""

from __future__ import annotations

import io
import json
from datetime import timedelta

from sqlalchemy import update

from approvals.containment import service as store
from approvals.containment.export import export_containments
from approvals.containment.models import Containment, Source
from approvals.db import utcnow
from approvals.incidents.payloads import parse_incident
from bot.metrics import Metrics
from tests.support.actors import ALICE, CAROL, HERE
from tests.support.containment import containments, machine_id, plain_devices, run_request, timeline
from tests.support.incidents import sentinel_incident
from tests.support.stack import Stack


async def test_an_isolation_opens_one_containment_per_device_and_a_release_closes_it(db_kind: str) -> None:
    async with Stack.start(db_kind=db_kind, devices=120) as stack:
        names = plain_devices(stack, 3)
        isolate = await run_request(stack, f'isolate {" ".join(names)} --reason "INC-7 beacon" --type selective')

        rows = await containments(stack)
        assert {r.machine_id for r in rows} == {machine_id(stack, n) for n in names}
        actions = {a.machine_id: a.id for a in stack.sim.tenant.actions.values() if a.type == "Isolate"}
        for row in rows:
            assert row.open_key == row.machine_id and row.source == Source.BOT.value
            assert (row.request_id, row.requested_by, row.approved_by) == (isolate, "alice", "bob")
            assert row.isolation_type == "Selective" and row.reason == "INC-7 beacon"
            assert row.mde_state == "isolated" and row.mde_action_id == actions[row.machine_id]

        release = await run_request(stack, f'unisolate {names[0]} --reason "clean"')

        rows = await containments(stack)
        released = [r for r in rows if r.open_key is None]
        assert [r.machine_id for r in released] == [machine_id(stack, names[0])]
        assert released[0].release_request_id == release and released[0].mde_state == "released"
        assert [(e.kind, e.request_id) for e in await timeline(stack) if e.machine_id == released[0].machine_id] == [
            ("isolated", isolate),
            ("released", release),
        ]


async def test_a_failed_isolation_opens_nothing() -> None:
    async with Stack.start(devices=120) as stack:
        stack.sim.config.fail_action_rate = 1.0
        reply = await stack.chatops.handle(ALICE, HERE, f'isolate {plain_devices(stack, 1)[0]} --reason "r"')
        assert reply.request is not None
        await stack.chatops.decide(CAROL, reply.request.id, approve=True)
        assert await stack.wait_for_state(reply.request.id, {"failed"}) == "failed"
        assert await containments(stack) == []


async def test_isolated_lists_devices_grouped_by_request_with_age_and_narrows(db_kind: str) -> None:
    async with Stack.start(db_kind=db_kind, devices=120) as stack:
        first, second, third = plain_devices(stack, 3)
        old = await run_request(stack, f'isolate {first} {second} --reason "INC-1"')
        new = await run_request(stack, f'isolate {third} --reason "INC-2"')
        async with stack.db.transaction() as session:
            await session.execute(
                update(Containment)
                .where(Containment.request_id == old)
                .values(isolated_at=utcnow() - timedelta(days=4, hours=2))
            )

        listed = (await stack.chatops.handle(ALICE, HERE, "isolated")).text
        assert listed.startswith("Isolated now: 3 device(s).")
        assert f"request #{old} by alice, approved by bob:" in listed
        assert f"request #{new} by alice, approved by bob:" in listed
        assert "4d 2h since" in listed and "no planned end" in listed

        older = (await stack.chatops.handle(ALICE, HERE, "isolated --older-than 3d")).text
        assert f"#{old}" in older and f"#{new}" not in older and "2 device(s)" in older
        one = (await stack.chatops.handle(ALICE, HERE, f"isolated device:{third}")).text
        assert "1 device(s)" in one and third in one and first not in one
        none = (await stack.chatops.handle(ALICE, HERE, 'isolated tag:"Finance Laptops"')).text
        assert none == "No device matching that is isolated now."


async def test_isolated_for_an_incident_lists_only_that_incidents_devices(db_kind: str) -> None:
    async with Stack.start(db_kind=db_kind, devices=120) as stack:
        first, second = plain_devices(stack, 2)
        host = stack.sim.tenant.machines[machine_id(stack, first)]
        received = await stack.engine.incidents.receive(
            parse_incident(sentinel_incident(1042, hosts=[(host["computerDnsName"], host["id"])])), {}
        )
        for_incident = await run_request(stack, 'isolate incident:1042 --reason "INC-1042"')
        await run_request(stack, f'isolate {second} --reason "INC-2"')

        text = (await stack.chatops.handle(ALICE, HERE, "isolated incident:1042")).text

        assert text.splitlines()[:2] == [
            "Isolated now: 1 device(s).",
            f"Incident 1042 (#{received.incident_id}) · request #{for_incident} by alice, approved by bob:",
        ]
        assert first in text and second not in text
        unknown = await stack.chatops.handle(ALICE, HERE, "isolated incident:4711")
        assert unknown.error and "No incident 4711" in unknown.text


async def test_history_of_a_device_shows_its_containment_timeline(db_kind: str) -> None:
    async with Stack.start(db_kind=db_kind, devices=120) as stack:
        (name,) = plain_devices(stack, 1)
        isolate = await run_request(stack, f'isolate {name} --reason "INC-3"')
        release = await run_request(stack, f'unisolate {name} --reason "clean"')

        text = (await stack.chatops.handle(ALICE, HERE, f"history device:{name}")).text

        assert f"Containment timeline of {name}." in text
        lines = text.splitlines()
        start = lines.index(next(line for line in lines if line.startswith("Containment timeline")))
        assert f"isolated by alice: isolated (Full) by request #{isolate}" in lines[start + 1]
        assert f"released by alice: released by request #{release}" in lines[start + 2]


async def test_adopting_an_outside_isolation_needs_a_requester_and_is_audited(db_kind: str) -> None:
    async with Stack.start(db_kind=db_kind, devices=120) as stack:
        (name,) = plain_devices(stack, 1)
        now = utcnow()
        async with stack.db.transaction() as session:
            item = store.Isolation(
                machine_id=machine_id(stack, name),
                device_name=f"{name}.contoso.local",
                isolation_type="Full",
                source=Source.OUTSIDE,
                requested_by="admin@contoso.com",
                at=now,
            )
            await store.open_isolation(session, item, now)

        listed = (await stack.chatops.handle(ALICE, HERE, "isolated")).text
        assert "Isolated outside the bot" in listed and "isolated by admin@contoso.com" in listed

        adopted = await stack.chatops.handle(ALICE, HERE, f'adopt device:{name} --reason "SOC lead keeps it for IR-9"')
        assert not adopted.error, adopted.text
        (row,) = await containments(stack)
        assert row.source == "adopted" and row.adopted_by == "alice" and row.reason == "SOC lead keeps it for IR-9"
        again = await stack.chatops.handle(ALICE, HERE, f'adopt device:{name} --reason "again"')
        assert again.error and "already kept isolated on purpose by alice: SOC lead keeps it for IR-9" in again.text
        missing = await stack.chatops.handle(ALICE, HERE, 'adopt device:nope --reason "x"')
        assert missing.error and "not in the register" in missing.text


async def test_metrics_count_devices_isolated_now_by_age() -> None:
    async with Stack.start(devices=120) as stack:
        first, second = plain_devices(stack, 2)
        await run_request(stack, f'isolate {first} {second} --reason "INC-1"')
        async with stack.db.transaction() as session:
            await session.execute(
                update(Containment)
                .where(Containment.machine_id == machine_id(stack, first))
                .values(isolated_at=utcnow() - timedelta(days=8))
            )

        text = (await Metrics(stack.db).render()).decode()

        assert 'mdechatops_isolated_devices{age="lt_1d"} 1.0' in text
        assert 'mdechatops_isolated_devices{age="ge_7d"} 1.0' in text
        assert 'mdechatops_isolated_devices{age="3d_7d"} 0.0' in text


async def test_the_register_exports_as_json_and_csv() -> None:
    async with Stack.start(devices=120) as stack:
        (name,) = plain_devices(stack, 1)
        request_id = await run_request(stack, f'isolate {name} --reason "INC-5"')
        out = io.StringIO()
        assert await export_containments(stack.db, out, fmt="json") == 1
        row = json.loads(out.getvalue())
        assert row["request_id"] == request_id and row["source"] == "bot" and row["approved_by"] == "bob"
        csv_out = io.StringIO()
        assert await export_containments(stack.db, csv_out, fmt="csv", since=utcnow() - timedelta(days=1)) == 1
        assert csv_out.getvalue().startswith("id,machine_id,device_name,isolation_type,source,request_id")
