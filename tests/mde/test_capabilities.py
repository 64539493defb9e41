"""The capability table: what it decides, and that the simulator refuses exactly its UNSUPPORTED rows."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from mde.capabilities import RULES, Device, Support, check, markdown_table
from mde.client import MdeClient
from mde.errors import UnsupportedDevice
from mde.models import IsolationType, ScanType
from mde.simulator import Simulator

WIN10_1607 = Device("Windows10", "1607", 14393)
WIN10_1703 = Device("Windows10", "1703", 15063)
WIN10_1709 = Device("Windows10", "1709", 16299)


def test_every_row_cites_a_microsoft_page() -> None:
    assert RULES
    for rule in RULES:
        assert rule.sources and all(s.startswith("defender-endpoint/") and s.endswith(".md") for s in rule.sources)
        if rule.support is not Support.SUPPORTED:
            assert rule.note, f"{rule} is left out without a reason the approver can read"


@pytest.mark.parametrize(
    ("device", "scope", "expected"),
    [
        (WIN10_1607, "Full", Support.UNSUPPORTED),
        (WIN10_1703, "Full", Support.SUPPORTED),
        (WIN10_1607, "Selective", Support.UNSUPPORTED),
        (WIN10_1703, "Selective", Support.UNCLEAR),  # the API page says 1709, respond-machine-alerts 1703
        (WIN10_1709, "Selective", Support.SUPPORTED),
        (Device("Windows11", "23H2", 22631), "Selective", Support.SUPPORTED),
        (Device("WindowsServer2012R2"), "Selective", Support.SUPPORTED),
        (Device("WindowsServer2008R2"), "Full", Support.UNSUPPORTED),
        (Device("Linux"), "Full", Support.SUPPORTED),
        (Device("Linux"), "Selective", Support.UNSUPPORTED),
        (Device("macOS"), "Selective", Support.SUPPORTED),
        (Device("iOS"), "Full", Support.UNSUPPORTED),
        (Device("Windows10"), "Full", Support.UNCLEAR),  # no build, no version: the floor cannot be checked
        (Device("Windows11", onboarded=True), "UnManagedDevice", Support.UNCLEAR),
        (Device("Linux", onboarded=False), "UnManagedDevice", Support.SUPPORTED),
        (Device("Windows11", onboarded=False), "Full", Support.UNSUPPORTED),
    ],
)
def test_isolation_by_platform_version_and_build(device: Device, scope: str, expected: Support) -> None:
    assert check("Isolate", device, scope).support is expected


def test_the_older_of_build_and_version_decides() -> None:
    """The docs' own example says version 1709 with a newer build: a disagreement is read the safe way."""
    assert check("Isolate", Device("Windows10", "1607", 16299), "Selective").support is Support.UNSUPPORTED


@pytest.mark.parametrize(
    ("action", "device", "expected"),
    [
        ("RunAntiVirusScan", WIN10_1703, Support.UNSUPPORTED),
        ("RunAntiVirusScan", WIN10_1709, Support.SUPPORTED),
        ("RunAntiVirusScan", Device("WindowsServer2022"), Support.UNCLEAR),
        ("RunAntiVirusScan", Device("Linux"), Support.SUPPORTED),
        ("RestrictCodeExecution", Device("WindowsServer2019"), Support.SUPPORTED),
        ("RestrictCodeExecution", Device("WindowsServer2016"), Support.UNSUPPORTED),
        ("UnrestrictCodeExecution", Device("macOS"), Support.UNSUPPORTED),
        ("CollectInvestigationPackage", Device("Linux"), Support.SUPPORTED),
        ("CollectInvestigationPackage", Device("Android"), Support.UNSUPPORTED),
        ("Tag", Device("iOS"), Support.SUPPORTED),
    ],
)
def test_other_actions_by_platform(action: str, device: Device, expected: Support) -> None:
    assert check(action, device).support is expected


def test_a_mac_carries_the_client_version_caveat() -> None:
    verdict = check("Isolate", Device("macOS"), "Full")
    assert verdict.support is Support.SUPPORTED and verdict.caveat and "101.98.84" in verdict.caveat


async def _add(sim: Simulator, **machine: object) -> str:
    async with httpx.AsyncClient() as http:
        response = await http.post(f"{sim.url}/_sim/machines", json={"computerDnsName": "x.contoso.local", **machine})
    return str(response.json()[0]["id"])


async def test_the_simulator_refuses_selective_isolation_on_windows_10_1607(client: MdeClient, sim: Simulator) -> None:
    old = await _add(sim, osPlatform="Windows10", version="1607", osBuild=14393)
    with pytest.raises(UnsupportedDevice) as refused:
        await client.isolate(old, comment="x", isolation_type=IsolationType.SELECTIVE)
    assert refused.value.code == "OsPlatformNotSupported"
    assert not [a for a in sim.tenant.actions.values() if a.machine_id == old]


async def test_the_simulator_accepts_what_the_pages_disagree_on(client: MdeClient, sim: Simulator) -> None:
    """Selective on 1703: respond-machine-alerts.md allows it; only resolution leaves it out."""
    w1703 = await _add(sim, osPlatform="Windows10", version="1703", osBuild=15063)
    action = await client.isolate(w1703, comment="x", isolation_type=IsolationType.SELECTIVE)
    assert action.scope == "Selective"


async def test_the_simulator_refuses_an_old_mac_client(client: MdeClient, sim: Simulator) -> None:
    old_mac = await _add(sim, osPlatform="macOS", clientVersion="101.97.1")
    with pytest.raises(UnsupportedDevice) as refused:
        await client.run_antivirus_scan(old_mac, comment="x", scan_type=ScanType.QUICK)
    assert refused.value.code == "ClientVersionNotSupported"
    new_mac = await _add(sim, osPlatform="macOS", clientVersion="101.98.84")
    assert (await client.run_antivirus_scan(new_mac, comment="x")).type == "RunAntiVirusScan"


async def test_contain_takes_a_device_that_is_not_onboarded(client: MdeClient, sim: Simulator) -> None:
    unmanaged = await _add(sim, osPlatform="Linux", onboardingStatus="CanBeOnboarded")
    action = await client.isolate(unmanaged, comment="x", isolation_type=IsolationType.UNMANAGED_DEVICE)
    assert action.scope == "UnManagedDevice"
    with pytest.raises(UnsupportedDevice):
        await client.isolate(unmanaged, comment="x")


def test_the_docs_page_renders_the_table() -> None:
    page = (Path(__file__).parents[2] / "docs" / "device-actions.md").read_text(encoding="utf-8")
    rendered = page.split("<!-- capabilities:begin -->\n", 1)[1].split("\n<!-- capabilities:end -->", 1)[0]
    assert rendered == markdown_table(), "run python -m mde.capabilities and paste it into docs/device-actions.md"
