"""Closing an incident proposes releasing exactly the devices the register still holds isolated for it."""

from __future__ import annotations

from approvals.incidents.payloads import parse_incident
from approvals.incidents.rules import RuleSet
from tests.support.containment import machine_id, plain_devices, run_request
from tests.support.incidents import sentinel_incident
from tests.support.stack import Stack

WAR_ROOM = RuleSet.model_validate(
    {"rules": [{"name": "war-room", "when": {}, "post": [{"surface": "console", "channel": "soc"}]}]}
)


async def test_closing_an_incident_proposes_releasing_only_the_devices_still_isolated(db_kind: str) -> None:
    async with Stack.start(db_kind=db_kind, devices=120, rules=WAR_ROOM) as stack:
        names = plain_devices(stack, 3)
        hosts = [(stack.sim.tenant.machines[machine_id(stack, n)]["computerDnsName"], None) for n in names]
        await stack.engine.incidents.receive(parse_incident(sentinel_incident(1042, hosts=hosts)), {})
        await run_request(stack, 'isolate incident:1042 --reason "INC-1042"')
        await run_request(stack, f'unisolate {names[0]} --reason "clean"')

        closed = await stack.engine.incidents.receive(
            parse_incident(sentinel_incident(1042, hosts=hosts, status="Closed")), {}
        )

        (release_id,) = closed.requests
        view = await stack.chatops.view(release_id)
        assert view.action == "unisolate"
        assert {d.machine_id for d in view.devices} == {machine_id(stack, n) for n in names[1:]}
