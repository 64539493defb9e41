"""Device lookups through the real client against the simulator over HTTP."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from approvals.messages import describe_mde_error
from mde.auth import StaticTokenProvider
from mde.client import MdeClient
from mde.errors import NotFound, UntrustedNextLink
from mde.simulator import Simulator, SimulatorConfig
from mde.simulator.tenant import make_machine
from tests.support.simulator import calls


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


async def test_a_tenant_that_fills_its_last_page_is_read_once(client: MdeClient, sim: Simulator) -> None:
    """Two full pages: the second carries no nextLink, which means the end (not "ask again with $skip")."""
    if len(sim.tenant.machines) % 2:
        sim.tenant.add(make_machine("f" * 40, "one-more.contoso.local"))
    total = len(sim.tenant.machines)
    machines = [m async for m in client.iter_machines(page_size=total // 2)]
    assert len(machines) == total
    assert len(calls(sim, "machines_read")) == 2


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


async def test_a_group_is_filtered_server_side_by_its_id_learnt_once(client: MdeClient, sim: Simulator) -> None:
    """rbacGroupId is filterable, rbacGroupName is not (get-machines.md): the tenant is not listed per lookup."""
    expected = {m["id"] for m in sim.tenant.machines.values() if m["rbacGroupName"] == "Tier0 Servers"}
    for _ in range(2):
        found = [m async for m in client.iter_machines_in_group("tier0 servers")]
        assert {m.id for m in found} == expected
    lookups = calls(sim, "machines_read")
    unfiltered = [c for c in lookups if "$filter" not in c.query]
    assert len(unfiltered) == 1  # the first device of the group named its id; the second lookup used the cache
    assert [c.query["$filter"] for c in lookups if "$filter" in c.query] == ["rbacGroupId eq 140"] * 2


async def test_an_unknown_group_matches_nothing(client: MdeClient) -> None:
    assert [m async for m in client.iter_machines_in_group("No Such Group")] == []


async def test_names_match_in_any_case_even_where_mde_compares_case_sensitively() -> None:
    config = SimulatorConfig(devices=50, case_sensitive_filters=True)
    async with Simulator(config) as sim, sim.connect() as client:
        sim.tenant.add(make_machine("f" * 40, "FILESRV01.CONTOSO.LOCAL"))
        assert [m.computer_dns_name for m in await client.find_machines_by_name("DC-01")] == ["dc-01.contoso.local"]
        assert [m.computer_dns_name for m in await client.find_machines_by_name("Dc-02.Contoso.Local")] == [
            "dc-02.contoso.local"
        ]
        assert [m.id for m in await client.find_machines_by_name("filesrv01")] == ["f" * 40]
        assert len(calls(sim, "machines_read")) == 3  # one call per name


async def test_the_tenant_is_empty_only_when_the_unfiltered_listing_is_404() -> None:
    async with Simulator(SimulatorConfig(devices=0)) as empty, empty.connect() as client:
        assert await client.has_any_machine() is False
    async with Simulator(SimulatorConfig(devices=5)) as sim, sim.connect() as client:
        assert await client.has_any_machine() is True
        assert calls(sim, "machines_read")[0].query == {"$top": "1"}


async def test_a_next_link_to_another_documented_host_is_followed() -> None:
    """MDE may answer a regional host with links to another of its hosts: followed when the cloud documents it."""
    async with Simulator(SimulatorConfig(devices=120)) as sim:
        other = sim.url.replace("127.0.0.1", "localhost")  # the same server under another host name
        sim.config.next_link_base = other
        async with MdeClient(sim.url, StaticTokenProvider("sim-token"), api_hosts={"localhost"}) as client:
            machines = [m async for m in client.iter_machines(page_size=50)]
        assert len({m.id for m in machines}) == len(sim.tenant.machines)
        assert len(calls(sim, "machines_read")) == 3


async def test_a_next_link_elsewhere_is_refused_and_never_gets_the_token() -> None:
    async with Simulator(SimulatorConfig(devices=120)) as sim, Simulator(SimulatorConfig(devices=1)) as elsewhere:
        sim.config.next_link_base = elsewhere.url.replace("127.0.0.1", "localhost")
        async with sim.connect() as client:  # localhost is not a documented MDE host
            with pytest.raises(UntrustedNextLink) as caught:
                [m async for m in client.iter_machines(page_size=50)]
        assert "not a documented MDE API host" in str(caught.value) and "localhost" in str(caught.value)
        assert "MDE is not answering properly" not in describe_mde_error(caught.value)
        assert len(calls(sim, "machines_read")) == 1 and elsewhere.request_log == []


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
