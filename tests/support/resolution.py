"""A small tenant in which each device stands for one resolution rule, for the simulator to serve over HTTP.

Every device but the two twins and the prefix neighbour carries the ``Sweep`` tag, so one ``tag:Sweep``
target meets every rule at once; the constants are the devices' MDE ids, named for the rule they show.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from approvals.policy import Policy
from mde.simulator.tenant import GROUPS, make_machine

SWEEP = "Sweep"
PROTECTED_TAG = "Domain Controllers"


def _id(n: int) -> str:
    return f"{n:040x}"


PLAIN = _id(1)  # Windows 11, active: nothing to say about it
HIGH_RISK = _id(2)  # Windows 10 22H2 in the Finance group, MDE riskScore High
NEIGHBOUR = _id(3)  # ws-ab: its name starts with ws-a's; never matched by device:ws-a
OLD_BUILD = _id(4)  # Windows 10 1607: no isolation type applies (Full needs 1703, Selective 1709)
PHONE = _id(5)  # iOS: MDE takes no device action on it
ASLEEP = _id(6)  # Windows 11, inactive for 20 days
PROTECTED = _id(7)  # a domain controller: the policy protects its tag
HYPERV = _id(8)  # a Hyper-V host: the default policy warns about it
TWIN_1, TWIN_2 = _id(9), _id(10)  # two devices named twin (a laptop onboarded twice)
ISOLATED = _id(11)  # isolated before the request (a succeeded Isolate action)
PENDING = _id(12)  # an isolation that never finishes is pending in MDE
LINUX = _id(13)  # in the Linux Fleet group, untagged

NAMES = {
    PLAIN: "ws-a",
    HIGH_RISK: "ws-b",
    NEIGHBOUR: "ws-ab",
    OLD_BUILD: "old-1607",
    PHONE: "phone-01",
    ASLEEP: "asleep-01",
    PROTECTED: "dc-01",
    HYPERV: "hv-01",
    TWIN_1: "twin",
    TWIN_2: "twin",
    ISOLATED: "iso-01",
    PENDING: "pend-01",
    LINUX: "lnx-01",
}


def fqdn(machine_id: str) -> str:
    return f"{NAMES[machine_id]}.contoso.local"


def machines(now: datetime | None = None) -> list[dict[str, Any]]:
    """The tenant's devices as the machine entity shows them (the simulator's own factory)."""
    now = now or datetime.now(UTC)
    sweep = [SWEEP]
    return [
        make_machine(PLAIN, fqdn(PLAIN), tags=sweep, ip="10.9.0.1", risk="Low", exposure="Low"),
        make_machine(HIGH_RISK, fqdn(HIGH_RISK), os_platform="Windows10", group=GROUPS[3], tags=sweep, risk="High"),
        make_machine(NEIGHBOUR, fqdn(NEIGHBOUR)),
        make_machine(OLD_BUILD, fqdn(OLD_BUILD), os_platform="Windows10", version="1607", os_build=14393, tags=sweep),
        make_machine(PHONE, fqdn(PHONE), os_platform="iOS", tags=sweep),
        make_machine(ASLEEP, fqdn(ASLEEP), tags=sweep, health="Inactive", last_seen=now - timedelta(days=20)),
        make_machine(
            PROTECTED, fqdn(PROTECTED), os_platform="WindowsServer2022", group=GROUPS[0], tags=[PROTECTED_TAG, SWEEP]
        ),
        make_machine(
            HYPERV, fqdn(HYPERV), os_platform="WindowsServer2019", group=GROUPS[1], tags=["Hyper-V Host", SWEEP]
        ),
        make_machine(TWIN_1, fqdn(TWIN_1)),
        make_machine(TWIN_2, fqdn(TWIN_2)),
        make_machine(ISOLATED, fqdn(ISOLATED), tags=sweep),
        make_machine(PENDING, fqdn(PENDING), tags=sweep),
        make_machine(LINUX, fqdn(LINUX), os_platform="Linux", group=GROUPS[4]),
    ]


#: the demo's people, and a protection rule for the domain controllers (the Hyper-V warning is the default)
POLICY = Policy.from_dict(
    {
        "defaults": {"requesters": ["console:alice"], "approvers": ["console:bob"]},
        "protection": {"protected_tags": [PROTECTED_TAG]},
    }
)
