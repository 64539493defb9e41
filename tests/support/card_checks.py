"""What every Teams card must satisfy, beyond what the renderer reports: each check returns the problems
it finds (empty when the card is fine), so a failing test names them."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

#: Teams' message size limit (about 28 KB), with the activity around the card in mind
TEAMS_CARD_BYTES = 28_000
#: a fact is one line in Teams: more than this is clipped, not wrapped
FACT_VALUE_CHARS = 500
_LIST_ITEM = re.compile(r"^(- |\* |\d+\. )")
_BOLD = re.compile(r"(?<!\\)\*\*")


def walk(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from walk(value)


def texts(card: dict[str, Any]) -> list[str]:
    return [n["text"] for n in walk(card) if n.get("type") == "TextBlock"]


def duplicate_input_ids(card: dict[str, Any]) -> list[str]:
    ids = [n["id"] for n in walk(card) if str(n.get("type", "")).startswith("Input.")]
    return sorted({i for i in ids if ids.count(i) > 1})


def collapsed_line_breaks(card: dict[str, Any]) -> list[str]:
    """Lines that Teams would run into one paragraph: a single newline breaks only between list items."""
    found = []
    for text in texts(card):
        for paragraph in text.split("\n\n"):
            lines = paragraph.split("\n")
            if len(lines) > 1 and not all(_LIST_ITEM.match(line) for line in lines):
                found.append(paragraph[:120])
    return found


def broken_markdown(card: dict[str, Any]) -> list[str]:
    """Lines with an odd number of ``**``: a cut row shows a literal ``**ws-…``."""
    return [line for text in texts(card) for line in text.split("\n") if len(_BOLD.findall(line)) % 2]


def long_facts(card: dict[str, Any]) -> list[str]:
    facts = [f for n in walk(card) if n.get("type") == "FactSet" for f in n["facts"]]
    return [f"{f['title']}: {len(f['value'])} characters" for f in facts if len(f["value"]) > FACT_VALUE_CHARS]


def size_problems(card: dict[str, Any]) -> list[str]:
    sent = len(json.dumps(card).encode())  # as the SDK sends it: non-ASCII \u-escaped
    utf8 = len(json.dumps(card, ensure_ascii=False).encode())
    return [f"{sent} bytes as sent, {utf8} in UTF-8"] if max(sent, utf8) > TEAMS_CARD_BYTES else []


def all_problems(card: dict[str, Any]) -> dict[str, list[str]]:
    """Every check that applies to any card; an empty dict means none failed."""
    found = {
        "duplicate input ids": duplicate_input_ids(card),
        "collapsed line breaks": collapsed_line_breaks(card),
        "broken markdown": broken_markdown(card),
        "long facts": long_facts(card),
        "size": size_problems(card),
        "no fallbackText": [] if card.get("fallbackText") else ["fallbackText is missing"],
        "mentions a CSV Teams never gets": [t[:80] for t in texts(card) if "CSV" in t],
    }
    if "refresh" in card and not isinstance(card["refresh"].get("userIds"), list):
        found["refresh without userIds"] = ["refresh.userIds is missing"]
    return {check: problems for check, problems in found.items() if problems}
