"""Every sentence a schedule shows: the approval card's preview lines, run reports, ``schedule list``."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from approvals.schedules.models import Schedule
from approvals.schedules.tagging import Plan
from approvals.views import ExclusionRow
from mde.models import Machine

NAMES = 8


def names(machines: Sequence[Machine], limit: int = NAMES) -> str:
    shown = ", ".join(m.computer_dns_name for m in machines[:limit])
    return shown + (f" … and {len(machines) - limit} more" if len(machines) > limit else "")


def when(moment: datetime | None) -> str:
    return f"{moment:%a %Y-%m-%d %H:%M} UTC" if moment else "—"


def describe(cadence_spec: str) -> str:
    """``every fri 06:00`` -> ``every fri 06:00 UTC``; an interval (``every 6h``) has no time of day."""
    return cadence_spec if cadence_spec.endswith("h") else f"{cadence_spec} UTC"


def card_lines(plan: Plan, *, tag: str, sync: bool, cadence_text: str, first_run: datetime) -> list[str]:
    """Shown on the approval card (Slack and Teams show the first three): what the query returns now."""
    todo = f": {names(plan.to_add)}" if plan.to_add else ""
    lines = [
        f"Preview: the query finds {plan.found} device(s) now; {len(plan.to_add)} would get '{tag}', "
        f"{plan.already_tagged} already have it{todo}."
    ]
    if sync:
        gone = f": {names(plan.to_remove)}" if plan.to_remove else ""
        lines.append(
            f"--sync: devices tagged '{tag}' that the query stops finding lose the tag; "
            f"{len(plan.to_remove)} would now{gone}."
        )
    else:
        lines.append("Without --sync the tag is only added, never removed.")
    lines.append(f"Runs {cadence_text}; first run {when(first_run)}. Approval itself calls nothing in MDE.")
    if plan.unknown:
        lines.append(f"{plan.unknown} DeviceId value(s) the query returns are not known to MDE and are ignored.")
    return lines


def protected_rows(plan: Plan) -> list[ExclusionRow]:
    """Protected devices the query finds: excluded from every run unless approved with break glass."""
    return [
        ExclusionRow(
            name=machine.computer_dns_name,
            machine_id=machine.id,
            kind="protected",
            reason=f"protected: {reason}; only a break-glass approval includes it in the runs",
        )
        for machine, reason in plan.skipped
    ]


def result_dict(plan: Plan | None, *, added: int, removed: int, errors: list[str], state: str) -> dict[str, Any]:
    return {
        "state": state,
        "found": plan.found if plan else 0,
        "added": added,
        "already_tagged": plan.already_tagged if plan else 0,
        "removed": removed,
        "skipped": len(plan.skipped) if plan else 0,
        "unknown": plan.unknown if plan else 0,
        "errors": errors,
    }


def run_line(schedule_id: int, result: dict[str, Any], *, manual_by: str | None = None) -> str:
    head = f"Schedule #{schedule_id} run" + (f" (requested by {manual_by})" if manual_by else "")
    if result.get("note"):
        return f"{head} {result['note']}"
    text = f"{head}: {result['added']} added, {result['already_tagged']} already tagged, {result['removed']} removed"
    if result.get("skipped"):
        text += f", {result['skipped']} protected skipped"
    if result.get("unknown"):
        text += f", {result['unknown']} unknown DeviceId(s) ignored"
    if result.get("errors"):
        text += ". Errors: " + "; ".join(result["errors"][:3])
    return text + "."


def list_line(schedule: Schedule, request_state: str) -> str:
    sync = " --sync" if schedule.sync else ""
    head = f"#{schedule.id} tag '{schedule.tag}' · {describe(schedule.cadence)}{sync} · request #{schedule.request_id}"
    if not schedule.active:
        return f"{head} · waiting for approval ({request_state})"
    text = f"{head} · next {when(schedule.next_run_at)}"
    last = schedule.last_result or {}
    if schedule.last_run_at is not None:
        text += f" · last {when(schedule.last_run_at)}: "
        if last.get("note"):
            text += str(last["note"])
        else:
            added, already, removed = (last.get(k, 0) for k in ("added", "already_tagged", "removed"))
            text += f"{added} added, {already} already tagged, {removed} removed"
    return text


def over_cap(changes: int, cap: int) -> str:
    return (
        f"it would change the tag on {changes} devices and the cap for schedule is {cap} "
        "(actions.schedule.max_devices, or actions.tag.max_devices, in the policy)."
    )
