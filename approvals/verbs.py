"""Every verb, and the one table that says what each action verb does in MDE (house style 12).

``Verb`` is what the parser produces and what ``requests.verb`` stores (the enum values are the stored
text). ``ACTIONS`` has one row per verb that changes devices: the rate-limit family it spends, the MDE
endpoint (which names the application permission it needs), the ``MachineAction`` type MDE records, the
call that submits it, the parameters a request stores and the label every surface shows. Policy,
resolution, execution, labels and ``doctor`` all read this table, so adding a verb means one row here
(plus its grammar row in ``approvals/commands/spec.py``). ``EFFECTS`` says, for every verb that makes a
request, what its approval sets off: the job engine, the card and delivery ask it, never the verb's name.
"""

from __future__ import annotations

import enum
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from mde.client import ROLE_FOR_PATH
from mde.models import IsolationType, MachineAction, ScanType, TagAction

if TYPE_CHECKING:
    from mde.client import MdeClient


class Verb(enum.StrEnum):
    ISOLATE = "isolate"
    UNISOLATE = "unisolate"
    TAG = "tag"
    UNTAG = "untag"
    SCAN = "scan"
    RESTRICT = "restrict"
    UNRESTRICT = "unrestrict"
    COLLECT = "collect"
    DEVICES = "devices"
    STATUS = "status"
    CANCEL = "cancel"
    HISTORY = "history"
    HELP = "help"
    APPROVE = "approve"
    REJECT = "reject"
    SCHEDULE = "schedule"
    DOCTOR = "doctor"
    BLOCK = "block"
    UNBLOCK = "unblock"
    INDICATORS = "indicators"
    QUARANTINE = "quarantine"
    COLLECT_FILE = "collect-file"
    ISOLATED = "isolated"
    ADOPT = "adopt"

    @property
    def is_action(self) -> bool:
        """Changes devices in MDE: needs a request, approvals and a row in ``ACTIONS``."""
        return self in ACTIONS

    @property
    def effect(self) -> Effect | None:
        """What approving a request of this verb sets off; None for a verb that makes no request."""
        return EFFECTS.get(self)

    @property
    def runs_jobs(self) -> bool:
        """The job engine carries its requests to the end: jobs at approval, finalization, the summary."""
        return self.effect is Effect.ACTS_NOW


class Effect(enum.StrEnum):
    """What approving a request sets off, which decides who carries the request to its end (house style 4).

    ``ACTS_NOW``: approval stores jobs (one per device, per chunk of tags, or one tenant-wide call); the job
    engine submits them, closes the request once every job settled (succeeded, partially failed, failed)
    and emits the summary with the per-device results.

    ``ACTIVATES_SCHEDULE``: pending → approved → active. Approval makes a schedule active (or removes it)
    in one transaction (``approvals/schedules/activation.py``): no job, no MDE call, no device progress.
    The request closes as succeeded (failed if the schedule was gone) with the schedule's own line as its
    summary; each run then reports in the request's thread. The job engine never looks at it.
    """

    ACTS_NOW = "acts_now"
    ACTIVATES_SCHEDULE = "activates_schedule"


class ScheduleOp(enum.StrEnum):
    """What a ``schedule`` request asks for (stored as ``requests.params["op"]``)."""

    CREATE = "create"
    REMOVE = "remove"


class Family(enum.StrEnum):
    """The MDE rate-limit family a submission spends (``mde.ratelimit.FAMILIES``)."""

    MACHINE_ACTIONS = "machine_actions"
    MACHINE_TAGS = "machine_tags"
    INDICATORS = "indicators"
    LIVE_RESPONSE = "live_response"


#: one device's MDE call: (client, machine id, comment, the request's params with defaults filled in)
Submit = Callable[["MdeClient", str, str, Mapping[str, Any]], Awaitable[MachineAction]]
#: after a device's action succeeded: the line its request's thread gets (collect-file: the download link)
Result = Callable[["MdeClient", MachineAction], Awaitable[str]]


@dataclass(frozen=True, slots=True)
class Param:
    """One parameter a verb stores in ``requests.params``; ``key`` is also the ``ActionCommand`` field."""

    key: str
    default: str
    #: how the label shows it, e.g. ``"{label} ({value})"`` -> "Isolate (Full)"
    shown: str = "{label} ({value})"


@dataclass(frozen=True, slots=True)
class ActionSpec:
    verb: Verb
    label: str
    family: Family
    #: the MDE endpoint the call posts to (``mde.client.ROLE_FOR_PATH`` names its permission)
    path: str
    #: per-device verbs: the ``MachineAction`` type MDE records (found again by it after a crash) and the call
    action_type: str | None = None
    submit: Submit | None = None
    #: bulk tag verbs: one call per chunk of at most 500 devices, no MachineAction
    tag_action: TagAction | None = None
    params: tuple[Param, ...] = ()
    #: the device must be online to act (tags need not); isolation waits for it (mde.capabilities), the rest exclude it
    needs_active: bool = True
    #: no device snapshot: one job makes the tenant-wide call (indicators: approvals/execution/indicators.py)
    tenant_wide: bool = False
    #: what a succeeded action hands back (collect-file: the collected file's download link)
    result: Result | None = None

    @property
    def role(self) -> str:
        """The application permission the call needs."""
        return ROLE_FOR_PATH[self.path]

    def params_of(self, command: object) -> dict[str, Any]:
        """The parameters a request stores, read from the command object's fields of the same name."""
        return {p.key: getattr(command, p.key) for p in self.params}

    def with_defaults(self, params: Mapping[str, Any]) -> dict[str, Any]:
        return {**{p.key: p.default for p in self.params}, **params}

    def describe(self, params: Mapping[str, Any]) -> str:
        """The label every surface shows: "Isolate (Full)", "Add tag 'Compromised'"."""
        text = self.label
        for param in self.params:
            text = param.shown.format(label=text, value=params.get(param.key) or param.default)
        return text


def _isolate(client: MdeClient, machine_id: str, comment: str, params: Mapping[str, Any]) -> Awaitable[MachineAction]:
    return client.isolate(machine_id, comment=comment, isolation_type=IsolationType(params["isolation_type"]))


def _scan(client: MdeClient, machine_id: str, comment: str, params: Mapping[str, Any]) -> Awaitable[MachineAction]:
    return client.run_antivirus_scan(machine_id, comment=comment, scan_type=ScanType(params["scan_type"]))


def _quarantine(
    client: MdeClient, machine_id: str, comment: str, params: Mapping[str, Any]
) -> Awaitable[MachineAction]:
    return client.stop_and_quarantine_file(machine_id, sha1=params["sha1"], comment=comment)


def _get_file(client: MdeClient, machine_id: str, comment: str, params: Mapping[str, Any]) -> Awaitable[MachineAction]:
    return client.get_file(machine_id, path=params["path"], comment=comment)


async def _download_link(client: MdeClient, action: MachineAction) -> str:
    """get-live-response-result.md: the GetFile result (command 0) as a link valid for 30 minutes."""
    link = await client.get_live_response_result_download_link(action.id, 0)
    until = datetime.now(UTC) + LINK_VALID
    return (
        f"File collected from {action.computer_dns_name or action.machine_id}. Download it within 30 minutes "
        f"(until {until:%H:%M} UTC): {link} — afterwards `status` on this request gives a fresh link."
    )


_TAG = Param("tag_value", "", "{label} '{value}'")
#: get-live-response-result.md: a download link is valid for 30 minutes
LINK_VALID = timedelta(minutes=30)
_INDICATOR = (Param("indicator_type", "", "{label} {value}"), Param("value", "", "{label} {value}"))

ACTIONS: dict[Verb, ActionSpec] = {
    spec.verb: spec
    for spec in (
        ActionSpec(
            Verb.ISOLATE,
            "Isolate",
            Family.MACHINE_ACTIONS,
            "isolate",
            action_type="Isolate",
            submit=_isolate,
            params=(Param("isolation_type", IsolationType.FULL.value),),
        ),
        ActionSpec(
            Verb.UNISOLATE,
            "Release from isolation",
            Family.MACHINE_ACTIONS,
            "unisolate",
            action_type="Unisolate",
            submit=lambda client, machine_id, comment, _: client.unisolate(machine_id, comment=comment),
        ),
        ActionSpec(
            Verb.TAG,
            "Add tag",
            Family.MACHINE_TAGS,
            "tags",
            tag_action=TagAction.ADD,
            params=(_TAG,),
            needs_active=False,
        ),
        ActionSpec(
            Verb.UNTAG,
            "Remove tag",
            Family.MACHINE_TAGS,
            "tags",
            tag_action=TagAction.REMOVE,
            params=(_TAG,),
            needs_active=False,
        ),
        ActionSpec(
            Verb.SCAN,
            "Antivirus scan",
            Family.MACHINE_ACTIONS,
            "runAntiVirusScan",
            action_type="RunAntiVirusScan",
            submit=_scan,
            params=(Param("scan_type", ScanType.QUICK.value),),
        ),
        ActionSpec(
            Verb.RESTRICT,
            "Restrict app execution",
            Family.MACHINE_ACTIONS,
            "restrictCodeExecution",
            action_type="RestrictCodeExecution",
            submit=lambda client, machine_id, comment, _: client.restrict_code_execution(machine_id, comment=comment),
        ),
        ActionSpec(
            Verb.UNRESTRICT,
            "Remove app restriction",
            Family.MACHINE_ACTIONS,
            "unrestrictCodeExecution",
            action_type="UnrestrictCodeExecution",
            submit=lambda client, machine_id, comment, _: client.unrestrict_code_execution(machine_id, comment=comment),
        ),
        ActionSpec(
            Verb.COLLECT,
            "Collect investigation package",
            Family.MACHINE_ACTIONS,
            "collectInvestigationPackage",
            action_type="CollectInvestigationPackage",
            submit=lambda client, machine_id, comment, _: client.collect_investigation_package(
                machine_id, comment=comment
            ),
        ),
        ActionSpec(
            Verb.QUARANTINE,
            "Stop and quarantine file",
            Family.MACHINE_ACTIONS,
            "StopAndQuarantineFile",
            action_type="StopAndQuarantineFile",
            submit=_quarantine,
            params=(Param("sha1", "", "{label} {value}"),),
        ),
        ActionSpec(
            Verb.COLLECT_FILE,
            "Collect file",
            Family.LIVE_RESPONSE,
            "runliveresponse",
            action_type="LiveResponse",
            submit=_get_file,
            params=(Param("path", "", "{label} {value}"),),
            result=_download_link,
        ),
        ActionSpec(
            Verb.BLOCK,
            "Indicator",
            Family.INDICATORS,
            "indicators",
            params=(*_INDICATOR, Param("action", "Block", "{label} → {value}")),
            needs_active=False,
            tenant_wide=True,
        ),
        ActionSpec(
            Verb.UNBLOCK,
            "Remove indicator",
            Family.INDICATORS,
            "indicators",
            params=_INDICATOR,
            needs_active=False,
            tenant_wide=True,
        ),
    )
}

#: every verb that makes a request, and what its approval sets off (``Verb.effect``)
EFFECTS: dict[Verb, Effect] = {**dict.fromkeys(ACTIONS, Effect.ACTS_NOW), Verb.SCHEDULE: Effect.ACTIVATES_SCHEDULE}
#: the verbs whose requests the job engine runs, finalizes and summarizes (its queries filter on them)
JOB_VERBS: tuple[Verb, ...] = tuple(verb for verb in EFFECTS if verb.runs_jobs)

#: every verb the policy governs (``actions:`` keys, ``channels: allow:`` values): each that makes a request;
#: a schedule follows ``actions.tag`` unless the policy gives it its own entry
POLICY_VERBS: tuple[Verb, ...] = tuple(EFFECTS)


def is_tenant_wide(verb: Verb) -> bool:
    """A verb without devices (an indicator): its card shows what it changes tenant-wide instead."""
    spec = ACTIONS.get(verb)
    return spec is not None and spec.tenant_wide
