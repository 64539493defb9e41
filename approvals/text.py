"""Plain-text renderings shared by ephemeral replies and the console (cards are rendered by surfaces)."""

from __future__ import annotations

from collections.abc import Iterable

from approvals.resolution.flows import Resolution
from approvals.views import ExclusionRow, RequestView

PREVIEW_ROWS = 15


def device_line(name: str, os_platform: str | None, health: str | None, extra: str = "") -> str:
    bits = [name, os_platform or "?", health or "?"]
    return "  • " + " · ".join(bits) + (f" — {extra}" if extra else "")


def exclusion_lines(rows: Iterable[ExclusionRow], limit: int = PREVIEW_ROWS) -> list[str]:
    rows = list(rows)
    lines = [f"  ✗ {r.name}: {r.reason}" for r in rows[:limit]]
    if len(rows) > limit:
        lines.append(f"  … and {len(rows) - limit} more excluded")
    return lines


def preview(resolution: Resolution, *, title: str) -> str:
    devices = resolution.devices
    lines = [f"{title}: {len(devices)} device(s)"]
    for machine in devices[:PREVIEW_ROWS]:
        protection = resolution.protection.get(machine.id)
        extra = f"{protection.level}: {protection.reason}" if protection and protection.level != "none" else ""
        lines.append(device_line(machine.computer_dns_name, machine.os_platform, machine.health_status, extra))
    if len(devices) > PREVIEW_ROWS:
        lines.append(f"  … and {len(devices) - PREVIEW_ROWS} more")
    if resolution.exclusions:
        lines.append(f"Excluded ({len(resolution.exclusions)}):")
        lines.extend(exclusion_lines(resolution.exclusions))
    return "\n".join(lines)


def status_line(view: RequestView) -> str:
    from approvals.requests.states import RequestState

    state = RequestState(view.state).label
    text = f"#{view.id} {view.action_label} · {len(view.devices)} device(s) · {state}"
    if view.progress is not None and view.state not in ("pending",):
        text += f" · {view.progress.sentence()}"
    elif view.state == "pending":
        text += f" · {view.approvals_given} of {view.required_approvals} approval(s)"
    return text
