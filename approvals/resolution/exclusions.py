"""Why a matched device is left out of a request: the rules, one function each.

Platform rules are not written here: they come from the one capability table, ``mde.capabilities``.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from approvals.verbs import ACTIONS, Verb
from mde.capabilities import OFFLINE_RETRY_DAYS, Device, Support, Verdict, check, covers, waits_for_reconnect
from mde.models import ActionStatus, Machine, MachineAction


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
    """For the verbs ``mde.capabilities`` does not cover yet (live response file collection)."""
    os_name = (machine.os_platform or "").lower()
    if machine.onboarding_status and machine.onboarding_status.lower() != "onboarded":
        return f"not onboarded to MDE (onboarding status {machine.onboarding_status})"
    if os_name in ("ios", "android"):
        return f"{machine.os_platform} devices do not support this action"
    if verb == Verb.COLLECT_FILE and os_name.startswith("windowsserver") and os_name < "windowsserver2019":
        # run-live-response.md: Windows 10/11, Windows Server 2019 (preview), 2022 and 2025, macOS, Linux
        return f"live response needs Windows Server 2019 or later; this device runs {machine.os_platform}"
    return None


def capability(verb: Verb, isolation_type: str) -> tuple[str, str | None]:
    """The (MDE action type, scope) a verb runs, as ``mde.capabilities`` names them."""
    spec = ACTIONS[verb]
    if spec.action_type is None:  # bulk tag verbs: MDE records no action
        return "Tag", None
    return spec.action_type, isolation_type if verb is Verb.ISOLATE else None


def device_of(machine: Machine) -> Device:
    onboarded = not machine.onboarding_status or machine.onboarding_status.lower() == "onboarded"
    return Device(machine.os_platform, machine.version, machine.os_build, onboarded)


def unsupported(machine: Machine, verb: Verb, isolation_type: str) -> Verdict:
    """The capability table's verdict; anything but SUPPORTED leaves the device out, with the reason."""
    action, scope = capability(verb, isolation_type)
    if not _covers(action):  # verbs the table does not cover yet (live response): their own rules
        reason = unsupported_reason(machine, verb, isolation_type)
        return Verdict(Support.SUPPORTED if reason is None else Support.UNSUPPORTED, reason)
    return _check(action, device_of(machine), scope)


#: the table's verdict depends on the action and the device's platform, version, build and onboarding only: a
#: fleet has a few hundred such combinations, a large request 100,000 devices (the verdicts are frozen values)
_check = functools.lru_cache(maxsize=4096)(check)
_covers = functools.lru_cache(maxsize=64)(covers)


def inactive_reason(machine: Machine, verb: Verb, isolation_type: str, *, active_only: bool) -> str | None:
    """An inactive device is left out unless the action waits for it to reconnect (isolate)."""
    if not ACTIONS[verb].needs_active or (machine.health_status or "") != "Inactive":
        return None
    action, scope = capability(verb, isolation_type)
    if scope == "UnManagedDevice":
        return None  # contain is enforced by the other devices: the target's own health does not matter
    seen = machine.last_seen.date().isoformat() if machine.last_seen else "unknown"
    if active_only:
        return f"inactive (last full report {seen}); left out by --active-only"
    if waits_for_reconnect(action, scope):
        return None
    return f"inactive (last full report {seen}): a {verb.value} would run days late, if at all"


def reconnect_note(machine: Machine) -> str:
    seen = machine.last_seen.date().isoformat() if machine.last_seen else "unknown"
    return f"inactive since {seen}: applies when it reconnects, or times out after {OFFLINE_RETRY_DAYS} days"


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
