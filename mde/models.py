"""Typed records for the MDE resources the bot uses.

Documented field names are mapped once, here, at the boundary (``from_api``/``to_api``). The rest of
the code base only sees snake_case attributes.
"""

from __future__ import annotations

import enum
import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any


class ActionType(enum.StrEnum):
    ISOLATE = "Isolate"
    UNISOLATE = "Unisolate"
    RUN_AV_SCAN = "RunAntiVirusScan"
    RESTRICT_CODE_EXECUTION = "RestrictCodeExecution"
    UNRESTRICT_CODE_EXECUTION = "UnrestrictCodeExecution"
    COLLECT_INVESTIGATION_PACKAGE = "CollectInvestigationPackage"
    OFFBOARD = "Offboard"
    STOP_AND_QUARANTINE_FILE = "StopAndQuarantineFile"
    LIVE_RESPONSE = "LiveResponse"


class ActionStatus(enum.StrEnum):
    PENDING = "Pending"
    IN_PROGRESS = "InProgress"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    TIMEOUT = "TimeOut"
    CANCELLED = "Cancelled"

    @property
    def is_final(self) -> bool:
        return self in _FINAL


_FINAL = {ActionStatus.SUCCEEDED, ActionStatus.FAILED, ActionStatus.TIMEOUT, ActionStatus.CANCELLED}


class IsolationType(enum.StrEnum):
    FULL = "Full"
    SELECTIVE = "Selective"
    UNMANAGED_DEVICE = "UnManagedDevice"


class ScanType(enum.StrEnum):
    QUICK = "Quick"
    FULL = "Full"


class TagAction(enum.StrEnum):
    ADD = "Add"
    REMOVE = "Remove"


class HealthStatus(enum.StrEnum):
    ACTIVE = "Active"
    INACTIVE = "Inactive"
    IMPAIRED_COMMUNICATION = "ImpairedCommunication"
    NO_SENSOR_DATA = "NoSensorData"
    NO_SENSOR_DATA_IMPAIRED_COMMUNICATION = "NoSensorDataImpairedCommunication"
    UNKNOWN = "Unknown"


def parse_datetime(value: Any) -> datetime | None:
    """Parse MDE's ISO 8601 timestamps (7 fractional digits, trailing ``Z``).

    MDE's own shape (``2026-01-02T03:04:05.1234567Z``) takes one ``fromisoformat`` call: a 100,000-device
    listing parses 200,000 of them before the card. Anything else goes the general way.
    """
    if type(value) is str and len(value) == 28 and value[27] == "Z" and value[19] == "." and value[26] in _DIGITS:
        try:
            return _fromisoformat(value[:26] + "+00:00")  # the 7th digit is below datetime's microsecond
        except ValueError:
            pass
    return _parse_datetime_general(value)


_DIGITS = "0123456789"
_fromisoformat = datetime.fromisoformat


def _parse_datetime_general(value: Any) -> datetime | None:
    if not value:
        return None
    text = str(value).replace("Z", "+00:00")
    if "." in text:
        head, _, rest = text.partition(".")
        digits = rest[: len(rest) - len(rest.lstrip("0123456789"))]
        tz = rest[len(digits) :]
        text = f"{head}.{digits[:6].ljust(6, '0')}{tz}"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def format_datetime(value: datetime | None) -> str | None:
    if value is None:
        return None
    return value.strftime("%Y-%m-%dT%H:%M:%S.%f") + "0Z"


def _shared(value: Any) -> Any:
    """One shared copy of a text many devices repeat (platform, version, status, group, risk, tag).

    The JSON decoder makes a new string for every value of every device; at 100,000 devices the repeats
    cost tens of megabytes. ``sys.intern`` keeps one (and lets it go when no device holds it any more).
    """
    return _intern(value) if type(value) is str else value


_intern = sys.intern


@dataclass(frozen=True, slots=True)
class Machine:
    """The machine entity's fields the bot reads (https://learn.microsoft.com/defender-endpoint/api/machine):
    ``riskScore`` is None, Informational, Low, Medium or High, ``exposureLevel`` None, Low, Medium or High.

    No copy of the JSON is kept: nothing read it, and at 100,000 devices it was most of the bot's memory.
    """

    id: str
    computer_dns_name: str
    os_platform: str | None = None
    version: str | None = None
    os_build: int | None = None
    health_status: str | None = None
    onboarding_status: str | None = None
    rbac_group_id: int | None = None
    rbac_group_name: str | None = None
    machine_tags: tuple[str, ...] = ()
    last_seen: datetime | None = None
    first_seen: datetime | None = None
    last_ip_address: str | None = None
    last_external_ip_address: str | None = None
    risk_score: str | None = None
    exposure_level: str | None = None
    device_value: str | None = None
    aad_device_id: str | None = None

    @classmethod
    def from_api(cls, data: dict[str, Any]) -> Machine:
        get = data.get
        group = get("rbacGroupId")
        if type(group) is not int:  # documented as an int; anything else is read as before
            try:
                group = int(group) if group is not None and str(group) != "" else None
            except (TypeError, ValueError):
                group = None
        build = get("osBuild")
        if type(build) is not int or build < 0:
            build = int(build) if isinstance(build, int | str) and str(build).isdigit() else None
        tags = get("machineTags")
        return cls(
            id=str(data["id"]),
            computer_dns_name=str(get("computerDnsName") or ""),
            os_platform=_shared(get("osPlatform")),
            version=_shared(get("version")),
            os_build=build,
            health_status=_shared(get("healthStatus")),
            onboarding_status=_shared(get("onboardingStatus") or get("onboardingstatus")),
            rbac_group_id=group,
            rbac_group_name=_shared(get("rbacGroupName")),
            machine_tags=tuple(map(_shared, tags)) if tags else (),
            last_seen=parse_datetime(get("lastSeen")),
            first_seen=parse_datetime(get("firstSeen")),
            last_ip_address=get("lastIpAddress"),
            last_external_ip_address=get("lastExternalIpAddress"),
            risk_score=_shared(get("riskScore")),
            exposure_level=_shared(get("exposureLevel")),
            device_value=_shared(get("deviceValue")),
            aad_device_id=get("aadDeviceId"),
        )


@dataclass(frozen=True, slots=True)
class MachineAction:
    id: str
    type: str
    status: ActionStatus
    machine_id: str
    computer_dns_name: str | None = None
    scope: str | None = None
    requestor: str | None = None
    requestor_comment: str | None = None
    external_id: str | None = None
    creation_date_time_utc: datetime | None = None
    last_update_date_time_utc: datetime | None = None
    cancellation_requestor: str | None = None
    cancellation_comment: str | None = None
    title: str | None = None
    #: live response: each command's ``commandStatus`` (Created | Completed | Failed), by index
    command_statuses: tuple[str, ...] = ()
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def from_api(cls, data: dict[str, Any]) -> MachineAction:
        # The docs use both spellings: lastUpdateDateTimeUtc (resource page) and lastUpdateTimeUtc (list).
        updated = data.get("lastUpdateDateTimeUtc") or data.get("lastUpdateTimeUtc")
        return cls(
            id=str(data["id"]),
            type=str(data.get("type") or ""),
            status=ActionStatus(data.get("status") or "Pending"),
            machine_id=str(data.get("machineId") or ""),
            computer_dns_name=data.get("computerDnsName"),
            scope=data.get("scope"),
            requestor=data.get("requestor"),
            requestor_comment=data.get("requestorComment"),
            external_id=data.get("externalID") or data.get("externalId"),
            creation_date_time_utc=parse_datetime(data.get("creationDateTimeUtc")),
            last_update_date_time_utc=parse_datetime(updated),
            cancellation_requestor=data.get("cancellationRequestor"),
            cancellation_comment=data.get("cancellationComment"),
            title=data.get("title"),
            command_statuses=tuple(
                str(c.get("commandStatus") or "") for c in data.get("commands") or () if isinstance(c, dict)
            ),
            raw=dict(data),
        )


class AlertStatus(enum.StrEnum):
    """An alert's ``status``: https://learn.microsoft.com/defender-endpoint/api/alerts (alerts.md)."""

    UNKNOWN = "Unknown"
    NEW = "New"
    IN_PROGRESS = "InProgress"
    RESOLVED = "Resolved"


@dataclass(frozen=True, slots=True)
class Alert:
    """An MDE alert (learn.microsoft.com/defender-endpoint/api/alerts); ``machine_id`` is the device it was
    raised on, the same id the machine entity and the action calls use."""

    id: str
    machine_id: str | None
    status: str
    severity: str | None = None
    title: str | None = None
    incident_id: int | None = None
    computer_dns_name: str | None = None
    alert_creation_time: datetime | None = None
    last_update_time: datetime | None = None

    @property
    def is_active(self) -> bool:
        """Not resolved: New, InProgress, or a status this client does not know yet."""
        return self.status != AlertStatus.RESOLVED

    @classmethod
    def from_api(cls, data: dict[str, Any]) -> Alert:
        incident = data.get("incidentId")
        return cls(
            id=str(data["id"]),
            machine_id=data.get("machineId"),
            status=str(data.get("status") or AlertStatus.UNKNOWN),
            severity=data.get("severity"),
            title=data.get("title"),
            incident_id=int(incident) if isinstance(incident, int | str) and str(incident).isdigit() else None,
            computer_dns_name=data.get("computerDnsName"),
            alert_creation_time=parse_datetime(data.get("alertCreationTime")),
            last_update_time=parse_datetime(data.get("lastUpdateTime")),
        )


@dataclass(frozen=True, slots=True)
class HuntingColumn:
    name: str
    type: str


@dataclass(frozen=True, slots=True)
class HuntingResult:
    """Advanced hunting rows, from either API.

    MDE's legacy endpoint answers ``{"Schema":[{"Name","Type"}],"Results":[…]}`` (run-advanced-query-api.md);
    Graph's ``huntingQueryResults`` is ``{"schema":[{"name","type"}],"results":[…]}`` (security-huntingqueryresults.md,
    security-singlepropertyschema.md), though one example on the runHuntingQuery page still shows ``Name``/``Type``:
    both spellings are read. Result rows keep the query's own column names.
    """

    schema: list[HuntingColumn]
    results: list[dict[str, Any]]

    @classmethod
    def from_api(cls, data: dict[str, Any]) -> HuntingResult:
        schema = data.get("schema") if "schema" in data else data.get("Schema")
        rows = data.get("results") if "results" in data else data.get("Results")
        columns = [
            HuntingColumn(str(c.get("name", c.get("Name", ""))), str(c.get("type", c.get("Type", ""))))
            for c in schema or []
            if isinstance(c, dict)
        ]
        return cls(schema=columns, results=[r for r in rows or [] if isinstance(r, dict)])

    def column(self, name: str) -> str | None:
        """The query's spelling of column ``name`` (compared case-insensitively), or None."""
        wanted = name.lower()
        return next((c.name for c in self.schema if c.name.lower() == wanted), None)


class IndicatorType(enum.StrEnum):
    """post-ti-indicator.md ``indicatorType`` values."""

    FILE_SHA1 = "FileSha1"
    FILE_SHA256 = "FileSha256"
    FILE_MD5 = "FileMd5"
    CERTIFICATE_THUMBPRINT = "CertificateThumbprint"
    IP_ADDRESS = "IpAddress"
    DOMAIN_NAME = "DomainName"
    URL = "Url"


class IndicatorAction(enum.StrEnum):
    """ti-indicator.md: the action types the API supports (Alert and AlertAndBlock are retired since 2022)."""

    ALLOWED = "Allowed"
    AUDIT = "Audit"
    BLOCK = "Block"
    BLOCK_AND_REMEDIATE = "BlockAndRemediate"
    WARN = "Warn"


class IndicatorSeverity(enum.StrEnum):
    INFORMATIONAL = "Informational"
    LOW = "Low"
    MEDIUM = "Medium"
    HIGH = "High"


@dataclass(frozen=True, slots=True)
class Indicator:
    """ti-indicator.md's Indicator entity."""

    id: str
    indicator_value: str
    indicator_type: str
    action: str
    title: str | None = None
    description: str | None = None
    application: str | None = None
    severity: str | None = None
    expiration_time: datetime | None = None
    creation_time: datetime | None = None
    created_by: str | None = None
    generate_alert: bool | None = None
    rbac_group_names: tuple[str, ...] = ()
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def from_api(cls, data: dict[str, Any]) -> Indicator:
        alert = data.get("generateAlert")
        return cls(
            id=str(data["id"]),
            indicator_value=str(data.get("indicatorValue") or ""),
            indicator_type=str(data.get("indicatorType") or ""),
            action=str(data.get("action") or ""),
            title=data.get("title"),
            description=data.get("description"),
            application=data.get("application"),
            severity=data.get("severity"),
            expiration_time=parse_datetime(data.get("expirationTime")),
            creation_time=parse_datetime(data.get("creationTimeDateTimeUtc")),
            created_by=data.get("createdBy"),
            generate_alert=str(alert).lower() == "true" if alert is not None else None,
            rbac_group_names=tuple(data.get("rbacGroupNames") or ()),
            raw=dict(data),
        )


@dataclass(frozen=True, slots=True)
class FileStats:
    """get-file-statistics.md: how widely a file was seen in the organization (lookBackHours, max 30 days)."""

    sha1: str | None
    org_prevalence: int
    org_first_seen: datetime | None = None
    org_last_seen: datetime | None = None
    top_file_names: tuple[str, ...] = ()

    @classmethod
    def from_api(cls, data: dict[str, Any]) -> FileStats:
        prevalence = data.get("organizationPrevalence") or data.get("orgPrevalence") or 0
        return cls(
            sha1=data.get("sha1"),
            org_prevalence=int(prevalence) if str(prevalence).isdigit() else 0,
            org_first_seen=parse_datetime(data.get("orgFirstSeen")),
            org_last_seen=parse_datetime(data.get("orgLastSeen")),
            top_file_names=tuple(data.get("topFileNames") or ()),
        )


@dataclass(frozen=True, slots=True)
class LogonUser:
    """get-machine-log-on-users.md: a user seen logging on to one device, with first and last time."""

    id: str
    account_name: str
    account_domain: str | None = None
    first_seen: datetime | None = None
    last_seen: datetime | None = None
    logon_types: str | None = None

    @classmethod
    def from_api(cls, data: dict[str, Any]) -> LogonUser:
        return cls(
            id=str(data.get("id") or ""),
            account_name=str(data.get("accountName") or ""),
            account_domain=data.get("accountDomain"),
            first_seen=parse_datetime(data.get("firstSeen")),
            last_seen=parse_datetime(data.get("lastSeen")),
            logon_types=data.get("logonTypes"),
        )
