"""Why a matched device is left out of a request: the rules, one function each."""

from __future__ import annotations

from dataclasses import dataclass

from approvals.verbs import ACTIONS, Verb
from mde.models import ActionStatus, Machine, MachineAction

MOBILE = {"ios", "android"}
WINDOWS_ONLY_VERBS = {Verb.RESTRICT, Verb.UNRESTRICT}


@dataclass(frozen=True, slots=True)
class IsolationState:
    isolated: bool
    pending: str | None  # "Isolate" | "Unisolate" while one is not final
    since: str | None  # ISO time of the action that decided it


def isolation_states(actions: list[MachineAction]) -> dict[str, IsolationState]:
    """Infer each device's isolation from its latest Isolate/Unisolate action (MDE has no flag)."""
    latest_final: dict[str, MachineAction] = {}
    pending: dict[str, str] = {}
    for action in actions:
        if action.type not in ("Isolate", "Unisolate"):
            continue
        if action.status in (ActionStatus.PENDING, ActionStatus.IN_PROGRESS):
            pending.setdefault(action.machine_id, action.type)
            continue
        if action.status != ActionStatus.SUCCEEDED:
            continue
        known = latest_final.get(action.machine_id)
        stamp = action.creation_date_time_utc
        if known is None or (stamp and known.creation_date_time_utc and stamp > known.creation_date_time_utc):
            latest_final[action.machine_id] = action
    out: dict[str, IsolationState] = {}
    for machine_id in set(latest_final) | set(pending):
        final = latest_final.get(machine_id)
        out[machine_id] = IsolationState(
            isolated=bool(final and final.type == "Isolate"),
            pending=pending.get(machine_id),
            since=final.creation_date_time_utc.isoformat() if final and final.creation_date_time_utc else None,
        )
    return out


def unsupported_reason(machine: Machine, verb: Verb, isolation_type: str) -> str | None:
    os_name = (machine.os_platform or "").lower()
    if machine.onboarding_status and machine.onboarding_status.lower() != "onboarded":
        return f"not onboarded to MDE (onboarding status {machine.onboarding_status})"
    if os_name in MOBILE and verb not in (Verb.TAG, Verb.UNTAG):
        return f"{machine.os_platform} devices do not support this action"
    if verb in WINDOWS_ONLY_VERBS and not os_name.startswith("windows"):
        return f"app restriction needs Windows; this device runs {machine.os_platform}"
    if verb == Verb.ISOLATE and isolation_type == "Selective" and os_name == "linux":
        return "selective isolation is not available on Linux; use --type full"
    if verb == Verb.QUARANTINE and os_name not in ("windows10", "windows11"):
        # stop-and-quarantine-file.md: Windows 10 version 1703 or later, or Windows 11
        return f"stop and quarantine needs Windows 10 (1703 or later) or Windows 11, not {machine.os_platform}"
    if verb == Verb.COLLECT_FILE and os_name.startswith("windowsserver") and os_name < "windowsserver2019":
        # run-live-response.md: Windows 10/11, Windows Server 2019 (preview), 2022 and 2025, macOS, Linux
        return f"live response needs Windows Server 2019 or later; this device runs {machine.os_platform}"
    return None


def inactive_reason(machine: Machine, verb: Verb) -> str | None:
    if verb in ACTIONS and ACTIONS[verb].needs_active and (machine.health_status or "") == "Inactive":
        seen = machine.last_seen.date().isoformat() if machine.last_seen else "unknown"
        return f"inactive (last full report {seen}): MDE would hold the action for up to 3 days"
    return None


def isolation_reason(verb: Verb, state: IsolationState | None) -> str | None:
    if verb == Verb.ISOLATE and state is not None:
        if state.pending == "Isolate":
            return "an isolation is already pending for this device"
        if state.isolated and state.pending != "Unisolate":
            return f"already isolated (since {state.since or 'an earlier action'})"
    if verb == Verb.UNISOLATE:
        if state is not None and state.pending == "Unisolate":
            return "a release is already pending for this device"
        if state is None or (not state.isolated and state.pending != "Isolate"):
            return "not isolated"
    return None
