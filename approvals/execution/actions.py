"""Which MDE call a verb makes, and which MDE action type it creates (to find it again after a crash)."""

from __future__ import annotations

from typing import Any

from mde.client import ROLE_FOR_PATH, MdeClient
from mde.models import IsolationType, MachineAction, ScanType, TagAction

#: verb -> the MachineAction ``type`` MDE records (tag verbs create no action)
ACTION_TYPES = {
    "isolate": "Isolate",
    "unisolate": "Unisolate",
    "scan": "RunAntiVirusScan",
    "restrict": "RestrictCodeExecution",
    "unrestrict": "UnrestrictCodeExecution",
    "collect": "CollectInvestigationPackage",
}
TAG_VERBS = {"tag": TagAction.ADD, "untag": TagAction.REMOVE}
#: the rate-limit family the submission spends
FAMILY = {verb: "machine_actions" for verb in ACTION_TYPES} | {verb: "machine_tags" for verb in TAG_VERBS}
#: the application permission each verb needs: the one the client names when MDE answers 403 on its path
#: (an action's path is its type with a lower-case first letter: RunAntiVirusScan -> runAntiVirusScan)
ROLES = {verb: ROLE_FOR_PATH[kind[0].lower() + kind[1:]] for verb, kind in ACTION_TYPES.items()} | {
    verb: ROLE_FOR_PATH["tags"] for verb in TAG_VERBS
}


def marker(request_id: int) -> str:
    """Put in every action's comment so a resumed worker recognises this request's own actions."""
    return f"[mde-chatops #{request_id}]"


def comment_for(request_id: int, reason: str | None, requester: str) -> str:
    return f"{reason or 'no reason given'} (requested by {requester}) {marker(request_id)}"


async def submit_device_action(
    client: MdeClient, verb: str, machine_id: str, comment: str, params: dict[str, Any]
) -> MachineAction:
    if verb == "isolate":
        return await client.isolate(
            machine_id, comment=comment, isolation_type=IsolationType(params.get("isolation_type", "Full"))
        )
    if verb == "unisolate":
        return await client.unisolate(machine_id, comment=comment)
    if verb == "scan":
        return await client.run_antivirus_scan(
            machine_id, comment=comment, scan_type=ScanType(params.get("scan_type", "Quick"))
        )
    if verb == "restrict":
        return await client.restrict_code_execution(machine_id, comment=comment)
    if verb == "unrestrict":
        return await client.unrestrict_code_execution(machine_id, comment=comment)
    if verb == "collect":
        return await client.collect_investigation_package(machine_id, comment=comment)
    raise ValueError(f"{verb} is not a device action")
