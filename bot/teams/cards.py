"""Request cards as Adaptive Cards 1.5 with Universal Actions (Action.Execute), the same content as Slack's.

Teams caps a message at about 28 KB, so the device list is a preview (the card stays well under 20 KB
for any number of devices) and "Show all devices" answers with the full list on demand.
"""

from __future__ import annotations

import re
from typing import Any

from approvals.requests.states import RequestState
from approvals.text import fit_lines, neutralize_bidi
from approvals.views import IncidentView, RequestView
from bot.console.render import render_summary

CARD_CONTENT_TYPE = "application/vnd.microsoft.card.adaptive"
PREVIEW_ROWS = 15
EXCLUSION_ROWS = 10
MAX_TEXT = 2000
ALL_DEVICES_CHARS = 20_000

VERB_APPROVE = "mde_approve"
VERB_REJECT = "mde_reject"
VERB_BREAK_GLASS = "mde_break_glass"
VERB_SHOW_ALL = "mde_show_all"
VERB_REFRESH = "mde_refresh"

Card = dict[str, Any]
_MARKDOWN = re.compile(r"([\\`*_\[\]<>])")


def escape(text: str) -> str:
    """Teams renders a subset of Markdown in TextBlocks: a device name must stay literal text (and in order)."""
    return _MARKDOWN.sub(r"\\\1", neutralize_bidi(text))


def _text(text: str, **extra: Any) -> dict[str, Any]:
    if len(text) > MAX_TEXT:
        text = text[: MAX_TEXT - 1] + "…"
    return {"type": "TextBlock", "text": text, "wrap": True, **extra}


def _device_lines(view: RequestView) -> str:
    rows = []
    for row in view.devices[:PREVIEW_ROWS]:
        bits = [f"**{escape(row.name)}**", escape(row.os_platform or "?"), escape(row.health_status or "?")]
        if row.state:
            bits.append(escape(row.state))
        if row.warning:
            bits.append("⚠ " + escape(row.warning[:120]))
        if row.error:
            bits.append(escape(row.error[:120]))
        rows.append("- " + " · ".join(bits))
    return fit_lines(rows, len(view.devices), "(Show all devices)", budget=MAX_TEXT, bullet="- ") if rows else "_none_"


def _execute(title: str, verb: str, request_id: int, **extra: Any) -> dict[str, Any]:
    """Action.Execute, with Action.Submit as the fallback for clients older than card schema 1.5."""
    data = {"request_id": request_id, "verb": verb}
    return {
        "type": "Action.Execute",
        "title": title,
        "verb": verb,
        "data": data,
        "fallback": {"type": "Action.Submit", "title": title, "data": data},
        **extra,
    }


def _reason_card(request_id: int, *, break_glass: bool) -> dict[str, Any]:
    label = "Why must protected devices be included?" if break_glass else "Why are you rejecting it?"
    verb, title = (VERB_BREAK_GLASS, "Approve incl. protected") if break_glass else (VERB_REJECT, "Reject")
    return {
        "type": "Action.ShowCard",
        "title": "Approve incl. protected (break glass)" if break_glass else "Reject",
        "card": {
            "type": "AdaptiveCard",
            "body": [
                {
                    "type": "Input.Text",
                    "id": "reason",
                    "label": label,
                    "isMultiline": True,
                    "isRequired": True,
                    "errorMessage": "A reason is required.",
                    "maxLength": 500,
                }
            ],
            "actions": [_execute(title, verb, request_id, associatedInputs="auto")],
        },
    }


def request_card(view: RequestView) -> Card:
    state = RequestState(view.state)
    approvers = ", ".join(
        escape(d.actor_label) + (" (break glass)" if d.break_glass else "") for d in view.decisions if d.approve
    )
    approvals = f"{view.approvals_given}/{view.required_approvals}" + (f" ({approvers})" if approvers else "")
    body: list[dict[str, Any]] = [
        _text(f"#{view.id} {escape(view.action_label)}", size="Large", weight="Bolder"),
        {
            "type": "FactSet",
            "facts": [
                {"title": "State", "value": state.label},
                {"title": "Requested by", "value": escape(view.requester_label)},
                {"title": "Devices", "value": view.devices_label},
                {"title": "Approvals", "value": approvals},
                {"title": "Reason", "value": escape(view.reason or "—")},
                {"title": "Target", "value": escape(view.target_text)},
            ],
        },
        _text(_device_lines(view)),
    ]
    if view.exclusions:
        rows = [f"- **{escape(e.name)}**: {escape(e.reason[:200])}" for e in view.exclusions[:EXCLUSION_ROWS]]
        body.append(
            _text(
                f"**Excluded ({len(view.exclusions)})**\n\n"
                + fit_lines(rows, len(view.exclusions), "excluded", budget=MAX_TEXT, bullet="- ")
            )
        )
    for warning in view.warnings[:3]:
        body.append(_text("⚠ " + escape(warning), color="Warning"))
    if view.order_note:
        body.append(_text(escape(view.order_note), isSubtle=True))
    if view.progress is not None and state is not RequestState.PENDING:
        body.append(_text(f"**Progress:** {view.progress.sentence()}"))
    footer = f"Request #{view.id}"
    if state is RequestState.PENDING and view.expires_at:
        footer += f" · expires {view.expires_at:%Y-%m-%d %H:%M} UTC"
    body.append(_text(footer, isSubtle=True, size="Small"))
    actions: list[dict[str, Any]] = []
    if state is RequestState.PENDING:
        actions += [
            _execute("Approve", VERB_APPROVE, view.id, style="positive"),
            _reason_card(view.id, break_glass=False),
        ]
        if any(e.kind == "protected" for e in view.exclusions):
            actions.append(_reason_card(view.id, break_glass=True))
    if len(view.devices) > PREVIEW_ROWS:
        actions.append(_execute("Show all devices", VERB_SHOW_ALL, view.id))
    card: Card = {
        "type": "AdaptiveCard",
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "version": "1.5",
        "body": body,
        "actions": actions,
        # Universal Actions: a client that opens an old copy of the card asks the bot for the current one
        "refresh": {"action": {"type": "Action.Execute", "verb": VERB_REFRESH, "data": {"request_id": view.id}}},
    }
    return card


def all_devices_card(view: RequestView) -> Card:
    """Every device of the request, as many as fit in one message; the rest counted."""
    lines, used = [], 0
    for row in view.devices:
        line = f"- {escape(row.name)} · {escape(row.state or row.health_status or '?')}"
        if used + len(line) > ALL_DEVICES_CHARS:
            break
        lines.append(line)
        used += len(line) + 1
    body = [_text(f"**All {len(view.devices)} devices of request #{view.id}**")]
    for start in range(0, len(lines), 100):  # TextBlocks of 100 lines keep each one small
        body.append({"type": "TextBlock", "text": "\n".join(lines[start : start + 100]), "wrap": True})
    if len(lines) < len(view.devices):
        body.append(
            _text(f"_… and {len(view.devices) - len(lines)} more: `mde-chatops audit export` has every device._")
        )
    return {"type": "AdaptiveCard", "version": "1.5", "body": body}


def summary_card(view: RequestView) -> Card:
    failed = [d for d in view.devices if d.state in ("Failed", "TimeOut", "Cancelled")]
    body = [_text(escape(render_summary(view)))]
    if failed:
        rows = [f"- **{escape(d.name)}** · {escape(d.state or '')} · {escape((d.error or '')[:200])}" for d in failed]
        body.append(_text("**Did not succeed**\n\n" + "\n".join(rows[:50])))
        if len(rows) > 50:
            body.append(_text(f"_… and {len(rows) - 50} more_"))
    actions = [_execute("Show all devices", VERB_SHOW_ALL, view.id)] if view.devices else []
    return {"type": "AdaptiveCard", "version": "1.5", "body": body, "actions": actions}


def fallback_text(view: RequestView) -> str:
    return f"Request #{view.id}: {view.action_label} on {len(view.devices)} device(s) · {view.state}"


def incident_card(view: IncidentView) -> Card:
    devices = ", ".join(escape(name) for name in view.devices[:20])
    if len(view.devices) > 20:
        devices += f" and {len(view.devices) - 20} more"
    body: list[dict[str, Any]] = []
    if view.mention:
        body.append(_text(f"{escape(view.mention)}: new incident", weight="Bolder"))
    body += [
        _text(escape(view.headline()), size="Large", weight="Bolder", color="Good" if view.closed else "Attention"),
        {
            "type": "FactSet",
            "facts": [
                {"title": "Severity", "value": escape(view.severity)},
                {"title": "Status", "value": escape("closed" if view.closed else view.status)},
                {"title": "Source", "value": escape(view.source_label)},
                {"title": "Product", "value": escape(view.product or "—")},
                {"title": f"Devices ({len(view.devices)})", "value": devices or "none named"},
            ],
        },
        _text("War-room thread: requests and results for this incident are posted here.", isSubtle=True),
    ]
    actions = []
    if view.url and view.url.startswith("https://"):
        actions.append({"type": "Action.OpenUrl", "title": "Open in the portal", "url": view.url})
    return {"type": "AdaptiveCard", "version": "1.5", "body": body, "actions": actions}
