"""The register and the timeline as chat text: the same lines on every surface."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from approvals.containment.models import Containment, Source, TimelineEntry
from approvals.text import neutralize_bidi


def age(delta: timedelta) -> str:
    """A coarse, readable age: 45m, 5h, 3d 4h."""
    minutes = max(0, int(delta.total_seconds() // 60))
    if minutes < 60:
        return f"{minutes}m"
    hours = minutes // 60
    if hours < 48:
        return f"{hours}h"
    days, rest = divmod(hours, 24)
    return f"{days}d {rest}h" if rest else f"{days}d"


def when(moment: datetime) -> str:
    return f"{moment:%Y-%m-%d %H:%M} UTC"


def group_title(row: Containment, incident_names: dict[str, str]) -> str:
    if row.source == Source.OUTSIDE.value:
        return 'Isolated outside the bot (adopt one with: adopt device:NAME --reason "…")'
    if row.source == Source.ADOPTED.value:
        return f"Adopted into the register by {row.adopted_by or '?'}"
    parts = []
    if row.incident_id is not None:
        parts.append(f"Incident {incident_names.get(row.incident_id, '#' + row.incident_id)}")
    if row.request_id is not None:
        approved = f", approved by {row.approved_by}" if row.approved_by else ""
        parts.append(f"request #{row.request_id} by {row.requested_by}{approved}")
    return " · ".join(parts) or "Requests no longer stored"


def group_key(row: Containment) -> tuple[int, str]:
    """Incidents first, then requests, then adopted, then outside isolations."""
    if row.source == Source.OUTSIDE.value:
        return (3, "")
    if row.source == Source.ADOPTED.value:
        return (2, row.adopted_by or "")
    if row.incident_id is not None:
        return (0, f"{row.incident_id:>12}:{row.request_id or 0:>12}")
    return (1, f"{row.request_id or 0:>12}")


def device_line(row: Containment, now: datetime) -> str:
    kind = f" {row.isolation_type}" if row.isolation_type else ""
    end = f", planned end {when(row.planned_end)}" if row.planned_end else ", no planned end"
    if row.planned_end is not None and row.planned_end <= now:
        end += " (passed)"
    who = ""
    if row.source != Source.BOT.value:
        who = f", isolated by {row.requested_by}"
        if row.reason:
            who += f" ({neutralize_bidi(row.reason)[:120]})"
    return (
        f"  {neutralize_bidi(row.device_name)}{kind} · {age(now - row.isolated_at)} since {when(row.isolated_at)}"
        f"{who}{end} · MDE: {row.mde_state} as of {when(row.confirmed_at)}"
    )


def register_text(rows: Sequence[Containment], now: datetime, incident_names: dict[str, str], narrowed: bool) -> str:
    if not rows:
        return "No device matching that is isolated now." if narrowed else "No device is isolated now."
    lines = [f"Isolated now: {len(rows)} device(s)."]
    ordered = sorted(rows, key=lambda r: (group_key(r), r.isolated_at))
    title = None
    for row in ordered:
        current = group_title(row, incident_names)
        if current != title:
            lines.append(current + ":")
            title = current
        lines.append(device_line(row, now))
    return "\n".join(lines)


def timeline_lines(entries: Sequence[TimelineEntry]) -> list[str]:
    if not entries:
        return []
    lines = [f"Containment timeline of {neutralize_bidi(entries[-1].device_name)}:"]
    for entry in entries:
        who = f" by {entry.actor}" if entry.actor else ""
        text = f": {neutralize_bidi(entry.text)}" if entry.text else ""
        lines.append(f"  {when(entry.at)} {entry.kind.replace('_', ' ')}{who}{text}")
    return lines
