"""Request cards as Block Kit, within Slack's limits (50 blocks, 3,000 characters per text, 10 fields)."""

from __future__ import annotations

from typing import Any

from approvals.requests.states import RequestState
from approvals.text import fit_lines, neutralize_bidi
from approvals.views import IncidentView, RequestView
from bot.slack.enums import ActionId, BlockId, InputId, ModalId

MAX_TEXT = 2900
PREVIEW_ROWS = 15
EXCLUSION_ROWS = 10
#: card lines of a request without devices (schedule, indicator) and warnings; the rest stays in the thread
MAX_WARNINGS = 6

Block = dict[str, Any]


def _escape(text: str) -> str:
    """Slack mrkdwn control characters: a device name can never become a link or a mention (nor reorder itself)."""
    return neutralize_bidi(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _section(text: str) -> Block:
    if len(text) > MAX_TEXT:
        text = text[: MAX_TEXT - 1] + "…"
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def _device_lines(view: RequestView) -> str:
    rows = []
    for row in view.devices[:PREVIEW_ROWS]:
        bits = [f"`{_escape(row.name)}`", _escape(row.os_platform or "?"), _escape(row.health_status or "?")]
        if row.state:
            bits.append(f"*{_escape(row.state)}*")
        if row.warning:
            bits.append(f":warning: {_escape(row.warning[:200])}")
        if row.note:
            bits.append(f"_{_escape(row.note[:200])}_")
        if row.error:
            bits.append(_escape(row.error[:200]))
        rows.append("• " + " · ".join(bits))
    return fit_lines(rows, view.device_count, "(Show all devices)", budget=MAX_TEXT, bullet="") if rows else "_none_"


def _exclusion_lines(view: RequestView) -> str:
    rows = [f"• `{_escape(e.name)}`: {_escape(e.reason[:300])}" for e in view.exclusions[:EXCLUSION_ROWS]]
    return fit_lines(rows, view.exclusion_count, "excluded", budget=MAX_TEXT, bullet="")


def request_blocks(view: RequestView) -> list[Block]:
    state = RequestState(view.state)
    approvers = ", ".join(
        _escape(d.actor_label) + (" (break glass)" if d.break_glass else "") for d in view.decisions if d.approve
    )
    blocks: list[Block] = [
        {"type": "header", "text": {"type": "plain_text", "text": f"#{view.id} {view.action_label}"[:150]}},
        {
            "type": "section",
            "fields": [
                {"type": "mrkdwn", "text": f"*State*\n{state.label}"},
                {"type": "mrkdwn", "text": f"*Requested by*\n{_escape(view.requester_label)}"},
                {"type": "mrkdwn", "text": f"*Devices*\n{view.devices_label}"},
                {
                    "type": "mrkdwn",
                    "text": f"*Approvals*\n{view.approvals_given}/{view.required_approvals}"
                    + (f" ({approvers})" if approvers else ""),
                },
            ],
        },
        _section(f"*Reason:* {_escape(view.reason or '—')}\n*Target:* `{_escape(view.target_text)}`"),
        _section(_device_lines(view)),
    ]
    rejection = view.rejection if state is RequestState.REJECTED else None
    if rejection is not None:
        why = _escape((rejection.reason or "no reason given")[:500])
        blocks.insert(2, _section(f"*Rejected by {_escape(rejection.actor_label)}:* {why}"))
    if view.exclusions:
        blocks.append(_section(f"*Excluded ({view.exclusion_count})*\n{_exclusion_lines(view)}"))
    for warning in view.warnings[:MAX_WARNINGS]:
        blocks.append(_section(f":warning: {_escape(warning)}"))
    if view.order_note:
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": _escape(view.order_note)}]})
    if view.progress is not None and state is not RequestState.PENDING:
        blocks.append(_section(f"*Progress:* {view.progress.sentence()}"))
    context = f"Request #{view.id}"
    if state is RequestState.PENDING and view.expires_at:
        context += f" · expires <!date^{int(view.expires_at.timestamp())}^{{time}}|{view.expires_at:%H:%M} UTC>"
    blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": context}]})
    buttons: list[Block] = []
    value = str(view.id)
    if state is RequestState.PENDING:
        buttons += [
            {
                "type": "button",
                "action_id": ActionId.APPROVE,
                "style": "primary",
                "value": value,
                "text": {"type": "plain_text", "text": "Approve"},
            },
            {
                "type": "button",
                "action_id": ActionId.REJECT,
                "style": "danger",
                "value": value,
                "text": {"type": "plain_text", "text": "Reject"},
            },
        ]
        if view.excludes_protected:
            buttons.append(
                {
                    "type": "button",
                    "action_id": ActionId.BREAK_GLASS,
                    "value": value,
                    "text": {"type": "plain_text", "text": "Approve incl. protected (break glass)"},
                }
            )
    if view.device_count > PREVIEW_ROWS:
        buttons.append(
            {
                "type": "button",
                "action_id": ActionId.SHOW_ALL,
                "value": value,
                "text": {"type": "plain_text", "text": "Show all devices"},
            }
        )
    if buttons:
        blocks.append({"type": "actions", "block_id": f"{BlockId.REQUEST}_{view.id}", "elements": buttons})
    return blocks


def fallback_text(view: RequestView) -> str:
    return f"Request #{view.id}: {view.action_label} on {view.device_count} device(s) · {view.state}"


def reason_modal(request_id: int, *, break_glass: bool) -> dict[str, Any]:
    title = "Break-glass approval" if break_glass else "Reject request"
    label = "Why must protected devices be included?" if break_glass else "Why are you rejecting it?"
    return {
        "type": "modal",
        "callback_id": ModalId.BREAK_GLASS if break_glass else ModalId.REJECT,
        "private_metadata": str(request_id),
        "title": {"type": "plain_text", "text": title},
        "submit": {"type": "plain_text", "text": "Submit"},
        "blocks": [
            {
                "type": "input",
                "block_id": BlockId.REASON,
                "label": {"type": "plain_text", "text": label},
                "element": {"type": "plain_text_input", "action_id": InputId.REASON, "multiline": True},
            }
        ],
    }


def _mention(mention: str) -> str:
    """A rule's ``mention``: a user-group id (S…), a user id (U…/W…), here/channel, or plain text."""
    if mention in ("here", "channel"):
        return f"<!{mention}>"
    if mention[:1] == "S" and mention.isalnum():
        return f"<!subteam^{mention}>"
    if mention[:1] in ("U", "W") and mention.isalnum():
        return f"<@{mention}>"
    return _escape(mention)


def incident_blocks(view: IncidentView) -> list[Block]:
    icon = ":white_check_mark:" if view.closed else ":rotating_light:"
    devices = [f"`{_escape(name)}`" for name in view.devices[:20]]
    if len(view.devices) > 20:
        devices.append(f"_and {len(view.devices) - 20} more_")
    blocks: list[Block] = [
        {"type": "header", "text": {"type": "plain_text", "text": f"{view.headline()}"[:150]}},
        {
            "type": "section",
            "fields": [
                {"type": "mrkdwn", "text": f"*Severity*\n{_escape(view.severity)}"},
                {"type": "mrkdwn", "text": f"*Status*\n{icon} {_escape(view.status)}"},
                {"type": "mrkdwn", "text": f"*Source*\n{_escape(view.source_label)}"},
                {"type": "mrkdwn", "text": f"*Product*\n{_escape(view.product or '—')}"},
            ],
        },
        _section(f"*Devices ({len(view.devices)})*\n" + (", ".join(devices) or "_none named_")),
    ]
    context = f"Incident {_escape(view.external_id)} · war-room thread: requests and results for it go here"
    if view.url and view.url.startswith("https://"):
        context += f" · <{view.url}|open in the portal>"
    blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": context[:2900]}]})
    if view.mention:
        blocks.insert(0, _section(f"{_mention(view.mention)} new incident"))
    return blocks


def incident_text(view: IncidentView) -> str:
    return view.headline()
