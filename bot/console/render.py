"""Request cards as plain text for the console (the same content as the Slack and Teams cards)."""

from __future__ import annotations

from approvals.requests.states import RequestState
from approvals.text import PREVIEW_ROWS, cancel_report, device_line, exclusion_lines, summary_headline
from approvals.views import IncidentView, RequestView


def render_card(view: RequestView) -> str:
    state = RequestState(view.state)
    bar = "─" * 72
    lines = [
        bar,
        f"Request #{view.id} · {view.action_label} · {state.label}",
        f"Requested by {view.requester_label} · target {view.target_text}",
        f"Reason: {view.reason or '—'}",
        f"Devices: {view.devices_label}",
    ]
    for row in view.devices[:PREVIEW_ROWS]:
        extra = row.state or ""
        if row.error:
            extra += f" ({row.error})"
        if row.warning:
            extra += f" ⚠ {row.warning}"
        if row.note:
            extra += f" · {row.note}"
        lines.append(device_line(row.name, row.os_platform, row.health_status, extra.strip()))
    if view.device_count > PREVIEW_ROWS:
        lines.append(f"  … and {view.device_count - PREVIEW_ROWS} more")
    if view.exclusions:
        lines.append(f"Excluded ({view.exclusion_count}):")
        lines.extend(exclusion_lines(view.exclusions, total=view.exclusion_count))
    for warning in view.warnings:
        lines.append(f"⚠ {warning}")
    if view.order_note:
        lines.append(view.order_note)
    approvals = ", ".join(
        f"{d.actor_label}{' (break glass)' if d.break_glass else ''}" for d in view.decisions if d.approve
    )
    lines.append(
        f"Approvals: {view.approvals_given}/{view.required_approvals}" + (f" by {approvals}" if approvals else "")
    )
    if state is RequestState.PENDING and view.expires_at:
        lines.append(f'Expires {view.expires_at:%H:%M:%S} UTC · approve {view.id} | reject {view.id} --reason "…"')
    if view.progress is not None and state is not RequestState.PENDING:
        lines.append(f"Progress: {view.progress.sentence()}")
    lines.append(bar)
    return "\n".join(lines)


def render_summary(view: RequestView) -> str:
    progress = view.progress
    text = summary_headline(view.id, RequestState(view.state).label, progress)
    if progress is None:
        return text
    if view.state == RequestState.CANCELLED.value:
        text += "\n" + cancel_report(view.counts.outcomes)
    for row in view.counts.not_succeeded[:PREVIEW_ROWS]:
        text += f"\n  ✗ {row.name}: {row.state} — {row.error or ''}"
    if view.counts.not_succeeded_total > PREVIEW_ROWS:
        text += f"\n  … and {view.counts.not_succeeded_total - PREVIEW_ROWS} more (see the CSV)"
    return text


def render_incident(view: IncidentView) -> str:
    lines = [f"[{view.source_label}] {view.headline()}"]
    if view.product:
        lines.append(f"Product: {view.product}")
    devices = ", ".join(view.devices[:10]) + (f" and {len(view.devices) - 10} more" if len(view.devices) > 10 else "")
    lines.append(f"Devices: {devices or 'none named'}")
    if view.mention:
        lines.append(f"cc {view.mention}")
    if view.url:
        lines.append(view.url)
    return "\n".join(lines)
