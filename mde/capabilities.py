"""Which MDE action each device can take: one table, read by resolution, the simulator and the docs.

Every row cites the Microsoft page it comes from. The pages disagree in places (shared reference §8.7);
where they do, or where they are silent, the row says ``UNCLEAR`` and why. Resolution leaves UNSUPPORTED
and UNCLEAR devices out before the card, with the row's reason (the safe choice: an approver never sees
a device that MDE may refuse after approval). The simulator refuses only UNSUPPORTED rows, with the
documented error code (common-errors.md), because an UNCLEAR row is a doubt, not a documented refusal.

Sources (repository MicrosoftDocs/defender-docs):

* ``api/isolate-machine.md`` (2025-03-12): Full on Windows 10 1703+, Windows 11, supported Linux;
  Selective on Windows 10 1709+ and Windows 11; UnManagedDevice "targets unmanaged devices only".
* ``respond-machine-alerts.md`` (2025-12-31): Full on Windows 11, Windows 10 1703+, Windows Server
  2012 R2+, Linux; Selective on Windows 11, Windows 10 1703+, Windows Server 2012 R2+ and macOS; macOS
  isolation and macOS/Linux scans need client 101.98.84+; restrict on Windows 10 1709+, Windows 11,
  Windows Server 2019+; an offline device's isolation is retried for up to three days.
* ``network-isolation-exclusions.md`` (2026-06-30): Selective (isolation exclusions) on Windows 11,
  Windows 10 1703+, Windows Server 2012 R2 and 2016+, macOS; Selective works through the API.
* ``api/run-av-scan.md`` (2024-04-17): Windows 10 1709+ and Windows 11.
* ``api/restrict-code-execution.md`` / ``api/unrestrict-code-execution.md`` (2020-12-18): Windows 10
  1709+ and Windows 11 (the unrestrict page repeats the isolation text by mistake).
* ``api/unisolate-machine.md`` (2024-04-17), ``api/collect-investigation-package.md`` (2025-06-03),
  ``api/add-or-remove-machine-tags.md``: no platform limit beyond onboarding.
* ``api/common-errors.md``: ``OsPlatformNotSupported`` and ``ClientVersionNotSupported`` (400). Which
  code each refusal really uses is not documented per action (UNCONFIRMED, see docs/mde-api-contract.md).
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass


class Support(enum.StrEnum):
    SUPPORTED = "supported"
    UNSUPPORTED = "unsupported"  # a page says so: resolution excludes, the simulator refuses
    UNCLEAR = "unclear"  # the pages disagree or are silent: resolution excludes, the simulator accepts


class Platform(enum.StrEnum):
    WINDOWS_10 = "Windows 10"
    WINDOWS_11 = "Windows 11"
    WINDOWS_SERVER = "Windows Server"
    WINDOWS_OLD = "older Windows"
    LINUX = "Linux"
    MACOS = "macOS"
    MOBILE = "iOS/Android"
    UNKNOWN = "unknown"


#: Windows 10 feature updates and their build numbers (the machine entity's ``osBuild``)
WIN10_BUILDS = {
    "1507": 10240,
    "1511": 10586,
    "1607": 14393,
    "1703": 15063,
    "1709": 16299,
    "1803": 17134,
    "1809": 17763,
    "1903": 18362,
    "1909": 18363,
    "2004": 19041,
    "20H2": 19042,
    "21H1": 19043,
    "21H2": 19044,
    "22H2": 19045,
}
B1703, B1709 = WIN10_BUILDS["1703"], WIN10_BUILDS["1709"]
#: Windows Server releases this table accepts for "2012 R2 and later"
SERVER_ORDER = ("2008", "2008R2", "2012", "2012R2", "2016", "2019", "2022", "2025")

#: the pages, as cited in every row
ISOLATE_API = "defender-endpoint/api/isolate-machine.md"
UNISOLATE_API = "defender-endpoint/api/unisolate-machine.md"
RESPOND = "defender-endpoint/respond-machine-alerts.md"
EXCLUSIONS = "defender-endpoint/network-isolation-exclusions.md"
SCAN_API = "defender-endpoint/api/run-av-scan.md"
RESTRICT_API = "defender-endpoint/api/restrict-code-execution.md"
COLLECT_API = "defender-endpoint/api/collect-investigation-package.md"
QUARANTINE_API = "defender-endpoint/api/stop-and-quarantine-file.md"
TAGS_API = "defender-endpoint/api/add-or-remove-machine-tags.md"

#: the macOS/Linux client floor the response-actions page names; the machine entity does not expose the
#: client version, so the card carries it as a caveat and the simulator refuses an older client
MAC_CLIENT_FLOOR = "101.98.84"


@dataclass(frozen=True, slots=True)
class Device:
    """What the table reads from a machine entity (or a simulator row)."""

    os_platform: str | None
    version: str | None = None
    os_build: int | None = None
    onboarded: bool = True


@dataclass(frozen=True, slots=True)
class Rule:
    action: str  # the MachineAction type ("Isolate", "RunAntiVirusScan", …) or "Tag"
    scope: str | None  # Isolate: "Full" | "Selective" | "UnManagedDevice"; None: any
    platform: Platform
    condition: str  # human text: "1709 or later", "any"
    support: Support
    sources: tuple[str, ...]
    #: shown to the approver when the device is left out (UNSUPPORTED / UNCLEAR) or as a caveat (SUPPORTED)
    note: str = ""
    #: what MDE answers when it refuses (common-errors.md); the simulator sends it
    error_code: str = "OsPlatformNotSupported"


@dataclass(frozen=True, slots=True)
class Verdict:
    support: Support
    reason: str | None  # why the device is left out; None when supported
    caveat: str | None = None  # a supported device the approver should know something about
    rule: Rule | None = None


def platform_of(device: Device) -> Platform:
    name = (device.os_platform or "").replace(" ", "").lower()
    if name in ("ios", "android"):
        return Platform.MOBILE
    if name == "linux" or name in ("ubuntu", "redhatenterpriselinux", "centos", "debian", "suse"):
        return Platform.LINUX
    if name in ("macos", "mac", "osx"):
        return Platform.MACOS
    if name == "windows11":
        return Platform.WINDOWS_11
    if name == "windows10":
        return Platform.WINDOWS_10
    if name.startswith("windowsserver"):
        return Platform.WINDOWS_SERVER if _server_at_least(name, "2012R2") else Platform.WINDOWS_OLD
    if name.startswith("windows"):
        return Platform.WINDOWS_OLD
    return Platform.UNKNOWN


def _server_at_least(name: str, floor: str) -> bool:
    order = [r.lower() for r in SERVER_ORDER]
    release = name.removeprefix("windowsserver")
    if release not in order:
        return True  # a release newer than this table (e.g. a future "WindowsServer2028")
    return order.index(release) >= order.index(floor.lower())


_YEAR_RELEASE = re.compile(r"^(\d{2}H\d|\d{4})$", re.IGNORECASE)


def windows10_build(device: Device) -> int | None:
    """The lowest build the entity claims (``osBuild`` and ``version`` can disagree: trust the older)."""
    known = []
    if device.os_build:
        known.append(device.os_build)
    version = (device.version or "").strip().upper()
    if _YEAR_RELEASE.match(version) and version in WIN10_BUILDS:
        known.append(WIN10_BUILDS[version])
    return min(known) if known else None


# -- the table ------------------------------------------------------------------------------------------
W10, W11, SRV, OLD = Platform.WINDOWS_10, Platform.WINDOWS_11, Platform.WINDOWS_SERVER, Platform.WINDOWS_OLD
LNX, MAC, MOB = Platform.LINUX, Platform.MACOS, Platform.MOBILE
OK, NO, UNCLEAR = Support.SUPPORTED, Support.UNSUPPORTED, Support.UNCLEAR
MAC_CAVEAT = f"macOS: MDE needs Defender client {MAC_CLIENT_FLOOR}+ (the API does not show the client version)"

#: every row; for one (action, scope, platform) the first row whose condition holds decides
RULES: tuple[Rule, ...] = (
    # isolate, Full
    Rule("Isolate", "Full", W11, "any", OK, (ISOLATE_API, RESPOND)),
    Rule("Isolate", "Full", W10, "1703 or later", OK, (ISOLATE_API, RESPOND)),
    Rule(
        "Isolate", "Full", W10, "before 1703", NO, (ISOLATE_API, RESPOND),
        "Windows 10 before 1703 cannot be isolated",
    ),
    Rule(
        "Isolate", "Full", SRV, "2012 R2 or later", OK, (RESPOND,),
        "listed on respond-machine-alerts.md (2025-12-31), not on isolate-machine.md",
    ),
    Rule("Isolate", "Full", LNX, "any supported", OK, (ISOLATE_API, RESPOND), "Linux: needs iptables/ip6tables"),
    Rule("Isolate", "Full", MAC, "client 101.98.84+", OK, (RESPOND,), MAC_CAVEAT, "ClientVersionNotSupported"),
    # isolate, Selective
    Rule("Isolate", "Selective", W11, "any", OK, (ISOLATE_API, RESPOND, EXCLUSIONS)),
    Rule("Isolate", "Selective", W10, "1709 or later", OK, (ISOLATE_API, RESPOND, EXCLUSIONS)),
    Rule(
        "Isolate", "Selective", W10, "1703 to 1709", UNCLEAR, (ISOLATE_API, RESPOND, EXCLUSIONS),
        "selective isolation on Windows 10 1703: the API page requires 1709, the response-actions page says "
        "1703; left out to be safe, use --type full",
    ),
    Rule(
        "Isolate", "Selective", W10, "before 1703", NO, (ISOLATE_API, RESPOND, EXCLUSIONS),
        "selective isolation needs Windows 10 1709 or later; use --type full on 1703+, nothing on older builds",
    ),
    Rule(
        "Isolate", "Selective", SRV, "2012 R2 or later", OK, (RESPOND, EXCLUSIONS),
        "listed on respond-machine-alerts.md and network-isolation-exclusions.md, not on isolate-machine.md",
    ),
    Rule(
        "Isolate", "Selective", LNX, "none", NO, (ISOLATE_API, RESPOND),
        "selective isolation is not available on Linux (no page lists it); use --type full",
    ),
    Rule(
        "Isolate", "Selective", MAC, "client 101.98.84+", OK, (RESPOND, EXCLUSIONS), MAC_CAVEAT,
        "ClientVersionNotSupported",
    ),
    # release
    Rule("Unisolate", None, W11, "any", OK, (UNISOLATE_API, RESPOND)),
    Rule("Unisolate", None, W10, "1703 or later", OK, (UNISOLATE_API, RESPOND)),
    Rule(
        "Unisolate", None, W10, "before 1703", NO, (UNISOLATE_API,),
        "Windows 10 before 1703 cannot be isolated, so there is nothing to release",
    ),
    Rule("Unisolate", None, SRV, "2012 R2 or later", OK, (RESPOND,)),
    Rule("Unisolate", None, LNX, "any supported", OK, (UNISOLATE_API, RESPOND)),
    Rule("Unisolate", None, MAC, "client 101.98.84+", OK, (RESPOND,), MAC_CAVEAT, "ClientVersionNotSupported"),
    # antivirus scan
    Rule("RunAntiVirusScan", None, W11, "any", OK, (SCAN_API,)),
    Rule("RunAntiVirusScan", None, W10, "1709 or later", OK, (SCAN_API,)),
    Rule(
        "RunAntiVirusScan", None, W10, "before 1709", NO, (SCAN_API,),
        "the scan API needs Windows 10 1709 or later",
    ),
    Rule(
        "RunAntiVirusScan", None, SRV, "none listed", UNCLEAR, (SCAN_API, RESPOND),
        "no page lists Windows Server for the scan API (run-av-scan.md: Windows 10 1709+, Windows 11); "
        "left out to be safe",
    ),
    Rule("RunAntiVirusScan", None, LNX, "client 101.98.84+", OK, (RESPOND,), "Linux: MDE needs Defender client "
         f"{MAC_CLIENT_FLOOR}+ (the API does not show the client version)", "ClientVersionNotSupported"),
    Rule("RunAntiVirusScan", None, MAC, "client 101.98.84+", OK, (RESPOND,), MAC_CAVEAT, "ClientVersionNotSupported"),
    # restrict / unrestrict app execution
    *(
        rule
        for action in ("RestrictCodeExecution", "UnrestrictCodeExecution")
        for rule in (
            Rule(action, None, W11, "any", OK, (RESTRICT_API, RESPOND)),
            Rule(action, None, W10, "1709 or later", OK, (RESTRICT_API, RESPOND)),
            Rule(
                action, None, W10, "before 1709", NO, (RESTRICT_API, RESPOND),
                "app restriction needs Windows 10 1709 or later",
            ),
            Rule(
                action, None, SRV, "2019 or later", OK, (RESPOND,),
                "listed on respond-machine-alerts.md (Windows Server 2019+), not on the API page",
            ),
            Rule(
                action, None, SRV, "before 2019", NO, (RESPOND,),
                "app restriction needs Windows Server 2019 or later",
            ),
            Rule(action, None, LNX, "none", NO, (RESTRICT_API, RESPOND), "app restriction needs Windows"),
            Rule(action, None, MAC, "none", NO, (RESTRICT_API, RESPOND), "app restriction needs Windows"),
        )
    ),
    # investigation package
    *(
        Rule("CollectInvestigationPackage", None, p, "any", OK, (COLLECT_API, RESPOND))
        for p in (W11, W10, SRV, LNX, MAC)
    ),
    # stop and quarantine a file (Windows 10 1703+ and Windows 11 only)
    Rule("StopAndQuarantineFile", None, W11, "any", OK, (QUARANTINE_API,)),
    Rule("StopAndQuarantineFile", None, W10, "1703 or later", OK, (QUARANTINE_API,)),
    Rule(
        "StopAndQuarantineFile", None, W10, "before 1703", NO, (QUARANTINE_API,),
        "stop and quarantine needs Windows 10 (1703 or later) or Windows 11",
    ),
    *(
        Rule(
            "StopAndQuarantineFile", None, p, "none", NO, (QUARANTINE_API,),
            "stop and quarantine needs Windows 10 (1703 or later) or Windows 11",
        )
        for p in (SRV, OLD, LNX, MAC, MOB)
    ),
    # tags: metadata in MDE, nothing runs on the device
    *(Rule("Tag", None, p, "any", OK, (TAGS_API,)) for p in (W11, W10, SRV, OLD, LNX, MAC, MOB)),
)


def covers(action: str) -> bool:
    """Whether the table has rows for ``action`` (actions it does not know are not judged by it)."""
    return any(r.action == action for r in RULES)


def _rows(action: str, scope: str | None, platform: Platform) -> list[Rule]:
    return [r for r in RULES if r.action == action and r.scope in (scope, None) and r.platform is platform]


def check(action: str, device: Device, scope: str | None = None) -> Verdict:
    """May ``action`` (a MachineAction type, or "Tag") with ``scope`` run on ``device``?"""
    if action == "Isolate" and scope == "UnManagedDevice":
        return _unmanaged(device)
    if not device.onboarded:
        return Verdict(NO, "not onboarded to MDE")
    platform = platform_of(device)
    rows = _rows(action, scope if action == "Isolate" else None, platform)
    label = device.os_platform or "an unknown platform"
    if not rows:
        if platform is Platform.UNKNOWN:
            return Verdict(UNCLEAR, f"no Microsoft page lists this action for {label}; left out to be safe")
        return Verdict(NO, f"{label} devices do not support this action")
    rule = next((r for r in rows if _holds(r.condition, device)), None)
    if rule is None:  # Windows 10 without a build or version: the floor cannot be checked
        return Verdict(UNCLEAR, "Windows 10 build unknown (no osBuild or version); left out to be safe")
    if rule.support is OK:
        caveat = rule.note if rule.note.startswith(("macOS", "Linux")) else None
        return Verdict(OK, None, caveat, rule)
    return Verdict(rule.support, f"{rule.note} (this device runs {label})", rule=rule)


def _holds(condition: str, device: Device) -> bool:
    """A row's condition on the Windows 10 build or the Windows Server release; others always hold."""
    build = windows10_build(device)
    server = (device.os_platform or "").replace(" ", "").lower()
    ranges = {
        "1703 or later": lambda: build is not None and build >= B1703,
        "1709 or later": lambda: build is not None and build >= B1709,
        "1703 to 1709": lambda: build is not None and B1703 <= build < B1709,
        "before 1703": lambda: build is not None and build < B1703,
        "before 1709": lambda: build is not None and build < B1709,
        "2019 or later": lambda: _server_at_least(server, "2019"),
        "before 2019": lambda: not _server_at_least(server, "2019"),
    }
    test = ranges.get(condition)
    return True if test is None else test()


def _unmanaged(device: Device) -> Verdict:
    """Contain (``UnManagedDevice``): enforced by the onboarded devices, so the target's OS does not matter."""
    if device.onboarded:
        return Verdict(
            UNCLEAR,
            "contain (--type unmanaged) is for devices not onboarded to MDE (isolate-machine.md); this one is "
            "onboarded: use --type full or selective",
        )
    return Verdict(OK, None)


# -- inactive devices -------------------------------------------------------------------------------------
#: respond-machine-alerts.md: "If a device is inactive or offline when an isolation action is submitted,
#: Microsoft Defender for Endpoint retries enforcing the isolation for up to three days."
OFFLINE_RETRY_DAYS = 3
#: actions whose wait for an offline device is documented and useful (ransomware: isolate on reconnect);
#: the rest (scan, collect, restrict, release) would run days late on stale intent, so inactive devices
#: are left out of them
WAITS_FOR_RECONNECT = frozenset({"Isolate"})


def waits_for_reconnect(action: str, scope: str | None) -> bool:
    return action in WAITS_FOR_RECONNECT and scope != "UnManagedDevice"


def reconnect_line(count: int) -> str:
    """The card's line for inactive devices a request includes."""
    return (
        f"{count} inactive device(s) included: MDE applies the isolation when each reconnects, "
        f"or times it out after {OFFLINE_RETRY_DAYS} days (respond-machine-alerts.md); --active-only leaves them out"
    )


def markdown_table() -> str:
    """The table as docs/device-actions.md shows it (a test keeps the page equal to this)."""
    lines = [
        "| action | type | platform | condition | verdict | why / caveat | source |",
        "|---|---|---|---|---|---|---|",
    ]
    for rule in RULES:
        sources = ", ".join(s.removeprefix("defender-endpoint/") for s in rule.sources)
        lines.append(
            f"| {rule.action} | {rule.scope or 'any'} | {rule.platform.value} | {rule.condition} | "
            f"{rule.support.value} | {rule.note or ''} | {sources} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    print(markdown_table())
