"""The simulator's HTTP behaviour, raw, as the documented API describes it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest

from mde.simulator import Simulator, SimulatorConfig
from mde.simulator.tenant import seed_tenant

AUTH = {"Authorization": "Bearer sim-token"}


@pytest.fixture
async def http(sim: Simulator) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=sim.url, headers=AUTH) as client:
        yield client


def test_the_same_seed_gives_the_same_tenant() -> None:
    a, b = seed_tenant(100, seed=7), seed_tenant(100, seed=7)
    assert [m["computerDnsName"] for m in a.machines.values()] == [m["computerDnsName"] for m in b.machines.values()]
    assert list(seed_tenant(100, seed=8).machines) != list(a.machines)


@pytest.mark.parametrize(
    "expr",
    [
        "computerDnsName eq 'unterminated",
        "healthStatus eq",
        "rbacGroupName eq 'Finance'",
        "foo(bar)",
        "machineTags/any(t: t eq 'x'",
    ],
)
async def test_invalid_filters_are_400_odata_error(http: httpx.AsyncClient, expr: str) -> None:
    response = await http.get("/api/machines", params={"$filter": expr})
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "ODataError" and error["message"] and error["target"]


async def test_filters_combine_with_and_or_and_parentheses(http: httpx.AsyncClient, sim: Simulator) -> None:
    expr = "(healthStatus eq 'Active' and rbacGroupId eq 140) or startswith(computerDnsName,'hv-')"
    names = {m["computerDnsName"] for m in (await http.get("/api/machines", params={"$filter": expr})).json()["value"]}
    expected = {
        m["computerDnsName"]
        for m in sim.tenant.machines.values()
        if (m["healthStatus"] == "Active" and m["rbacGroupId"] == 140) or m["computerDnsName"].startswith("hv-")
    }
    assert names == expected and "hv-host-01.contoso.local" in names


async def test_empty_result_is_404(http: httpx.AsyncClient) -> None:
    response = await http.get("/api/machines", params={"$filter": "computerDnsName eq 'nothing'"})
    assert response.status_code == 404


async def test_v1_prefix_is_served(http: httpx.AsyncClient) -> None:
    assert (await http.get("/api/v1.0/machines", params={"$top": 1})).status_code == 200


async def test_missing_comment_and_wrong_case_are_rejected(http: httpx.AsyncClient, sim: Simulator) -> None:
    machine_id = next(iter(sim.tenant.machines))
    missing = await http.post(f"/api/machines/{machine_id}/isolate", json={"comment": "lower-case name"})
    assert missing.status_code == 400 and missing.json()["error"]["code"] == "MissingRequiredParameter"
    bad = await http.post(f"/api/machines/{machine_id}/isolate", json={"Comment": "x", "IsolationType": "Partial"})
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "InvalidInput"


async def test_more_than_500_ids_is_maximum_batch_size_exceeded(http: httpx.AsyncClient) -> None:
    response = await http.post(
        "/api/machines/AddOrRemoveTagForMultipleMachines",
        json={"Value": "x", "Action": "Add", "MachineIds": ["a"] * 501},
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "MaximumBatchSizeExceeded"
    assert "Received: 501, allowed: 500" in response.json()["error"]["message"]


async def test_offline_device_action_times_out() -> None:
    config = SimulatorConfig(devices=60, time_scale=60, offline_timeout_s=6, inactive_rate=0.5)
    async with Simulator(config) as sim, httpx.AsyncClient(base_url=sim.url, headers=AUTH) as http:
        offline = next(
            m
            for m in sim.tenant.machines.values()
            if m["healthStatus"] == "Inactive" and m["osPlatform"].startswith("Windows1")
        )
        action = (await http.post(f"/api/machines/{offline['id']}/isolate", json={"Comment": "x"})).json()
        assert action["status"] == "Pending"
        for _ in range(100):
            status = (await http.get(f"/api/machineactions/{action['id']}")).json()["status"]
            if status != "Pending":
                break
            await asyncio.sleep(0.02)
        assert status == "TimeOut"


async def test_requests_over_the_minute_budget_get_429_with_retry_after() -> None:
    config = SimulatorConfig(devices=10, time_scale=60, minute_limit=5)
    async with Simulator(config) as sim, httpx.AsyncClient(base_url=sim.url, headers=AUTH) as http:
        statuses = [(await http.get("/api/machines", params={"$top": 1})).status_code for _ in range(6)]
        assert statuses == [200] * 5 + [429]
        response = await http.get("/api/machines", params={"$top": 1})
        wait = float(response.headers["Retry-After"])
        assert 0 < wait <= 1.0 + 0.01
        await asyncio.sleep(wait + 0.01)  # the window named by Retry-After, not an arbitrary nap
        assert (await http.get("/api/machines", params={"$top": 1})).status_code == 200
        assert sim.stats()["http_429"] == 2


async def test_no_token_is_401(sim: Simulator) -> None:
    async with httpx.AsyncClient(base_url=sim.url) as http:
        response = await http.get("/api/machines")
    assert response.status_code == 401 and response.json()["error"]["code"] == "Unauthorized"


async def test_unsupported_kql_is_a_clear_400(http: httpx.AsyncClient) -> None:
    response = await http.post(
        "/v1.0/security/runHuntingQuery", json={"Query": "DeviceInfo | join kind=inner Foo on X"}
    )
    assert response.status_code == 400 and "join" in response.json()["error"]["message"]


async def test_graph_hunting_takes_query_and_an_optional_timespan(http: httpx.AsyncClient) -> None:
    """runHuntingQuery: Query required, Timespan optional ISO 8601; Graph's SDKs send the names in lower case."""
    path = "/v1.0/security/runHuntingQuery"
    missing = await http.post(path, json={"Timespan": "P7D"})
    assert missing.status_code == 400 and missing.json()["error"]["code"] == "BadRequest"
    query = "DeviceInfo | take 2 | project DeviceId"
    for body in ({"Query": query, "Timespan": "P7D"}, {"query": query}):
        answer = await http.post(path, json=body)
        assert answer.status_code == 200, answer.text
        data = answer.json()
        assert data["@odata.context"].endswith("#microsoft.graph.security.huntingQueryResults")
        assert data["schema"] == [{"name": "DeviceId", "type": "String"}] and len(data["results"]) == 2


async def test_the_retired_hunting_endpoint_answers_410_gone(http: httpx.AsyncClient) -> None:
    response = await http.post("/api/advancedqueries/run", json={"Query": "DeviceInfo | take 1"})
    assert response.status_code == 410 and response.json()["error"]["code"] == "Gone"
    assert "runHuntingQuery" in response.json()["error"]["message"]
    assert (await http.post("/_sim/faults", json={"legacy_hunting": True})).status_code == 200  # not yet cut off
    served = await http.post("/api/advancedqueries/run", json={"Query": "DeviceInfo | take 1 | project DeviceId"})
    assert served.status_code == 200 and served.json()["Schema"] == [{"Name": "DeviceId", "Type": "String"}]


async def test_admin_endpoints_report_and_inject(http: httpx.AsyncClient, sim: Simulator) -> None:
    await http.get("/api/machines", params={"$top": 1})
    log = (await http.get("/_sim/requests")).json()
    assert log[-1]["path"] == "/api/machines" and log[-1]["family"] == "machines_read"
    assert (await http.post("/_sim/faults", json={"error_rate": 1.0})).status_code == 200
    assert (await http.get("/api/machines")).status_code == 500
    assert (await http.post("/_sim/faults", json={"nonsense": 1})).status_code == 400
    stats = (await http.get("/_sim/stats")).json()
    assert stats["per_family"]["machines_read"] == 2 and stats["duplicate_actions"] == 0
    tenant = (await http.get("/_sim/tenant")).json()
    assert tenant["tags"]["Domain Controllers"] == 3
