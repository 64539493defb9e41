"""Advanced hunting through Microsoft Graph, and MDE's retired endpoint, against the simulator over HTTP."""

from __future__ import annotations

import asyncio

import pytest

from approvals.messages import describe_mde_error
from mde.auth import StaticTokenProvider
from mde.client import MdeClient
from mde.errors import AuthenticationFailed, BadRequest, HuntingApiRetired, MdeServerError, PermissionDenied
from mde.graph import GraphClient
from mde.ratelimit import RateLimiter
from mde.retry import RetryPolicy
from mde.simulator import Simulator, SimulatorConfig
from tests.support.simulator import calls

DCS = "DeviceNetworkEvents | where LocalPort == 88 | distinct DeviceId, DeviceName"
DC_NAMES = ["dc-01.contoso.local", "dc-02.contoso.local", "dc-03.contoso.local"]


async def test_hunting_goes_to_graph_with_the_graph_token_and_the_documented_body() -> None:
    config = SimulatorConfig(devices=100, token="mde-token", graph_token="graph-token")
    async with Simulator(config) as sim, sim.connect() as client:
        result = await client.hunt(DCS)
        assert sorted(r[result.column("devicename") or ""] for r in result.results) == DC_NAMES
        assert [(c.name, c.type) for c in result.schema] == [("DeviceId", "String"), ("DeviceName", "String")]
        (call,) = calls(sim, "graph_hunting")
        assert (call.method, call.path, call.status) == ("POST", "/v1.0/security/runHuntingQuery", 200)
        assert call.body == {"Query": DCS}
        assert not calls(sim, "advanced_queries")


async def test_graph_rejects_the_mde_token() -> None:
    """The MDE token is not a Graph token: hunting with it is refused, so the client must send Graph's own."""
    config = SimulatorConfig(devices=50, token="mde-token", graph_token="graph-token")
    async with Simulator(config) as sim, GraphClient(sim.url, StaticTokenProvider("mde-token")) as graph:
        with pytest.raises(AuthenticationFailed):
            await graph.run_hunting_query(DCS)
        assert [c.status for c in calls(sim, "graph_hunting")] == [401, 401]  # refreshed once, refused again


async def test_the_retired_mde_endpoint_says_what_to_do() -> None:
    async with Simulator(SimulatorConfig(devices=50)) as sim:
        async with MdeClient(sim.url, StaticTokenProvider("sim-token")) as legacy:
            with pytest.raises(HuntingApiRetired) as caught:
                await legacy.hunt(DCS)
        sentence = describe_mde_error(caught.value)
        assert "HUNTING_API=graph" in sentence and "ThreatHunting.Read.All" in sentence
        (call,) = calls(sim, "advanced_queries")
        assert call.status == 410 and call.response["error"]["code"] == "Gone"


async def test_hunting_api_mde_still_works_where_the_old_endpoint_answers() -> None:
    async with Simulator(SimulatorConfig(devices=100, legacy_hunting=True)) as sim:
        async with MdeClient(sim.url, StaticTokenProvider("sim-token")) as legacy:
            result = await legacy.hunt(DCS)
        assert sorted(r["DeviceName"] for r in result.results) == DC_NAMES
        assert [c.name for c in result.schema] == ["DeviceId", "DeviceName"]
        assert not calls(sim, "graph_hunting")


async def test_a_token_without_threat_hunting_read_all_is_named() -> None:
    async with Simulator(SimulatorConfig(devices=50, graph_roles=frozenset({"User.Read.All"}))) as sim:
        async with sim.connect() as client:
            with pytest.raises(PermissionDenied) as caught:
                await client.hunt(DCS)
        assert caught.value.missing_role == "ThreatHunting.Read.All"
        assert "ThreatHunting.Read.All" in describe_mde_error(caught.value)
        (call,) = calls(sim, "graph_hunting")
        assert "innerError" in call.response["error"]  # Graph's error shape, not MDE's


async def test_a_query_graph_cannot_run_is_a_bad_request() -> None:
    async with Simulator(SimulatorConfig(devices=50)) as sim, sim.connect() as client:
        with pytest.raises(BadRequest, match="could not be parsed"):
            await client.hunt("DeviceInfo | join kind=inner Foo on X")


async def test_graph_hunting_has_its_own_budget_and_sees_no_429() -> None:
    """60 queries against Graph's documented 45 per minute: the limiter paces them, MDE's families untouched."""
    config = SimulatorConfig(devices=50, time_scale=60)
    async with Simulator(config) as sim:
        limiter = RateLimiter(time_scale=config.time_scale)
        async with sim.connect(limiter=limiter) as client:
            await asyncio.gather(*(client.hunt("DeviceInfo | take 1 | project DeviceId") for _ in range(60)))
        assert sim.sent_429 == 0
        assert limiter.stats["graph_hunting"].granted == 60
        assert limiter.stats["graph_hunting"].waited_s > 0  # the 46th waited for the (scaled) minute window
        assert "advanced_queries" not in limiter.stats and "machines_read" not in limiter.stats


async def test_a_hunting_query_may_run_longer_than_other_calls() -> None:
    """Hunting queries run for minutes (Graph: up to 3, MDE: 200 s); other calls keep the client's short timeout."""
    config = SimulatorConfig(devices=50, latency_s=0.5, legacy_hunting=True)
    async with Simulator(config) as sim:
        short = {"timeout": 0.2, "retry": RetryPolicy(max_attempts=1)}
        async with sim.connect(**short) as client, MdeClient(sim.url, StaticTokenProvider("sim-token"), **short) as old:
            assert (await client.hunt(DCS)).results and (await old.hunt(DCS)).results
            with pytest.raises(MdeServerError, match="timeout"):
                await client.get_machine("dc-01.contoso.local")
