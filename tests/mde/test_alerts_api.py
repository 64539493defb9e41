"""MDE alerts through the real client against the simulator over HTTP: one listing of the tenant's unresolved
alerts (get-alerts.md), a device's alerts (get-machine-related-alerts.md), the permission and the budget."""

from __future__ import annotations

import pytest

from mde.auth import StaticTokenProvider
from mde.client import MdeClient
from mde.errors import NotFound, PermissionDenied, RateLimited
from mde.ratelimit import RateLimiter
from mde.retry import RetryPolicy
from mde.simulator import Simulator, SimulatorConfig
from mde.simulator.alerts import make_alert


def _alert_calls(sim: Simulator) -> list[tuple[str, int, str]]:
    return [(e.path, e.status, e.query.get("$filter", "")) for e in sim.request_log if e.family == "alerts_read"]


async def test_one_listing_returns_every_unresolved_alert_with_its_device(client: MdeClient, sim: Simulator) -> None:
    expected = {a["id"]: a["machineId"] for a in sim.tenant.alerts if a["status"] != "Resolved"}
    assert expected and len(expected) < len(sim.tenant.alerts)  # the seed has resolved ones to leave out
    alerts = await client.list_alerts()
    assert {a.id: a.machine_id for a in alerts} == expected
    assert all(a.is_active and a.status in ("New", "InProgress") for a in alerts)
    assert _alert_calls(sim) == [("/api/alerts", 200, "status ne 'Resolved'")]


async def test_every_alert_when_resolved_ones_are_asked_for(client: MdeClient, sim: Simulator) -> None:
    alerts = await client.list_alerts(active_only=False)
    assert len(alerts) == len(sim.tenant.alerts)
    assert any(a.status == "Resolved" and not a.is_active for a in alerts)


async def test_the_listing_follows_next_links_and_stops_at_its_page_cap(client: MdeClient, sim: Simulator) -> None:
    machines = list(sim.tenant.machines.values())
    sim.tenant.alerts = [make_alert(machines[i], i) for i in range(25)]
    everything = await client.list_alerts(page_size=10)
    assert [a.id for a in everything] == [a["id"] for a in sim.tenant.alerts]
    capped = await client.list_alerts(page_size=10, max_pages=2)
    assert len(capped) == 20  # a ranking never waits on the tenant's whole alert history
    assert [e.query.get("$top") for e in sim.request_log if e.family == "alerts_read"][:2] == ["10", "10"]
    default = await client.list_alerts()
    assert len(default) == 25 and sim.request_log[-1].query["$top"] == "10000"  # get-alerts.md: at most 10,000


async def test_a_devices_alerts_and_an_unknown_device(client: MdeClient, sim: Simulator) -> None:
    alert = sim.tenant.alerts[0]
    mine = await client.list_machine_alerts(alert["machineId"])
    assert alert["id"] in {a.id for a in mine}
    assert all(a.machine_id == alert["machineId"] for a in mine)
    with pytest.raises(NotFound):
        await client.list_machine_alerts("0" * 40)


@pytest.mark.parametrize("sim_config", [SimulatorConfig(devices=50, roles=frozenset({"Machine.Read.All"}))])
async def test_a_token_without_alert_read_all_is_denied_and_the_role_named(client: MdeClient) -> None:
    with pytest.raises(PermissionDenied) as caught:
        await client.list_alerts()
    assert caught.value.missing_role == "Alert.Read.All"


async def test_a_429_on_the_listing_is_waited_out_by_retry_after(client: MdeClient, sim: Simulator) -> None:
    sim.config.burst_429, sim.config.burst_429_match = 1, "/alerts"
    assert await client.list_alerts()
    assert [status for _, status, _ in _alert_calls(sim)] == [429, 200]


async def test_a_429_that_outlasts_the_retries_is_rate_limited() -> None:
    config = SimulatorConfig(devices=50, time_scale=60, burst_429=5, burst_429_match="/alerts")
    async with Simulator(config) as sim:
        limiter = RateLimiter(time_scale=60)
        client = MdeClient(sim.url, StaticTokenProvider("sim-token"), limiter=limiter, retry=RetryPolicy(2))
        async with client:
            with pytest.raises(RateLimited):
                await client.list_alerts()
            assert [e.status for e in sim.request_log] == [429, 429]


async def test_alerts_have_their_own_budget_of_100_a_minute() -> None:
    """get-alerts.md: 100 calls per minute and 1,500 per hour; the client paces its own family, no 429."""
    async with Simulator(SimulatorConfig(devices=30, time_scale=600)) as sim:
        client = MdeClient(sim.url, StaticTokenProvider("sim-token"), limiter=RateLimiter(time_scale=600))
        async with client:
            for _ in range(130):
                await client.list_alerts()
        assert sim.stats()["per_family"]["alerts_read"] == 130
        assert sim.stats()["http_429"] == 0


async def test_no_alert_at_all_is_an_empty_listing(client: MdeClient, sim: Simulator) -> None:
    sim.tenant.alerts = []
    assert await client.list_alerts() == []
