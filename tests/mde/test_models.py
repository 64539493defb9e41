"""Mapping MDE's JSON once, at the boundary: the machine entity and its timestamps, fast path and general path."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from mde.models import Machine, _parse_datetime_general, parse_datetime

#: every shape a time may come in: MDE's own (7 digits, Z), fewer digits, an offset, none, malformed
TIMES = [
    "2026-12-02T12:54:50.7779530Z",
    "2026-12-02T12:54:50.0000009Z",
    "2026-12-02T23:59:59.9999999Z",
    "2026-12-02T12:54:50.777953Z",
    "2026-12-02T12:54:50.77Z",
    "2026-12-02T12:54:50Z",
    "2026-12-02T12:54:50",
    "2026-12-02T12:54:50.1234567+02:00",
    "2026-12-02T12:54:50.123456+00:00",
    "2026-12-02T12:54:50.12345670Z",
    "2026-12-02T12:54:50.123456xZ",
    "2026-12-02T12:54:50,1234567Z",
    "2026-13-02T12:54:50.7779530Z",
    "2026-12-02T12:54:5a.7779530Z",
    "2026-12-02 12:54:50.7779530Z",
    "not a date at all, 28 chars!",
    "",
    None,
    0,
]


@pytest.mark.parametrize("value", TIMES)
def test_the_fast_path_reads_every_time_as_the_general_one_does(value: object) -> None:
    assert parse_datetime(value) == _parse_datetime_general(value)
    parsed = parse_datetime(value)
    assert parsed is None or parsed.utcoffset() is not None


def test_mde_times_keep_six_of_seven_digits_in_utc() -> None:
    parsed = parse_datetime("2026-12-02T12:54:50.7779539Z")
    assert parsed == datetime(2026, 12, 2, 12, 54, 50, 777953, tzinfo=UTC)
    assert parsed is not None and parsed.tzinfo is UTC


def test_missing_null_and_malformed_times_are_none() -> None:
    assert parse_datetime(None) is None
    assert parse_datetime("") is None
    assert parse_datetime("2026-13-02T12:54:50.7779530Z") is None


MACHINE = {
    "id": "AA1FFCD894DA8B50931244D29BE243A28A77316A",
    "computerDnsName": "dc-01.contoso.local",
    "firstSeen": "2026-05-16T12:54:50.7779530Z",
    "lastSeen": "2026-12-02T12:54:50.7779530Z",
    "osPlatform": "WindowsServer2022",
    "version": "21H2",
    "osProcessor": "x64",
    "osBuild": 20348,
    "lastIpAddress": "10.0.0.1",
    "lastExternalIpAddress": "203.0.113.10",
    "healthStatus": "Active",
    "onboardingStatus": "onboarded",
    "rbacGroupId": 140,
    "rbacGroupName": "Tier0 Servers",
    "riskScore": "High",
    "exposureLevel": "Medium",
    "deviceValue": "Normal",
    "isAadJoined": True,
    "aadDeviceId": None,
    "machineTags": ["Domain Controllers", "Tier 0"],
    "ipAddresses": [{"ipAddress": "10.0.0.1", "macAddress": "00155D000000", "operationalStatus": "Up"}],
    "someFieldMdeAddsLater": {"nested": [1, 2]},
}


def test_a_machine_maps_the_documented_fields_and_ignores_unknown_ones() -> None:
    machine = Machine.from_api(MACHINE)
    assert machine == Machine(
        id="AA1FFCD894DA8B50931244D29BE243A28A77316A",
        computer_dns_name="dc-01.contoso.local",
        os_platform="WindowsServer2022",
        version="21H2",
        os_build=20348,
        health_status="Active",
        onboarding_status="onboarded",
        rbac_group_id=140,
        rbac_group_name="Tier0 Servers",
        machine_tags=("Domain Controllers", "Tier 0"),
        last_seen=datetime(2026, 12, 2, 12, 54, 50, 777953, tzinfo=UTC),
        first_seen=datetime(2026, 5, 16, 12, 54, 50, 777953, tzinfo=UTC),
        last_ip_address="10.0.0.1",
        last_external_ip_address="203.0.113.10",
        risk_score="High",
        exposure_level="Medium",
        device_value="Normal",
        aad_device_id=None,
    )
    assert not hasattr(machine, "raw")  # no copy of the JSON per device (issue 18: memory at 100,000)


def test_a_sparse_machine_reads_as_it_did() -> None:
    machine = Machine.from_api(
        {"id": 7, "lastSeen": None, "osBuild": "19045", "rbacGroupId": "12", "machineTags": None}
    )
    assert (machine.id, machine.computer_dns_name, machine.os_build, machine.rbac_group_id) == ("7", "", 19045, 12)
    assert machine.last_seen is None and machine.first_seen is None and machine.machine_tags == ()


@pytest.mark.parametrize(
    ("build", "group", "expected"),
    [(-1, "", (None, None)), (True, True, (None, 1)), ("10.0", "x", (None, None)), (None, None, (None, None))],
)
def test_odd_build_and_group_values_are_read_as_before(
    build: object, group: object, expected: tuple[object, object]
) -> None:
    machine = Machine.from_api({"id": "x", "osBuild": build, "rbacGroupId": group})
    assert (machine.os_build, machine.rbac_group_id) == expected


def test_repeated_texts_are_one_object_across_devices() -> None:
    """A 100,000-device listing repeats platform, status, group and tags: one copy each, not one per device."""
    first = Machine.from_api(
        {**MACHINE, "osPlatform": "".join(["Windows", "11"]), "machineTags": ["".join(["T", "0"])]}
    )
    second = Machine.from_api({**MACHINE, "osPlatform": "".join(["Windows", "1", "1"]), "machineTags": ["T" + "0"[:1]]})
    assert first.os_platform is second.os_platform
    assert first.machine_tags[0] is second.machine_tags[0]
