"""Plain-text renderings shared by ephemeral replies and the console (cards are rendered by surfaces)."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from approvals.resolution.flows import Resolution
from approvals.views import ExclusionRow, ProgressView

PREVIEW_ROWS = 15


#: explicit bidirectional formatting characters: in a device name they make "exe.gpj" display as "jpg.exe"
_BIDI_CONTROLS = dict.fromkeys([0x061C, 0x200E, 0x200F, *range(0x202A, 0x202F), *range(0x2066, 0x206A)])


def neutralize_bidi(text: str) -> str:
    """Show direction overrides instead of obeying them (RTL names themselves are untouched)."""
    if not any(ord(c) in _BIDI_CONTROLS for c in text):
        return text
    return "".join(f"⟦U+{ord(c):04X}⟧" if ord(c) in _BIDI_CONTROLS else c for c in text)


def device_line(name: str, os_platform: str | None, health: str | None, extra: str = "") -> str:
    bits = [neutralize_bidi(name), os_platform or "?", health or "?"]
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
        if machine.id in resolution.notes:
            extra = f"{extra} · {resolution.notes[machine.id]}" if extra else resolution.notes[machine.id]
        lines.append(device_line(machine.computer_dns_name, machine.os_platform, machine.health_status, extra))
    if len(devices) > PREVIEW_ROWS:
        lines.append(f"  … and {len(devices) - PREVIEW_ROWS} more")
    if resolution.exclusions:
        lines.append(f"Excluded ({len(resolution.exclusions)}):")
        lines.extend(exclusion_lines(resolution.exclusions))
    return "\n".join(lines)


def status_line(
    *, request_id: int, action_label: str, state: str, progress: ProgressView, approvals: int, required: int
) -> str:
    """One line per request, from counts only (no device rows loaded): cheap enough for any chat command."""
    from approvals.requests.states import RequestState

    text = f"#{request_id} {action_label} · {progress.total} device(s) · {RequestState(state).label}"
    if state == "pending":
        return text + f" · {approvals} of {required} approval(s)"
    return text + f" · {progress.sentence()}"


def fit_lines(
    lines: Iterable[str], total: int, noun: str, *, budget: int, bullet: str = "", size: Callable[[str], int] = len
) -> str:
    """As many whole lines as fit in ``budget`` (measured by ``size``: characters for Slack's 3,000-character
    text, bytes on the wire for a Teams card of at most about 28 KB), then "… and N more <noun>" for the rest.
    A line is never cut: a cut row leaves half a markdown mark on screen."""
    kept: list[str] = []
    used = 0
    for line in lines:
        if used + size(line) + 1 > budget - 80:
            break
        kept.append(line)
        used += size(line) + 1
    if total > len(kept):
        kept.append(f"{bullet}_… and {total - len(kept)} more {noun}_")
    return "\n".join(kept)


def summary_headline(request_id: int, state_label: str, progress: ProgressView | None) -> str:
    """The first sentence of every summary: the outcome in counts."""
    if progress is None:
        return f"Summary of #{request_id}: {state_label}."
    return (
        f"Summary of #{request_id}: {state_label}. {progress.succeeded} succeeded, {progress.failed} failed, "
        f"{progress.skipped} skipped, {progress.cancelled} cancelled, of {progress.total}."
    )
