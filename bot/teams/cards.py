"""Request cards as Adaptive Cards 1.5 with Universal Actions (Action.Execute), the same content as Slack's.

Teams caps a message at about 28 KB, so every list is budgeted in bytes as sent (non-ASCII text is sent
``\\uXXXX``-escaped: a CJK character costs 6 bytes, not 1 character) and "Show all devices" answers with the
full list on demand. Teams markdown breaks a line only between paragraphs or list items, so every
multi-line text here is a list or paragraphs. tests/bot/teams/test_rendered_cards.py runs each card through
Microsoft's renderer.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any

from approvals.requests.states import RequestState
from approvals.text import cancel_report, fit_lines, neutralize_bidi, summary_headline
from approvals.views import DeviceRow, IncidentView, RequestView

CARD_CONTENT_TYPE = "application/vnd.microsoft.card.adaptive"
VERSION = "1.5"  # the version Teams supports, and the one Universal Actions need
PREVIEW_ROWS = 15
#: card lines of a request without devices (schedule, indicator) and warnings
MAX_WARNINGS = 6
EXCLUSION_ROWS = 10
#: one TextBlock's share of the card, in bytes as sent
MAX_TEXT = 2000
#: a fact (Reason, Target) is one line in Teams: longer ones are cut, with the whole kept in the audit log
FACT_CHARS = 300
ALL_DEVICES_BYTES = 20_000
#: devices "show all" reads: more lines than fit in ALL_DEVICES_BYTES (a line is at least 8 bytes)
ALL_DEVICES_ROWS = ALL_DEVICES_BYTES // 8
SUMMARY_BYTES = 4_000
#: Teams refreshes a card automatically for at most 60 listed users
REFRESH_USERS = 60

VERB_APPROVE = "mde_approve"
VERB_REJECT = "mde_reject"
VERB_BREAK_GLASS = "mde_break_glass"
VERB_SHOW_ALL = "mde_show_all"
VERB_REFRESH = "mde_refresh"
#: each reason input has its own id (a card's input ids must be unique, ShowCards included)
REASON_INPUTS = {VERB_REJECT: "reject_reason", VERB_BREAK_GLASS: "break_glass_reason"}

Card = dict[str, Any]
_MARKDOWN = re.compile(r"([\\`*_\[\]<>])")


def wire_bytes(text: str) -> int:
    """Bytes a string costs in the activity the SDK sends (``json.dumps``: ASCII, non-ASCII escaped)."""
    return len(json.dumps(text)) - 2


def escape(text: str) -> str:
    """Teams renders a subset of Markdown in TextBlocks: a device name must stay literal text (and in order)."""
    return _MARKDOWN.sub(r"\\\1", neutralize_bidi(text))


def _cap(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _text(text: str, **extra: Any) -> dict[str, Any]:
    return {"type": "TextBlock", "text": text, "wrap": True, **extra}


def _fitted(rows: list[str], total: int, noun: str, budget: int = MAX_TEXT) -> str:
    return fit_lines(rows, total, noun, budget=budget, bullet="- ", size=wire_bytes)


def _card(body: list[dict[str, Any]], fallback: str, actions: list[dict[str, Any]] | None = None) -> Card:
    card: Card = {
        "type": "AdaptiveCard",
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "version": VERSION,
        # what a client that cannot render the card (or a notification) shows instead
        "fallbackText": _cap(fallback, 300),
        "body": body,
    }
    if actions:
        card["actions"] = actions
    return card


def _device_lines(view: RequestView) -> str:
    rows = []
    for row in view.devices[:PREVIEW_ROWS]:
        bits = [f"**{escape(row.name)}**", escape(row.os_platform or "?"), escape(row.health_status or "?")]
        if row.state:
            bits.append(escape(row.state))
        if row.warning:
            bits.append("⚠ " + escape(row.warning[:120]))
        if row.note:
            bits.append("_" + escape(row.note[:120]) + "_")
        if row.error:
            bits.append(escape(row.error[:120]))
        rows.append("- " + " · ".join(bits))
    return _fitted(rows, view.device_count, "(Show all devices)") if rows else "_none_"


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
    action: dict[str, Any] = {
        "type": "Action.ShowCard",
        # titles stay short: Teams shares one row among the buttons and cuts long titles to "R…"
        "title": "Break glass" if break_glass else "Reject",
        "card": {
            "type": "AdaptiveCard",
            "body": [
                {
                    "type": "Input.Text",
                    "id": REASON_INPUTS[verb],
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
    if break_glass:
        action["mode"] = "secondary"  # rare and dangerous: in the "…" menu, not next to Approve
    return action


def _facts(view: RequestView, state: RequestState) -> list[dict[str, str]]:
    approvers = ", ".join(
        escape(d.actor_label) + (" (break glass)" if d.break_glass else "") for d in view.decisions if d.approve
    )
    approvals = f"{view.approvals_given}/{view.required_approvals}" + (f" ({approvers})" if approvers else "")
    facts = [
        {"title": "State", "value": state.label},
        {"title": "Requested by", "value": escape(view.requester_label)},
        {"title": "Devices", "value": view.devices_label},
        {"title": "Approvals", "value": approvals},
        {"title": "Reason", "value": escape(_cap(view.reason or "—", FACT_CHARS))},
        {"title": "Target", "value": escape(_cap(view.target_text, FACT_CHARS))},
    ]
    rejection = view.rejection if state is RequestState.REJECTED else None
    if rejection is not None:
        why = _cap(rejection.reason or "no reason given", FACT_CHARS)
        facts.insert(1, {"title": "Rejected by", "value": f"{escape(rejection.actor_label)}: {escape(why)}"})
    return facts


def request_card(view: RequestView, refresh_users: tuple[str, ...] = ()) -> Card:
    """The request card; ``refresh_users`` (Teams user ids, ``29:…``) get it refreshed automatically in
    channels of more than 60 members, where Teams refreshes no one else without a click."""
    state = RequestState(view.state)
    body: list[dict[str, Any]] = [
        _text(f"#{view.id} {escape(view.action_label)}", size="Large", weight="Bolder"),
        {"type": "FactSet", "facts": _facts(view, state)},
        _text(_device_lines(view)),
    ]
    if view.exclusions:
        rows = [f"- **{escape(e.name)}**: {escape(e.reason[:200])}" for e in view.exclusions[:EXCLUSION_ROWS]]
        body.append(
            _text(f"**Excluded ({view.exclusion_count})**\n\n" + _fitted(rows, view.exclusion_count, "excluded"))
        )
    for warning in view.warnings[:MAX_WARNINGS]:
        body.append(_text("⚠ " + escape(_cap(warning, MAX_TEXT // 4)), color="Warning"))
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
        if view.excludes_protected:
            actions.append(_reason_card(view.id, break_glass=True))
    if view.device_count > PREVIEW_ROWS:
        show_all = _execute("Show all devices", VERB_SHOW_ALL, view.id)
        if state is RequestState.PENDING:
            show_all["mode"] = "secondary"
        actions.append(show_all)
    card = _card(body, fallback_text(view), actions)
    # Universal Actions: a client that opens an old copy of the card asks the bot for the current one
    refresh = {"type": "Action.Execute", "verb": VERB_REFRESH, "data": {"request_id": view.id}}
    card["refresh"] = {"action": refresh, "userIds": list(dict.fromkeys(refresh_users))[:REFRESH_USERS]}
    return card


def all_devices_card(view: RequestView, devices: Iterable[DeviceRow]) -> Card:
    """Every device of the request, as many as fit in one message; the rest counted. ``devices`` are read from
    storage (the first ``ALL_DEVICES_ROWS`` are more than fit): the view holds only the first few."""
    lines, used = [], 0
    for row in devices:
        line = f"- {escape(row.name)} · {escape(row.state or row.health_status or '?')}"
        if used + wire_bytes(line) + 1 > ALL_DEVICES_BYTES:
            break
        lines.append(line)
        used += wire_bytes(line) + 1
    body = [_text(f"**All {view.device_count} devices of request #{view.id}**")]
    for start in range(0, len(lines), 100):  # TextBlocks of 100 lines keep each one small
        body.append(_text("\n".join(lines[start : start + 100])))
    if len(lines) < view.device_count:
        body.append(
            _text(f"_… and {view.device_count - len(lines)} more: `mde-chatops audit export` has every device._")
        )
    return _card(body, f"All {view.device_count} devices of request #{view.id}")


def summary_card(view: RequestView) -> Card:
    """The outcome in counts, then each device that did not succeed, once."""
    headline = summary_headline(view.id, RequestState(view.state).label, view.progress)
    body = [_text(escape(headline))]
    if view.state == RequestState.CANCELLED.value:
        body.append(_text(escape(cancel_report(view.counts.outcomes))))
    failed, total = view.counts.not_succeeded, view.counts.not_succeeded_total
    if total:
        rows = [f"- **{escape(d.name)}** · {escape(d.state or '')} · {escape((d.error or '')[:200])}" for d in failed]
        more = "(Show all devices)"
        body.append(_text(f"**Did not succeed ({total})**\n\n" + _fitted(rows, total, more, SUMMARY_BYTES)))
    actions = [_execute("Show all devices", VERB_SHOW_ALL, view.id)] if view.device_count else []
    return _card(body, headline, actions)


def fallback_text(view: RequestView) -> str:
    return f"Request #{view.id}: {view.action_label} on {view.device_count} device(s) · {view.state}"


def incident_card(view: IncidentView) -> Card:
    devices = ", ".join(escape(name) for name in view.devices[:20])
    if len(view.devices) > 20:
        devices += f" and {len(view.devices) - 20} more"
    body: list[dict[str, Any]] = []
    if view.mention:
        body.append(_text(f"{escape(view.mention)}: new incident", weight="Bolder"))
    body += [
        _text(
            escape(_cap(view.headline(), 400)),
            size="Large",
            weight="Bolder",
            color="Good" if view.closed else "Attention",
        ),
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
    return _card(body, view.headline(), actions)
