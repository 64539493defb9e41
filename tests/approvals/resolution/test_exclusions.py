"""Why a matched device is left out, through ``Resolver.resolve`` against the simulator over HTTP: platform and
build (the capability table), inactive devices, isolation state read from MDE's own actions, protection, and the
``devices`` preview that excludes nothing."""

from __future__ import annotations

import pytest

from approvals.commands.models import Target, TargetKind
from approvals.resolution.flows import Resolution, Resolver
from approvals.verbs import Verb
from mde.client import MdeClient
from tests.support.resolution import (
    ASLEEP,
    HIGH_RISK,
    HYPERV,
    ISOLATED,
    OLD_BUILD,
    PENDING,
    PHONE,
    PLAIN,
    POLICY,
    PROTECTED,
    SWEEP,
)

TAG = Target(TargetKind.TAG, SWEEP)


async def _resolve(
    client: MdeClient, verb: Verb, isolation_type: str = "Full", *, active_only: bool = False
) -> Resolution:
    return await Resolver(client, POLICY).resolve(
        [TAG], verb=verb, isolation_type=isolation_type, active_only=active_only
    )


async def _isolated_beforehand(client: MdeClient) -> None:
    """What an analyst did in the portal before the request: one isolation done, one still pending."""
    await client.isolate(ISOLATED, comment="from the portal")
    await client.isolate(PENDING, comment="from the portal")


def _ids(resolution: Resolution) -> set[str]:
    return {m.id for m in resolution.devices}


def _excluded(resolution: Resolution) -> dict[str, tuple[str, str]]:
    """machine id -> (kind, reason)."""
    return {e.machine_id or e.name: (e.kind, e.reason) for e in resolution.exclusions}


async def test_isolation_leaves_out_what_mde_would_refuse_or_has_already_done_each_with_its_reason(
    client: MdeClient,
) -> None:
    await _isolated_beforehand(client)
    resolution = await _resolve(client, Verb.ISOLATE)
    assert _ids(resolution) == {PLAIN, HIGH_RISK, ASLEEP, PROTECTED, HYPERV}
    excluded = _excluded(resolution)
    assert set(excluded) == {ISOLATED, PENDING, OLD_BUILD, PHONE}
    assert excluded[ISOLATED][0] == "already" and excluded[ISOLATED][1].startswith("already isolated (since ")
    assert excluded[PENDING] == ("already", "an isolation is already pending for this device")
    assert excluded[OLD_BUILD][0] == "unsupported" and "before 1703" in excluded[OLD_BUILD][1]
    assert excluded[PHONE] == ("unsupported", "iOS devices do not support this action")


async def test_selective_isolation_needs_windows_10_1709(client: MdeClient) -> None:
    excluded = _excluded(await _resolve(client, Verb.ISOLATE, "Selective"))
    assert (
        excluded[OLD_BUILD][0] == "unsupported"
        and "selective isolation needs Windows 10 1709" in excluded[OLD_BUILD][1]
    )


async def test_an_inactive_device_stays_in_an_isolation_with_a_note_unless_active_only(client: MdeClient) -> None:
    """MDE retries an offline device's isolation for three days: the card says so; --active-only leaves it out."""
    waiting = await _resolve(client, Verb.ISOLATE)
    assert ASLEEP in _ids(waiting)
    assert waiting.notes[ASLEEP].endswith("applies when it reconnects, or times out after 3 days")
    assert any(line.startswith("1 inactive device(s) included") for line in waiting.caveats)
    left_out = await _resolve(client, Verb.ISOLATE, active_only=True)
    assert ASLEEP not in _ids(left_out) and left_out.notes == {}
    kind, reason = _excluded(left_out)[ASLEEP]
    assert kind == "inactive" and reason.endswith("left out by --active-only")


async def test_a_scan_leaves_out_inactive_devices_and_windows_server(client: MdeClient) -> None:
    """A scan does not wait for a device to reconnect; no page lists Windows Server for the scan API."""
    resolution = await _resolve(client, Verb.SCAN)
    excluded = _excluded(resolution)
    kind, reason = excluded[ASLEEP]
    assert kind == "inactive" and reason.endswith("a scan would run days late, if at all")
    assert excluded[PROTECTED][0] == excluded[HYPERV][0] == "unsupported"
    assert "Windows Server" in excluded[PROTECTED][1]
    assert _ids(resolution) == {PLAIN, HIGH_RISK, ISOLATED, PENDING}


async def test_a_release_takes_only_devices_mde_shows_isolated(client: MdeClient) -> None:
    await _isolated_beforehand(client)
    resolution = await _resolve(client, Verb.UNISOLATE)
    assert ISOLATED in _ids(resolution) and PLAIN not in _ids(resolution)
    assert _excluded(resolution)[PLAIN] == ("already", "not isolated")


async def test_the_latest_isolate_or_release_decides_whether_a_device_is_isolated(client: MdeClient) -> None:
    """MDE has no isolation flag: isolated, then released in the portal, means it can be isolated again."""
    await client.isolate(PLAIN, comment="portal")
    assert _excluded(await _resolve(client, Verb.ISOLATE))[PLAIN][0] == "already"
    await client.unisolate(PLAIN, comment="portal")
    assert PLAIN in _ids(await _resolve(client, Verb.ISOLATE))
    assert _excluded(await _resolve(client, Verb.UNISOLATE))[PLAIN] == ("already", "not isolated")


@pytest.mark.parametrize("verb", [Verb.ISOLATE, Verb.DEVICES])
async def test_protected_and_warned_devices_are_marked_with_the_policys_reason(client: MdeClient, verb: Verb) -> None:
    resolution = await _resolve(client, verb)
    assert (resolution.protection[PROTECTED].level, resolution.protection[PROTECTED].reason) == (
        "protected",
        "tagged 'Domain Controllers'",
    )
    assert resolution.protection[HYPERV].level == "warn" and "Hyper-V" in (resolution.protection[HYPERV].reason or "")
    assert resolution.protection[PLAIN].level == "none"
    assert [m.id for m in resolution.protected] == [PROTECTED]
    assert set(resolution.protection) == _ids(resolution)  # every device of the set is classified


async def test_a_devices_preview_excludes_nothing_and_says_what_each_action_would_skip(client: MdeClient) -> None:
    await _isolated_beforehand(client)
    resolution = await _resolve(client, Verb.DEVICES)
    assert resolution.exclusions == [] and {PHONE, OLD_BUILD, ASLEEP, ISOLATED} <= _ids(resolution)
    assert resolution.skips[PHONE][0] == "isolate: iOS devices do not support this action"
    assert any(s.startswith("isolate --type selective: selective isolation needs") for s in resolution.skips[OLD_BUILD])
    assert PLAIN not in resolution.skips
