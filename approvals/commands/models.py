"""Typed command objects: what the parser produces and the request service consumes."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from approvals.errors import ParseError as ParseError  # the parser's error, one of approvals.errors
from approvals.verbs import Verb as Verb  # the command objects carry it; the table lives there

if TYPE_CHECKING:
    from approvals.commands.cadence import Cadence


class TargetKind(enum.StrEnum):
    DEVICE = "device"  # exact computerDnsName (FQDN or short name) or a 40-hex MDE id
    TAG = "tag"
    GROUP = "group"  # device group (rbacGroupName), resolved client-side
    IP = "ip"
    QUERY = "query"  # advanced hunting KQL returning a DeviceId or DeviceName column
    INCIDENT = "incident"
    USER = "user"  # the devices a user logged on to (MDE's users -> machines relation)
    FILE = "file"  # the devices MDE saw a file on, by SHA-1 (MDE's files -> machines relation)


@dataclass(frozen=True, slots=True)
class Target:
    kind: TargetKind
    value: str

    def __str__(self) -> str:
        quoted = f'"{self.value}"' if any(c.isspace() for c in self.value) else self.value
        return f"{self.kind.value}:{quoted}"


@dataclass(frozen=True, slots=True)
class ActionCommand:
    """isolate | unisolate | tag | untag | scan | restrict | unrestrict | collect | quarantine | collect-file."""

    verb: Verb
    targets: tuple[Target, ...]
    reason: str | None = None
    #: isolate only: "Full" | "Selective" | "UnManagedDevice" (mde.models.IsolationType values)
    isolation_type: str = "Full"
    #: scan only: "Quick" | "Full"
    scan_type: str = "Quick"
    #: tag / untag only: the tag value to add or remove
    tag_value: str | None = None
    #: quarantine only: the file's SHA-1 (StopAndQuarantineFile takes no other hash)
    sha1: str | None = None
    #: collect-file only: the file's full path on the device
    path: str | None = None
    dry_run: bool = False
    #: isolate only: leave inactive devices out instead of letting MDE apply the isolation on reconnect
    active_only: bool = False
    #: run this many devices first; the rest waits until they succeeded
    canary: int | None = None
    #: isolate only, time-boxed: propose the release this long after isolation, or at this instant (UTC)
    release_after: timedelta | None = None
    release_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class DevicesCommand:
    """Preview what a target expression resolves to, without acting."""

    targets: tuple[Target, ...]


@dataclass(frozen=True, slots=True)
class StatusCommand:
    request_id: int | None = None


@dataclass(frozen=True, slots=True)
class CancelCommand:
    request_id: int
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class HistoryCommand:
    limit: int = 10
    device: str | None = None


@dataclass(frozen=True, slots=True)
class HelpCommand:
    topic: str | None = None


@dataclass(frozen=True, slots=True)
class DecisionCommand:
    """approve / reject by text (console, and a fallback when buttons are not available)."""

    approve: bool
    request_id: int
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class ScheduleCreateCommand:
    """``schedule tag "TAG" query:"KQL" every CADENCE [--sync] --reason "…"``: needs approval."""

    tag_value: str
    query: str
    cadence: Cadence
    reason: str
    #: also remove the tag from devices that have it but the query no longer finds
    sync: bool = False


@dataclass(frozen=True, slots=True)
class ScheduleListCommand:
    pass


@dataclass(frozen=True, slots=True)
class ScheduleRemoveCommand:
    """Needs approval, like creating one."""

    schedule_id: int
    reason: str


@dataclass(frozen=True, slots=True)
class ScheduleRunCommand:
    """Run an active schedule now (an extra occurrence of what was approved)."""

    schedule_id: int
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class IndicatorCommand:
    """``block`` / ``unblock`` one indicator tenant-wide (or for some device groups): needs approval."""

    verb: Verb
    #: mde.models.IndicatorType value: FileSha256, FileSha1, FileMd5, IpAddress, Url, DomainName
    indicator_type: str
    value: str
    reason: str
    #: mde.models.IndicatorAction value: Block, Audit or Warn
    action: str = "Block"
    #: --for: how long the indicator lives; None: the policy's default
    expires_in: timedelta | None = None
    #: --groups: the device groups (rbacGroupNames) it applies to; empty: every device
    groups: tuple[str, ...] = ()
    dry_run: bool = False


@dataclass(frozen=True, slots=True)
class IndicatorListCommand:
    """``indicators``: what this bot created in MDE, soonest expiry first."""


@dataclass(frozen=True, slots=True)
class DoctorCommand:
    """Admins only: the deployment checks of ``mde-chatops doctor``."""


@dataclass(frozen=True, slots=True)
class IsolatedCommand:
    """``isolated [TARGETS] [--older-than 3d]``: the containment register, narrowed."""

    targets: tuple[Target, ...] = ()
    older_than: timedelta | None = None


@dataclass(frozen=True, slots=True)
class AdoptCommand:
    """``adopt device:NAME --reason "…"``: take a device isolated outside the bot into the register."""

    device: str
    reason: str


ScheduleCommand = ScheduleCreateCommand | ScheduleListCommand | ScheduleRemoveCommand | ScheduleRunCommand

Command = (
    ActionCommand
    | DevicesCommand
    | StatusCommand
    | CancelCommand
    | HistoryCommand
    | HelpCommand
    | DecisionCommand
    | ScheduleCreateCommand
    | ScheduleListCommand
    | ScheduleRemoveCommand
    | ScheduleRunCommand
    | DoctorCommand
    | IndicatorCommand
    | IndicatorListCommand
    | IsolatedCommand
    | AdoptCommand
)
