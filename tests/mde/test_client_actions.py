"""Machine actions, tags and errors through the real client; bodies checked in the simulator's log."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from mde.auth import StaticTokenProvider
from mde.client import MdeClient
from mde.errors import (
    ActionAlreadyPending,
    AuthenticationFailed,
    BadRequest,
    MdeServerError,
    NotFound,
    PermissionDenied,
    UnsupportedDevice,
)
from mde.models import ActionStatus, IsolationType, ScanType, TagAction
from mde.retry import RetryPolicy
from mde.simulator import Simulator, SimulatorConfig
from tests.support.simulator import calls


def _windows_ids(sim: Simulator, n: int) -> list[str]:
    return [
        m["id"]
        for m in sim.tenant.machines.values()
        if m["osPlatform"].startswith("Windows1") and m["healthStatus"] == "Active"
    ][:n]


async def test_each_action_posts_the_documented_body(client: MdeClient, sim: Simulator) -> None:
    a, b, c, d, e, f = _windows_ids(sim, 6)
    await client.isolate(a, comment="why", isolation_type=IsolationType.SELECTIVE)
    await client.unisolate(b, comment="why")
    await client.run_antivirus_scan(c, comment="why", scan_type=ScanType.FULL)
    await client.restrict_code_execution(d, comment="why")
    await client.unrestrict_code_execution(e, comment="why")
    await client.collect_investigation_package(f, comment="why")
    posted = {entry.path.rsplit("/", 1)[-1]: entry.body for entry in calls(sim, "machine_actions")}
    assert posted == {
        "isolate": {"Comment": "why", "IsolationType": "Selective"},
        "unisolate": {"Comment": "why"},
        "runAntiVirusScan": {"Comment": "why", "ScanType": "Full"},
        "restrictCodeExecution": {"Comment": "why"},
        "unrestrictCodeExecution": {"Comment": "why"},
        "collectInvestigationPackage": {"Comment": "why"},
    }


async def test_action_moves_to_succeeded_and_is_read_in_both_shapes(client: MdeClient, sim: Simulator) -> None:
    (machine_id,) = _windows_ids(sim, 1)
    action = await client.isolate(machine_id, comment="x")
    assert action.status is ActionStatus.PENDING and action.type == "Isolate"
    for _ in range(200):
        fetched = await client.get_machine_action(action.id)
        if fetched.status.is_final:
            break
        await asyncio.sleep(0.02)
    assert fetched.status is ActionStatus.SUCCEEDED
    assert fetched.last_update_date_time_utc is not None  # get-by-id: lastUpdateDateTimeUtc
    listed = await client.list_machine_actions(machine_id=machine_id)
    assert [a.id for a in listed] == [action.id]
    assert listed[0].last_update_date_time_utc is not None  # list: lastUpdateTimeUtc


async def test_second_pending_action_is_action_already_pending(client: MdeClient, sim: Simulator) -> None:
    (machine_id,) = _windows_ids(sim, 1)
    await client.unisolate(machine_id, comment="first")
    with pytest.raises(ActionAlreadyPending) as info:
        await client.unisolate(machine_id, comment="second")
    assert info.value.code == "ActiveRequestAlreadyExists" and info.value.target


async def test_cancel_only_the_given_action(client: MdeClient, sim: Simulator) -> None:
    first, second = _windows_ids(sim, 2)
    a = await client.isolate(first, comment="x")
    b = await client.isolate(second, comment="x")
    cancelled = await client.cancel_machine_action(a.id, comment="wrong device")
    assert cancelled.status is ActionStatus.CANCELLED
    assert (await client.get_machine_action(b.id)).status is not ActionStatus.CANCELLED


async def test_unsupported_platform_is_a_typed_error(client: MdeClient, sim: Simulator) -> None:
    linux = next(m["id"] for m in sim.tenant.machines.values() if m["osPlatform"] == "Linux")
    with pytest.raises(UnsupportedDevice):
        await client.isolate(linux, comment="x", isolation_type=IsolationType.SELECTIVE)


async def test_unknown_device_is_not_found(client: MdeClient) -> None:
    with pytest.raises(NotFound):
        await client.isolate("f" * 40, comment="x")


async def test_bulk_tag_is_chunked_by_500(sim_config: SimulatorConfig) -> None:
    sim_config.devices = 1300
    async with Simulator(sim_config) as sim, MdeClient(sim.url, StaticTokenProvider("sim-token")) as client:
        ids = list(sim.tenant.machines)[:1200]
        updated = await client.add_or_remove_tag_for_multiple_machines("INC-7", TagAction.ADD, ids)
        assert len(updated) == 1200
        bulk = calls(sim, "machine_tags")
        assert [len(c.body["MachineIds"]) for c in bulk] == [500, 500, 200]
        assert all(c.body["Value"] == "INC-7" and c.body["Action"] == "Add" for c in bulk)
        assert all("INC-7" in sim.tenant.machines[i]["machineTags"] for i in ids)


async def test_single_tag_add_and_remove(client: MdeClient, sim: Simulator) -> None:
    (machine_id,) = _windows_ids(sim, 1)
    assert "X-1" in (await client.add_machine_tag(machine_id, "X-1")).machine_tags
    assert "X-1" not in (await client.remove_machine_tag(machine_id, "X-1")).machine_tags


async def test_wrong_token_is_authentication_failed(sim: Simulator) -> None:
    async with MdeClient(sim.url, StaticTokenProvider("nope")) as client:
        with pytest.raises(AuthenticationFailed):
            await client.list_machines()


async def test_missing_role_is_named() -> None:
    config = SimulatorConfig(devices=30, time_scale=60, roles=frozenset({"Machine.Read.All"}))
    async with Simulator(config) as sim, MdeClient(sim.url, StaticTokenProvider("sim-token")) as client:
        with pytest.raises(PermissionDenied) as info:
            await client.isolate(next(iter(sim.tenant.machines)), comment="x")
        assert info.value.missing_role == "Machine.Isolate"


async def test_server_errors_are_retried_then_succeed() -> None:
    config = SimulatorConfig(devices=30, time_scale=60)
    async with Simulator(config) as sim:
        sim.config.error_rate = 1.0
        async with MdeClient(
            sim.url, StaticTokenProvider("sim-token"), retry=RetryPolicy(max_attempts=3, base_s=0.001, cap_s=0.002)
        ) as client:
            with pytest.raises(MdeServerError):
                await client.list_machines()
            assert len(calls(sim)) == 3  # bounded
            sim.config.error_rate = 0.0
            assert await client.list_machines()


async def test_a_server_error_on_an_action_post_is_not_resent() -> None:
    config = SimulatorConfig(devices=30, time_scale=60)
    async with Simulator(config) as sim:
        machine = next(iter(sim.tenant.machines))
        sim.config.error_rate = 1.0
        async with MdeClient(sim.url, StaticTokenProvider("sim-token"), retry=RetryPolicy(base_s=0.001)) as client:
            with pytest.raises(MdeServerError) as info:
                await client.isolate(machine, comment="x")
        assert info.value.outcome_unknown
        assert len(calls(sim, method="POST")) == 1


async def test_bad_request_is_not_retried(client: MdeClient, sim: Simulator) -> None:
    with pytest.raises(BadRequest):
        await client.list_machines(filter="rbacGroupName eq 'Finance'")  # not filterable, like MDE
    assert len(calls(sim)) == 1


async def test_a_lost_answer_to_an_action_post_is_not_resent() -> None:
    posts = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal posts
        posts += 1
        raise httpx.ReadTimeout("lost", request=request)

    client = MdeClient("http://127.0.0.1:9", StaticTokenProvider("t"), transport=httpx.MockTransport(handler))
    async with client:
        with pytest.raises(MdeServerError) as info:
            await client.isolate("a" * 40, comment="x")
    assert info.value.outcome_unknown and posts == 1


async def test_token_is_refreshed_once_after_401(sim: Simulator) -> None:
    class Rotating:
        def __init__(self) -> None:
            self.tokens = ["stale", "sim-token"]
            self.invalidated = 0

        async def get_token(self) -> str:
            return self.tokens[0]

        def invalidate(self) -> None:
            self.invalidated += 1
            self.tokens.pop(0)

        async def close(self) -> None:
            return None

    provider = Rotating()
    async with MdeClient(sim.url, provider) as client:
        assert await client.list_machines()
    assert provider.invalidated == 1
