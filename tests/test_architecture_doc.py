"""docs/architecture.md names real modules: a file moved or renamed without the page fails here."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PAGE = ROOT / "docs" / "architecture.md"


def test_every_module_the_architecture_page_names_exists() -> None:
    named = set(re.findall(r"`((?:bot|approvals|mde)/[\w/]*\w(?:\.py)?/?)`", PAGE.read_text()))
    assert len(named) > 20
    missing = sorted(path for path in named if not (ROOT / path).exists())
    assert not missing, missing
