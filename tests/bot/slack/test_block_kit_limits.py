"""Every Block Kit payload the Slack surface sends, within Slack's documented limits
(tests/support/block_kit_checks.py cites each)."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from bot.slack.blocks import incident_blocks, reason_modal, request_blocks
from tests.support.block_kit_checks import message_problems, modal_problems
from tests.support.card_fixtures import incident_view, slack_messages, slack_modals
from tests.support.views import huge_view


@pytest.mark.parametrize("name", sorted(slack_messages()))
def test_every_message_is_within_slacks_limits(name: str) -> None:
    assert message_problems(slack_messages()[name]) == []  # type: ignore[arg-type]


@pytest.mark.parametrize("name", sorted(slack_modals()))
def test_every_modal_is_within_slacks_limits(name: str) -> None:
    assert modal_problems(slack_modals()[name]) == []


@pytest.mark.parametrize("state", ["pending", "executing", "rejected", "succeeded"])
def test_a_request_of_5000_hostile_devices_is_within_slacks_limits_in_every_state(state: str) -> None:
    view = huge_view(state=state, name_suffix=".contoso.local" + "<@U1>" * 3, exclusion_kind="protected")
    assert message_problems(request_blocks(view)) == []


def test_a_long_incident_title_and_many_devices_are_within_slacks_limits() -> None:
    view = incident_view()
    long = dataclasses.replace(view, title="t" * 5000, devices=tuple(f"ws-{i}" for i in range(5000)))
    assert message_problems(incident_blocks(long)) == []
    assert modal_problems(reason_modal(2**31, break_glass=True)) == []


def test_the_checks_name_each_limit_a_payload_breaks() -> None:
    button: dict[str, Any] = {"type": "button", "action_id": "a" * 256, "value": "v" * 2001, "text": {"text": "t" * 76}}
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": "h" * 151}},
        {"type": "section", "text": {"type": "mrkdwn", "text": "s" * 3001}, "fields": [{"text": "f" * 2001}] * 11},
        {"type": "context", "elements": [{"type": "mrkdwn", "text": "c"}] * 11},
        {"type": "actions", "block_id": "b" * 256, "elements": [button] * 26},
        *[{"type": "divider"}] * 47,
    ]
    found = {p.split(":")[0] for p in message_problems(blocks)}
    assert found == {
        "message blocks",
        "header text",
        "section text",
        "section fields",
        "section field",
        "context elements",
        "actions block_id",
        "actions elements",
        "button text",
        "button value",
        "button action_id",
    }
    modal = {"type": "modal", "title": {"text": "x" * 25}, "private_metadata": "m" * 3001, "blocks": []}
    assert {p.split(":")[0] for p in modal_problems(modal)} == {"modal title", "modal private_metadata"}
