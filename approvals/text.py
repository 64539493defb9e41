"""Plain-text renderings shared by ephemeral replies and the console (cards are rendered by surfaces)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable

from approvals.execution.cancelling import CANCELLED_IN_MDE, NOT_CANCELLED
from approvals.execution.cancels import BEFORE_SUBMISSION
from approvals.requests.models import CANCELLING_DEVICE_STATES, DeviceState
from approvals.resolution.flows import Resolution
from approvals.views import ExclusionRow, OutcomeCount, ProgressView

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


def exclusion_lines(rows: Iterable[ExclusionRow], limit: int = PREVIEW_ROWS, total: int | None = None) -> list[str]:
    """The first ``limit`` exclusions, then how many more of ``total`` (a request's view holds only the first)."""
    rows = list(rows)
    total = len(rows) if total is None else total
    lines = [f"  ✗ {r.name}: {r.reason}" for r in rows[:limit]]
    if total > len(lines):
        lines.append(f"  … and {total - len(lines)} more excluded")
    return lines


def preview(resolution: Resolution, *, title: str) -> str:
    devices = resolution.devices
    lines = [f"{title}: {len(devices)} device(s)"]
    for machine in devices[:PREVIEW_ROWS]:
        protection = resolution.protection.get(machine.id)
        extra = f"{protection.level}: {protection.reason}" if protection and protection.level != "none" else ""
        notes = [extra] if extra else []
        notes += [resolution.notes[machine.id]] if machine.id in resolution.notes else []
        notes += [f"would skip {s}" for s in resolution.skips.get(machine.id, ())]
        extra = "; ".join(notes)
        lines.append(device_line(machine.computer_dns_name, machine.os_platform, machine.health_status, extra))
    if len(devices) > PREVIEW_ROWS:
        lines.append(f"  … and {len(devices) - PREVIEW_ROWS} more")
    lines.extend(f"⚠ {c}" for c in resolution.caveats)
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


def _cancel_outcome(outcome: OutcomeCount) -> tuple[str, str]:
    """(kind, detail) of devices of a cancelled request: cancelled / stopped / finished / refused / still."""
    error = outcome.error or ""
    if error.startswith(NOT_CANCELLED):
        return "refused", error.split("; MDE then reported")[0].removeprefix(NOT_CANCELLED + ": ")
    if outcome.state in CANCELLING_DEVICE_STATES:
        return "still", ""
    if outcome.state == DeviceState.CANCELLED and error == CANCELLED_IN_MDE:
        return "cancelled", ""
    if outcome.state == DeviceState.CANCELLED and error.endswith(BEFORE_SUBMISSION):
        return "stopped", ""
    return "finished", outcome.state or "unknown"


def cancel_report(outcomes: Iterable[OutcomeCount]) -> str:
    """What a cancel really did, as counts: what MDE reported for each action, not what was intended. Counted
    from devices per (state, error) (``RequestView.counts.outcomes``), never from every device's row."""
    kinds: Counter[tuple[str, str]] = Counter()
    for outcome in outcomes:
        kinds[_cancel_outcome(outcome)] += outcome.count
    count = Counter(kind for kind, _detail in kinds.elements())
    parts = [f"{count['cancelled']} cancelled in MDE", f"{count['stopped']} stopped before submission"]
    finished = sorted((detail, n) for (kind, detail), n in kinds.items() if kind == "finished")
    if finished:
        parts.append(f"{count['finished']} had already finished (" + ", ".join(f"{n} {s}" for s, n in finished) + ")")
    refused = sorted(((detail, n) for (kind, detail), n in kinds.items() if kind == "refused"), key=lambda x: -x[1])
    if refused:
        why = "; ".join(f"{n}: {reason}" for reason, n in refused)
        parts.append(f"{count['refused']} could not be cancelled ({why})")
    if count["still"]:
        parts.append(f"{count['still']} still being cancelled")
    return "Cancel: " + ", ".join(parts) + "."
