"""A seeded fake tenant: the same seed always gives the same devices."""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from mde.simulator.actions import SimAction
from mde.simulator.alerts import seed_alerts
from mde.simulator.timefmt import iso

GROUPS = [
    (140, "Tier0 Servers"),
    (141, "Servers"),
    (142, "Workstations"),
    (143, "Finance"),
    (144, "Linux Fleet"),
    (145, "Mac Fleet"),
]
OS_MIX = [
    ("Windows11", 45),
    ("Windows10", 25),
    ("WindowsServer2022", 10),
    ("WindowsServer2019", 5),
    ("Linux", 8),
    ("macOS", 5),
    ("iOS", 1),
    ("Android", 1),
]
DOMAIN = "contoso.local"
SPECIAL_TAGS = ["Finance Laptops", "O'Brien's laptops", "VIP", "Kiosk", "Ransomware Suspects"]


#: a current release per platform: (version, osBuild) as the machine entity shows them
DEFAULT_RELEASE: dict[str, tuple[str, int | None]] = {
    "Windows11": ("23H2", 22631),
    "Windows10": ("22H2", 19045),
    "WindowsServer2022": ("21H2", 20348),
    "WindowsServer2019": ("1809", 17763),
    "Linux": ("22.04", None),
    "macOS": ("14.5", None),
    "iOS": ("17.5", None),
    "Android": ("14", None),
}


def machine_id(seed: int, index: int) -> str:
    return hashlib.sha1(f"{seed}:{index}".encode()).hexdigest()  # noqa: S324  (an id, not security)


@dataclass
class Tenant:
    machines: dict[str, dict[str, Any]] = field(default_factory=dict)
    actions: dict[str, SimAction] = field(default_factory=dict)
    #: DeviceNetworkEvents rows for the KQL subset (DCs listen on 88 and 389)
    network_events: list[dict[str, Any]] = field(default_factory=list)
    #: files MDE has seen, by any of their hashes (lower case): sha1, sha256, organizationPrevalence, names
    files: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: paths a live response GetFile can collect, per machine id
    device_files: dict[str, set[str]] = field(default_factory=dict)
    #: per machine id: logon users (get-machine-log-on-users.md shape)
    logons: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    #: alerts (alerts.md shape), newest last; ``mde.simulator.alerts``
    alerts: list[dict[str, Any]] = field(default_factory=list)

    def add_file(self, sha1: str, sha256: str, machine_ids: list[str], names: list[str]) -> dict[str, Any]:
        """A file seen on ``machine_ids`` (its organization prevalence is their number)."""
        row = {
            "sha1": sha1.lower(),
            "sha256": sha256.lower(),
            "organizationPrevalence": len(machine_ids),
            "names": names,
            "machineIds": list(machine_ids),
        }
        self.files[sha1.lower()] = self.files[sha256.lower()] = row
        return row

    def add_logon(self, machine_id: str, account: str, domain: str, last_seen: datetime) -> None:
        users = self.logons.setdefault(machine_id, [])
        users[:] = [u for u in users if u["accountName"].lower() != account.lower()]
        users.append(
            {
                "id": f"{domain}\\{account}",
                "accountName": account,
                "accountDomain": domain,
                "firstSeen": iso(last_seen - timedelta(days=30)),
                "lastSeen": iso(last_seen),
                "logonTypes": "Interactive",
                "isDomainAdmin": False,
                "isOnlyNetworkUser": False,
            }
        )

    def by_name(self, name: str) -> list[dict[str, Any]]:
        lowered = name.lower()
        return [m for m in self.machines.values() if m["computerDnsName"].lower() == lowered]

    def add(self, machine: dict[str, Any]) -> dict[str, Any]:
        self.machines[machine["id"]] = machine
        return machine

    def tags(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for m in self.machines.values():
            for tag in m["machineTags"]:
                counts[tag] = counts.get(tag, 0) + 1
        return counts

    def groups(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for m in self.machines.values():
            counts[m["rbacGroupName"]] = counts.get(m["rbacGroupName"], 0) + 1
        return counts


#: the machine entity's riskScore and exposureLevel values; the mix is ours
#: https://learn.microsoft.com/defender-endpoint/api/machine
RISK_SCORES = ("None", "Informational", "Low", "Medium", "High")
RISK_WEIGHTS = (20, 10, 50, 16, 4)
EXPOSURE_LEVELS = ("None", "Low", "Medium", "High")
EXPOSURE_WEIGHTS = (10, 40, 35, 15)


def make_machine(
    mid: str,
    name: str,
    *,
    os_platform: str = "Windows11",
    group: tuple[int, str] = GROUPS[2],
    tags: list[str] | None = None,
    health: str = "Active",
    onboarding: str = "onboarded",
    last_seen: datetime | None = None,
    ip: str = "10.0.0.1",
    version: str | None = None,
    os_build: int | None = None,
    risk: str = "Low",
    exposure: str = "Medium",
) -> dict[str, Any]:
    seen = last_seen or datetime.now(UTC)
    default_version, default_build = DEFAULT_RELEASE.get(os_platform, ("", None))
    version = default_version if version is None else version
    os_build = default_build if os_build is None else os_build
    return {
        "id": mid,
        "computerDnsName": name,
        "firstSeen": iso(seen - timedelta(days=200)),
        "lastSeen": iso(seen),
        "osPlatform": os_platform,
        "version": version,
        "osProcessor": "x64",
        "osArchitecture": "64-bit",
        "osBuild": os_build,
        "lastIpAddress": ip,
        "lastExternalIpAddress": "203.0.113.10",
        "healthStatus": health,
        "onboardingStatus": onboarding,
        "rbacGroupId": group[0],
        "rbacGroupName": group[1],
        "riskScore": risk,
        "exposureLevel": exposure,
        "deviceValue": "Normal",
        "isAadJoined": os_platform.startswith("Windows"),
        "aadDeviceId": None,
        "machineTags": list(tags or []),
        "ipAddresses": [{"ipAddress": ip, "macAddress": "00155D000000", "operationalStatus": "Up"}],
    }


def seed_tenant(devices: int, seed: int = 0, inactive_rate: float = 0.05) -> Tenant:
    rng = random.Random(seed)
    # risk and exposure have their own stream, so adding them left every other property of the tenant as it was
    risk_rng = random.Random(seed + 7919)
    tenant = Tenant()
    now = datetime.now(UTC)
    oses = [os for os, weight in OS_MIX for _ in range(weight)]
    for index in range(devices):
        mid = machine_id(seed, index)
        ip = f"10.{(index >> 16) & 255}.{(index >> 8) & 255}.{index & 255}"
        if index < 3:
            tenant.add(
                make_machine(
                    mid,
                    f"dc-{index + 1:02d}.{DOMAIN}",
                    os_platform="WindowsServer2022",
                    group=GROUPS[0],
                    tags=["Domain Controllers"],
                    ip=ip,
                )
            )
            for port in (88, 389):
                tenant.network_events.append(
                    {
                        "DeviceId": mid,
                        "DeviceName": f"dc-{index + 1:02d}.{DOMAIN}",
                        "LocalPort": port,
                        "RemotePort": 0,
                        "ActionType": "ListeningConnectionCreated",
                    }
                )
            continue
        if index == 3:
            tenant.add(
                make_machine(
                    mid,
                    f"hv-host-01.{DOMAIN}",
                    os_platform="WindowsServer2019",
                    group=GROUPS[1],
                    tags=["Hyper-V Host"],
                    ip=ip,
                )
            )
            continue
        if index == 4:
            tenant.add(
                make_machine(
                    mid,
                    f"soc-jump-01.{DOMAIN}",
                    os_platform="WindowsServer2022",
                    group=GROUPS[0],
                    tags=["Restricted security operations"],
                    ip=ip,
                )
            )
            continue
        os_platform = oses[rng.randrange(len(oses))]
        if os_platform.startswith("WindowsServer"):
            name, group = f"srv-{index:04d}", GROUPS[1]
        elif os_platform == "Linux":
            name, group = f"lnx-{index:04d}", GROUPS[4]
        elif os_platform == "macOS":
            name, group = f"mac-{index:04d}", GROUPS[5]
        else:
            name, group = f"ws-{index:04d}", GROUPS[2]
        tags: list[str] = []
        roll = rng.random()
        if name.startswith("ws-") and roll < 0.12:
            tags.append("Finance Laptops")
            group = GROUPS[3]
        elif roll < 0.16:
            tags.append("O'Brien's laptops")
        elif roll < 0.20:
            tags.append("VIP")
        health = "Inactive" if rng.random() < inactive_rate else "Active"
        onboarding = "onboarded"
        if os_platform in ("iOS", "Android"):
            onboarding = "Unsupported" if rng.random() < 0.5 else "onboarded"
        last_seen = now - timedelta(days=rng.randint(8, 40)) if health == "Inactive" else now
        tenant.add(
            make_machine(
                mid,
                f"{name}.{DOMAIN}",
                os_platform=os_platform,
                group=group,
                tags=tags,
                health=health,
                onboarding=onboarding,
                last_seen=last_seen,
                ip=ip,
                risk=risk_rng.choices(RISK_SCORES, RISK_WEIGHTS)[0],
                exposure=risk_rng.choices(EXPOSURE_LEVELS, EXPOSURE_WEIGHTS)[0],
            )
        )
    _seed_users_and_files(tenant, now)
    tenant.alerts = seed_alerts(list(tenant.machines.values()), seed, now)
    if devices > 20:
        # two devices that share one name (a re-imaged laptop onboarded twice): never guess between them
        for suffix in ("a", "b"):
            mid = hashlib.sha1(f"{seed}:dup:{suffix}".encode()).hexdigest()  # noqa: S324
            tenant.add(make_machine(mid, f"ws-dup.{DOMAIN}", tags=["Duplicates"]))
    return tenant


#: a common file (seen on most devices) and a rare one, for the indicator card's prevalence warning
COMMON_FILE = ("3395856ce81f2b7382dee72602f798b642f14140", "a" * 64, "OneDriveSetup.exe")
RARE_FILE = ("0123456789abcdef0123456789abcdef01234567", "b" * 64, "invoice.pdf.exe")
COLLECTABLE = "C:\\Users\\Public\\Downloads\\invoice.pdf.exe"


def _seed_users_and_files(tenant: Tenant, now: datetime) -> None:
    """alice logged on to three workstations (one 45 days ago); every workstation has its own user; the
    first Windows workstations hold the rare file a live response GetFile can collect."""
    workstations = [m for m in tenant.machines.values() if m["computerDnsName"].startswith("ws-")]
    for age_days, machine in zip((0, 2, 45), workstations[:3], strict=False):
        tenant.add_logon(machine["id"], "alice", "contoso", now - timedelta(days=age_days, hours=1))
    for machine in workstations:
        tenant.add_logon(machine["id"], "u" + machine["computerDnsName"][3:7], "contoso", now - timedelta(hours=3))
    everyone = list(tenant.machines)
    tenant.add_file(COMMON_FILE[0], COMMON_FILE[1], everyone[: max(1, len(everyone) * 9 // 10)], [COMMON_FILE[2]])
    tenant.add_file(RARE_FILE[0], RARE_FILE[1], [m["id"] for m in workstations[:2]], [RARE_FILE[2]])
    for machine in workstations[:5]:
        tenant.device_files.setdefault(machine["id"], set()).add(COLLECTABLE)
