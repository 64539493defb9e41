"""When Defender XDR merges incidents (Graph status ``redirected``), closing the survivor proposes releasing
what was isolated under every incident merged into it, each device once, and never a device that another
open incident holds."""

from __future__ import annotations

from approvals.incidents.payloads import parse_incident
from approvals.incidents.rules import RuleSet
from tests.support.containment import machine_id, plain_devices, run_request
from tests.support.incidents import graph_incident
from tests.support.stack import Stack

WAR_ROOM = RuleSet.model_validate(
    {"rules": [{"name": "war-room", "when": {}, "post": [{"surface": "console", "channel": "soc"}]}]}
)


async def _open(stack: Stack, incident_id: str, hosts: list[str], **changes: str) -> None:
    await stack.engine.incidents.receive(parse_incident(graph_incident(incident_id, hosts=hosts, **changes)), {})


async def _release_of(stack: Stack, incident_id: str, hosts: list[str], *, merged: str = "") -> list[str]:
    """Close the incident; the machine ids of the release it proposes (one request), whose reason names the
    incidents merged into it (``merged``, as the reason lists them)."""
    closed = await stack.engine.incidents.receive(
        parse_incident(graph_incident(incident_id, hosts=hosts, status="resolved")), {}
    )
    (release_id,) = closed.requests
    view = await stack.chatops.view(release_id)
    assert view.action == "unisolate"
    assert view.reason.endswith(f"and for the incidents merged into it ({merged})" if merged else "isolated for it")
    return [d.machine_id for d in view.devices]


async def test_closing_the_survivor_releases_what_was_isolated_under_incidents_merged_into_it(
    db_kind: str,
) -> None:
    async with Stack.start(db_kind=db_kind, devices=120, rules=WAR_ROOM) as stack:
        names = plain_devices(stack, 6)
        dns = {n: stack.sim.tenant.machines[machine_id(stack, n)]["computerDnsName"] for n in names}
        a, b, c, other, cleaned = names[0], names[1], names[2], names[3], names[4]
        await _open(stack, "5001", [dns[a]])
        await run_request(stack, 'isolate incident:5001 --reason "A"')
        await _open(stack, "5003", [dns[other]])  # another incident, still open, holds `other`
        await run_request(stack, 'isolate incident:5003 --reason "C"')
        await _open(stack, "5002", [dns[b], dns[other], dns[cleaned]])
        await run_request(stack, 'isolate incident:5002 --reason "B"')  # `other` is left out: already isolated
        await _open(stack, "5004", [dns[c]])
        await run_request(stack, 'isolate incident:5004 --reason "D"')
        await run_request(stack, f'unisolate {cleaned} --reason "clean"')

        # D is merged into B, then B into A: A took over both, transitively
        await _open(stack, "5004", [dns[c]], status="redirected", redirectIncidentId="5002")
        await _open(stack, "5002", [dns[b], dns[other], dns[cleaned]], status="redirected", redirectIncidentId="5001")

        released = await _release_of(stack, "5001", [dns[a]], merged="5002, 5004")

        assert sorted(released) == sorted(machine_id(stack, n) for n in (a, b, c))
        assert len(released) == len(set(released))


async def test_an_incident_no_longer_redirected_keeps_its_own_containments(db_kind: str) -> None:
    async with Stack.start(db_kind=db_kind, devices=120, rules=WAR_ROOM) as stack:
        a, b = plain_devices(stack, 2)
        dns = {n: stack.sim.tenant.machines[machine_id(stack, n)]["computerDnsName"] for n in (a, b)}
        await _open(stack, "6001", [dns[a]])
        await run_request(stack, 'isolate incident:6001 --reason "A"')
        await _open(stack, "6002", [dns[b]])
        await run_request(stack, 'isolate incident:6002 --reason "B"')
        await _open(stack, "6002", [dns[b]], status="redirected", redirectIncidentId="6001")
        await _open(stack, "6002", [dns[b]], status="active")  # split out again: B is open and holds its device

        assert await _release_of(stack, "6001", [dns[a], dns[b]]) == [machine_id(stack, a)]
