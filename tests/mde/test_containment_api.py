"""Indicators, stop-and-quarantine, users→machines, file prevalence and live response through the real client
against the simulator over HTTP (each simulator behaviour cites its doc page in mde/simulator/)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from mde.auth import StaticTokenProvider
from mde.client import MdeClient
from mde.errors import ActionAlreadyPending, BadRequest, NotFound, PermissionDenied, UnsupportedDevice
from mde.models import ActionStatus, IndicatorAction, IndicatorType
from mde.ratelimit import RateLimiter
from mde.retry import RetryPolicy
from mde.simulator import Simulator, SimulatorConfig
from mde.simulator.tenant import COLLECTABLE, COMMON_FILE, RARE_FILE
from tests.support.simulator import calls

SHA256 = "c" * 64


def _machine(sim: Simulator, platform: str) -> str:
    return next(
        m["id"] for m in sim.tenant.machines.values() if m["osPlatform"] == platform and m["healthStatus"] == "Active"
    )


async def _final(client: MdeClient, action_id: str) -> ActionStatus:
    for _ in range(400):
        action = await client.get_machine_action(action_id)
        if action.status.is_final:
            return action.status
        await asyncio.sleep(0.02)
    raise AssertionError("the action never finished")


async def test_indicator_is_submitted_with_the_documented_fields_and_updated_in_place(
    client: MdeClient, sim: Simulator
) -> None:
    expiry = datetime.now(UTC) + timedelta(days=30)
    first = await client.submit_indicator(
        value=SHA256,
        indicator_type=IndicatorType.FILE_SHA256,
        action=IndicatorAction.BLOCK,
        title="INC-1",
        description="why",
        expiration_time=expiry,
        generate_alert=True,
        application="mde-chatops",
    )
    again = await client.submit_indicator(
        value=SHA256.upper(),
        indicator_type=IndicatorType.FILE_SHA256,
        action=IndicatorAction.WARN,
        title="INC-1",
        description="changed",
        application="someone-else",
    )
    assert again.id == first.id and again.action == "Warn" and again.application == "mde-chatops"
    body = calls(sim, "indicators", "POST")[0].body
    assert body["indicatorType"] == "FileSha256" and body["action"] == "Block" and body["generateAlert"] is True
    assert body["expirationTime"] == expiry.strftime("%Y-%m-%dT%H:%M:%SZ")


async def test_indicators_are_listed_by_application_and_deleted(client: MdeClient) -> None:
    ours = await client.submit_indicator(
        value="evil.example.com",
        indicator_type=IndicatorType.DOMAIN_NAME,
        action=IndicatorAction.BLOCK,
        title="t",
        description="d",
        application="mde-chatops",
    )
    await client.submit_indicator(
        value="203.0.113.7", indicator_type=IndicatorType.IP_ADDRESS, action=IndicatorAction.BLOCK, title="t",
        description="d", application="portal",
    )  # fmt: skip
    listed = await client.list_indicators(application="mde-chatops")
    assert [i.indicator_value for i in listed] == ["evil.example.com"]
    await client.delete_indicator(ours.id)
    assert await client.list_indicators(application="mde-chatops") == []
    with pytest.raises(NotFound):
        await client.delete_indicator(ours.id)


@pytest.mark.parametrize(
    ("kind", "value", "code"),
    [
        (IndicatorType.FILE_SHA256, "abc", "InvalidHashValue"),
        (IndicatorType.IP_ADDRESS, "10.0.0.0/8", "InvalidIpAddress"),
        (IndicatorType.DOMAIN_NAME, "not a domain", "InvalidDomainName"),
    ],
)
async def test_invalid_indicator_values_get_the_documented_codes(
    client: MdeClient, kind: IndicatorType, value: str, code: str
) -> None:
    with pytest.raises(BadRequest) as caught:
        await client.submit_indicator(
            value=value, indicator_type=kind, action=IndicatorAction.BLOCK, title="t", description="d"
        )
    assert caught.value.code == code


async def test_audit_indicator_needs_generate_alert(client: MdeClient) -> None:
    with pytest.raises(BadRequest):
        await client.submit_indicator(
            value="evil.example.com",
            indicator_type=IndicatorType.DOMAIN_NAME,
            action=IndicatorAction.AUDIT,
            title="t",
            description="d",
        )


async def test_expired_indicators_are_not_listed(client: MdeClient, sim: Simulator) -> None:
    await client.submit_indicator(
        value="old.example.com", indicator_type=IndicatorType.DOMAIN_NAME, action=IndicatorAction.BLOCK,
        title="t", description="d", application="mde-chatops",
    )  # fmt: skip
    for row in sim.indicators.rows.values():
        row["expirationTime"] = "2020-01-01T00:00:00Z"
    assert await client.list_indicators(application="mde-chatops") == []


@pytest.mark.parametrize("sim_config", [SimulatorConfig(devices=50, roles=frozenset({"Machine.Read.All"}))])
async def test_indicators_without_ti_permission_name_the_role(client: MdeClient) -> None:
    with pytest.raises(PermissionDenied) as caught:
        await client.list_indicators()
    assert caught.value.missing_role == "Ti.ReadWrite"


async def test_stop_and_quarantine_posts_sha1_and_records_the_file(client: MdeClient, sim: Simulator) -> None:
    machine_id = _machine(sim, "Windows11")
    action = await client.stop_and_quarantine_file(machine_id, sha1=RARE_FILE[0], comment="why")
    assert action.type == "StopAndQuarantineFile"
    assert action.raw["relatedFileInfo"] == {"fileIdentifier": RARE_FILE[0], "fileIdentifierType": "Sha1"}
    assert calls(sim, "machine_actions")[0].body == {"Comment": "why", "Sha1": RARE_FILE[0]}
    with pytest.raises(ActionAlreadyPending):
        await client.stop_and_quarantine_file(machine_id, sha1=RARE_FILE[0], comment="again")


async def test_stop_and_quarantine_refuses_sha256_and_unsupported_platforms(client: MdeClient, sim: Simulator) -> None:
    with pytest.raises(BadRequest) as caught:
        await client.stop_and_quarantine_file(_machine(sim, "Windows10"), sha1=SHA256, comment="why")
    assert caught.value.code == "InvalidHashValue"
    with pytest.raises(UnsupportedDevice):
        await client.stop_and_quarantine_file(_machine(sim, "Linux"), sha1=RARE_FILE[0], comment="why")


async def test_user_related_machines_use_the_account_name_and_logon_users_give_last_seen(
    client: MdeClient, sim: Simulator
) -> None:
    machines = await client.get_user_related_machines("alice@contoso.com")
    assert len(machines) == 3
    assert calls(sim, "machines_read")[0].path == "/api/users/alice/machines"
    users = await client.get_machine_logon_users(machines[2].id)
    alice = next(u for u in users if u.account_name == "alice")
    assert alice.last_seen is not None and alice.last_seen < datetime.now(UTC) - timedelta(days=40)
    assert await client.get_user_related_machines("nobody@contoso.com") == []


async def test_file_stats_give_organization_prevalence(client: MdeClient) -> None:
    common = await client.get_file_stats(COMMON_FILE[0])
    assert common is not None and common.org_prevalence >= 200
    rare = await client.get_file_stats(RARE_FILE[1])  # by SHA-256 too
    assert rare is not None and rare.org_prevalence == 2
    assert await client.get_file_stats("d" * 40) is None


async def test_live_response_get_file_gives_a_download_link(client: MdeClient, sim: Simulator) -> None:
    machine_id = next(mid for mid, paths in sim.tenant.device_files.items() if COLLECTABLE in paths)
    action = await client.get_file(machine_id, path=COLLECTABLE, comment="why")
    assert action.type == "LiveResponse" and action.command_statuses == ("Created",)
    with pytest.raises(ActionAlreadyPending):
        await client.get_file(machine_id, path=COLLECTABLE, comment="second session")
    assert await _final(client, action.id) is ActionStatus.SUCCEEDED
    link = await client.get_live_response_result_download_link(action.id, 0)
    async with httpx.AsyncClient() as http:
        content = (await http.get(link)).content
    assert COLLECTABLE.encode() in content
    body = calls(sim, "live_response")[0].body
    assert body["Commands"] == [{"type": "GetFile", "params": [{"key": "Path", "value": COLLECTABLE}]}]


async def test_live_response_of_a_missing_file_fails_and_has_no_link(client: MdeClient, sim: Simulator) -> None:
    machine_id = _machine(sim, "Windows11")
    action = await client.get_file(machine_id, path="C:\\nope.txt", comment="why")
    assert await _final(client, action.id) is ActionStatus.FAILED
    with pytest.raises(BadRequest):
        await client.get_live_response_result_download_link(action.id, 0)


@pytest.mark.parametrize("sim_config", [SimulatorConfig(devices=60, time_scale=600)])
async def test_live_response_is_paced_at_ten_per_minute_without_429(sim: Simulator) -> None:
    limiter = RateLimiter(time_scale=sim.config.time_scale)
    windows = [m["id"] for m in sim.tenant.machines.values() if m["osPlatform"].startswith("Windows1")][:14]
    async with MdeClient(
        sim.url, StaticTokenProvider("sim-token"), limiter=limiter, retry=RetryPolicy(base_s=0.01, cap_s=0.05)
    ) as mde:
        await asyncio.gather(*(mde.get_file(m, path="C:\\x", comment="pace") for m in windows))
    posted = calls(sim, "live_response")
    assert sim.sent_429 == 0 and len(posted) == 14
    assert posted[-1].time - posted[0].time >= 60 / 600 * 0.9  # the 11th waited for the minute window


async def test_file_related_machines_take_sha1_only(client: MdeClient, sim: Simulator) -> None:
    machines = await client.get_file_related_machines(RARE_FILE[0])
    assert len(machines) == 2 and all(m.computer_dns_name.startswith("ws-") for m in machines)
    assert await client.get_file_related_machines("f" * 40) == []
    with pytest.raises(BadRequest):
        await client.get_file_related_machines(RARE_FILE[1])
    assert {e.family for e in calls(sim)} == {"files_read"}
