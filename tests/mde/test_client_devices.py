"""Device lookups through the real client against the simulator over HTTP."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from mde.client import MdeClient
from mde.errors import NotFound
from mde.simulator import Simulator
from tests.mde.conftest import calls


async def test_tag_filter_with_an_apostrophe_matches(client: MdeClient, sim: Simulator) -> None:
    expected = {m["id"] for m in sim.tenant.machines.values() if "O'Brien's laptops" in m["machineTags"]}
    found = {m.id async for m in client.iter_machines_by_tag("O'Brien's laptops")}
    assert expected and found == expected
    assert "machineTags/any(tag: tag eq 'O''Brien''s laptops')" in calls(sim, "machines_read")[-1].query["$filter"]


async def test_an_injected_filter_matches_nothing(client: MdeClient) -> None:
    assert [m async for m in client.iter_machines_by_tag("x' or 1 eq 1 or 'a' eq 'a")] == []
    assert [m async for m in client.iter_machines_by_tag("x') or (true")] == []


async def test_paging_follows_next_links_across_pages(client: MdeClient, sim: Simulator) -> None:
    machines = [m async for m in client.iter_machines(page_size=40)]
    assert len({m.id for m in machines}) == len(sim.tenant.machines)
    pages = calls(sim, "machines_read")
    assert len(pages) == -(-len(sim.tenant.machines) // 40)
    assert all(p.query.get("$top") == "40" for p in pages)


async def test_an_empty_listing_is_an_empty_result_not_an_error(client: MdeClient) -> None:
    assert await client.list_machines(filter="computerDnsName eq 'no-such-host'") == []


async def test_find_by_name_is_exact_and_accepts_the_short_name(client: MdeClient) -> None:
    assert [m.computer_dns_name for m in await client.find_machines_by_name("dc-01")] == ["dc-01.contoso.local"]
    assert [m.computer_dns_name for m in await client.find_machines_by_name("DC-01.CONTOSO.LOCAL")] == [
        "dc-01.contoso.local"
    ]
    assert await client.find_machines_by_name("dc-0") == []  # never "contains" / prefix guessing


async def test_two_devices_with_one_name_are_both_returned(client: MdeClient) -> None:
    assert len(await client.find_machines_by_name("ws-dup")) == 2


async def test_group_is_matched_client_side(client: MdeClient, sim: Simulator) -> None:
    found = [m async for m in client.iter_machines_in_group("tier0 servers")]
    assert {m.rbac_group_name for m in found} == {"Tier0 Servers"}
    assert all("rbacGroupName" not in (c.query.get("$filter") or "") for c in calls(sim))


async def test_get_machine_maps_documented_fields(client: MdeClient, sim: Simulator) -> None:
    raw = next(iter(sim.tenant.machines.values()))
    machine = await client.get_machine(raw["id"])
    assert machine.computer_dns_name == raw["computerDnsName"]
    assert machine.rbac_group_id == raw["rbacGroupId"]
    assert machine.machine_tags == tuple(raw["machineTags"])
    assert machine.last_seen is not None and machine.last_seen.tzinfo is not None


async def test_unknown_machine_is_not_found(client: MdeClient) -> None:
    with pytest.raises(NotFound):
        await client.get_machine("0" * 40)


async def test_find_by_tag_endpoint_and_by_ip(client: MdeClient, sim: Simulator) -> None:
    dcs = await client.find_machines_by_tag("Domain Controllers")
    assert len(dcs) == 3
    ip = dcs[0].last_ip_address
    assert ip
    by_ip = await client.find_machines_by_ip(ip, datetime.now(UTC))
    assert [m.id for m in by_ip] == [dcs[0].id]
    with pytest.raises(ValueError):
        await client.find_machines_by_ip("10.0.0.1',timestamp=x)", datetime.now(UTC))


async def test_advanced_query_returns_rows(client: MdeClient) -> None:
    result = await client.run_advanced_query(
        "DeviceNetworkEvents | where LocalPort == 88 | distinct DeviceId, DeviceName"
    )
    assert sorted(r["DeviceName"] for r in result.results) == [
        "dc-01.contoso.local",
        "dc-02.contoso.local",
        "dc-03.contoso.local",
    ]
    assert [c["Name"] for c in result.schema] == ["DeviceId", "DeviceName"]
