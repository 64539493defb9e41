"""The content of every Teams card: what a reader needs is there, once, within Teams' limits.

(tests/bot/teams/test_rendered_cards.py runs the same cards through Microsoft's renderer.)"""

from __future__ import annotations

import json
import re

import pytest

from bot.teams import cards
from tests.support import card_checks
from tests.support.card_fixtures import Fixture, all_devices_cjk, cjk_devices, fixtures, request_view
from tests.support.views import huge_view


@pytest.mark.parametrize("fixture", fixtures(), ids=lambda f: f.name)
def test_every_card_passes_every_check(fixture: Fixture) -> None:
    assert card_checks.all_problems(fixture.card) == {}


def test_the_checks_catch_each_kind_of_defect() -> None:
    """Each check fails on a card that has its defect (the defects the first Teams renders showed)."""
    card: cards.Card = {
        "type": "AdaptiveCard",
        "body": [
            {"type": "TextBlock", "text": "Summary. 1 failed\n  ✗ ws-1: Failed"},
            {"type": "TextBlock", "text": "- **ws-1** · Failed\n- **ws-"},
            {"type": "FactSet", "facts": [{"title": "Reason", "value": "x" * 5000}]},
            {"type": "TextBlock", "text": "… and 1617 more (see the CSV)"},
            {"type": "TextBlock", "text": "経" * 5000},
            {"type": "Input.Text", "id": "reason"},
            {"type": "Input.Text", "id": "reason"},
        ],
        "refresh": {"action": {"type": "Action.Execute", "verb": "mde_refresh"}},
    }
    assert set(card_checks.all_problems(card)) == {
        "duplicate input ids",
        "collapsed line breaks",
        "broken markdown",
        "long facts",
        "size",
        "no fallbackText",
        "mentions a CSV Teams never gets",
        "refresh without userIds",
    }


def test_the_request_card_has_two_buttons_in_sight_and_the_rest_in_the_menu() -> None:
    actions = cards.request_card(request_view())["actions"]
    primary = [a["title"] for a in actions if a.get("mode") != "secondary"]
    secondary = [a["title"] for a in actions if a.get("mode") == "secondary"]
    assert primary == ["Approve", "Reject"] and secondary == ["Break glass", "Show all devices"]


def test_a_summary_lists_each_failed_device_once() -> None:
    card = next(f.card for f in fixtures() if f.name == "summary-partially-failed")
    text = json.dumps(card)
    assert "10 failed" in text
    for i in range(0, 30, 3):
        assert text.count(f"ws-{24 + i * 7:04d}") == 1


def test_a_5000_device_summary_shows_whole_rows_and_counts_the_rest() -> None:
    card = next(f.card for f in fixtures() if f.name == "summary-5000-partially-failed")
    listed = next(t for t in card_checks.texts(card) if t.startswith("**Did not succeed"))
    rows = [line for line in listed.split("\n") if line.startswith("- **ws-")]
    more = re.search(r"and (\d+) more", listed)
    assert more is not None and len(rows) + int(more.group(1)) == 1667
    assert all(row.endswith("device unreachable") for row in rows)


def test_a_rejected_card_says_who_rejected_it_and_why() -> None:
    card = next(f.card for f in fixtures() if f.name == "request-rejected")
    facts = {f["title"]: f["value"] for n in card_checks.walk(card) if n.get("type") == "FactSet" for f in n["facts"]}
    assert facts["Rejected by"].startswith("bob: wrong tag")
    assert [a["title"] for a in card["actions"]] == ["Show all devices"]


def test_reason_and_target_are_capped_and_every_card_stays_under_28kb_for_5000_hostile_devices() -> None:
    view = huge_view(state="pending", name_suffix="[x](http://evil)*", exclusion_kind="protected")
    for card in (cards.request_card(view), cards.all_devices_card(view, view.devices), cards.summary_card(view)):
        assert card_checks.all_problems(card) == {}
        assert "[x](http://evil)" not in json.dumps(card)  # a name cannot become a link
    preview = next(t for t in card_checks.texts(cards.request_card(view)) if "ws-00000" in t)
    shown = preview.count("- **ws-")
    assert 0 < shown <= 15 and f"and {5000 - shown} more" in preview


def test_show_all_with_japanese_names_budgets_bytes_and_counts_the_rest() -> None:
    card = cards.all_devices_card(all_devices_cjk(), cjk_devices())
    assert card_checks.size_problems(card) == []
    shown = sum(t.count("\n- ") + 1 for t in card_checks.texts(card) if t.startswith("- "))
    more = re.search(r"and (\d+) more", card_checks.texts(card)[-1])
    assert more is not None and shown + int(more.group(1)) == 5000


def test_the_all_devices_card_of_a_small_request_lists_all_and_counts_none() -> None:
    view = request_view()
    card = cards.all_devices_card(view, view.devices)
    assert "more" not in json.dumps(card) and json.dumps(card).count("contoso.local") == 31
