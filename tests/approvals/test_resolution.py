"""Targets resolved through the real engine, client and simulator: hunting, empty tenants (issue 13)."""

from __future__ import annotations

from tests.support.actors import ALICE, HERE
from tests.support.simulator import calls
from tests.support.stack import Stack

DCS = 'query:"DeviceNetworkEvents | where LocalPort == 88 | distinct DeviceId"'


async def test_a_query_target_hunts_through_graph() -> None:
    async with Stack.start(devices=60, start_engine=False) as stack:
        # collect: no page lists Windows Server for the scan API (mde/capabilities.py), so the DCs take no scan
        reply = await stack.chatops.handle(ALICE, HERE, f"collect {DCS} --reason r")
        assert not reply.error and reply.request is not None, reply.text
        expected = {m["id"] for m in stack.sim.tenant.machines.values() if m["computerDnsName"].startswith("dc-")}
        assert {d.machine_id for d in reply.request.devices} == expected
        assert len(calls(stack.sim, "graph_hunting")) == 1 and not calls(stack.sim, "advanced_queries")


async def test_a_query_target_on_the_retired_mde_api_says_what_to_do() -> None:
    async with Stack.start(devices=60, start_engine=False) as stack:
        stack.client.graph = None  # HUNTING_API=mde
        reply = await stack.chatops.handle(ALICE, HERE, f"scan {DCS} --reason r")
        assert reply.error and reply.request is None
        assert "HUNTING_API=graph" in reply.text and "ThreatHunting.Read.All" in reply.text, reply.text


async def test_an_empty_tenant_says_so_instead_of_blaming_the_target() -> None:
    """404 on the unfiltered list (get-machines.md) is a set-up problem, not a typo in the tag or name."""
    async with Stack.start(devices=0, start_engine=False) as stack:
        for target in ('tag:"Finance Laptops"', 'group:"Tier0 Servers"', "device:ws-0001"):
            reply = await stack.chatops.handle(ALICE, HERE, f"scan {target} --reason r")
            assert reply.error and reply.request is None
            assert reply.text.startswith("MDE returned no devices at all"), reply.text
            assert "MDE_TENANT_ID" in reply.text and "MDE_CLOUD" in reply.text and "Machine.Read.All" in reply.text
