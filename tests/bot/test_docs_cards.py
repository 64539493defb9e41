"""docs/cards.md shows the cards the bot sends today: the page is generated from the card fixtures."""

from __future__ import annotations

import re

from tests.support.card_pictures import IMAGES, PAGE, markdown


def test_docs_cards_md_is_generated_from_the_current_cards_and_every_picture_is_there() -> None:
    assert PAGE.read_text(encoding="utf-8") == markdown(), "docs/cards.md is stale: run scripts/card-pictures"
    pictures = re.findall(r"\(images/cards/([\w-]+\.png)\)", markdown())
    assert pictures and all((IMAGES / name).stat().st_size < 80_000 for name in pictures)
