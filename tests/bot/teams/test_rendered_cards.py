"""Every Teams card through Microsoft's own renderer (npm adaptivecards, Teams light host config, schema 1.5)
in headless Chromium: no parse error, no validation warning, every button title readable, no markdown left
over on screen, and a PNG of each."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.card_fixtures import Fixture, fixtures
from tests.support.card_renderer import CardRenderer, card_renderer

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def renderer() -> Iterator[CardRenderer]:
    with card_renderer() as instance:
        yield instance


def _problems(result: dict[str, object]) -> dict[str, object]:
    buttons = result["buttons"]
    assert isinstance(buttons, list)
    found = {
        "events": result["events"],
        "cut button titles": [b["title"] for b in buttons if b["truncated"]],
        "markdown on screen": "**" in str(result["text"]),
        "not rendered": not result["rendered"],
    }
    return {k: v for k, v in found.items() if v}


@pytest.mark.parametrize("fixture", fixtures(), ids=lambda f: f.name)
def test_microsofts_renderer_parses_validates_and_renders_every_card(
    renderer: CardRenderer, fixture: Fixture, tmp_path: Path
) -> None:
    assert _problems(renderer.check(fixture.card)) == {}
    if fixture.open_button:  # the reason inputs: open the ShowCard that holds them
        renderer.open(fixture.open_button)
        label = fixture.card_label()
        assert label and label in renderer.visible_text()
    picture = tmp_path / f"{fixture.name}.png"
    renderer.screenshot(picture)
    assert picture.read_bytes().startswith(PNG) and picture.stat().st_size > 2_000


def test_the_renderer_check_catches_squeezed_buttons_duplicate_ids_and_cut_markdown(renderer: CardRenderer) -> None:
    """The defects the first renders showed, as the renderer reports them."""
    reason = {"type": "Input.Text", "id": "reason", "label": "Why?"}
    titles = ["Approve", "Reject", "Approve incl. protected (break glass)", "Show all devices"]
    card = {
        "type": "AdaptiveCard",
        "version": "1.5",
        "body": [{"type": "TextBlock", "text": "- **ws-0001** · Failed\n- **ws-", "wrap": True}, reason],
        "actions": [
            {"type": "Action.ShowCard", "title": t, "card": {"type": "AdaptiveCard", "body": [reason]}} for t in titles
        ],
    }
    problems = _problems(renderer.check(card))
    assert {e["event"] for e in problems["events"]} == {"DuplicateId"}  # type: ignore[union-attr]
    assert problems["cut button titles"] == titles
    assert problems["markdown on screen"] is True
