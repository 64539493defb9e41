"""Slack's documented Block Kit limits, checked on a payload: each check returns the problems it finds.

Limits from Slack's reference (docs.slack.dev/reference/block-kit/…): blocks/section-block (text 3,000,
fields 10 of 2,000, block_id 255), blocks/header-block (150), blocks/actions-block (25 elements),
blocks/context-block (10 elements), blocks/input-block (label 2,000), block-elements/button-element
(text 75, value 2,000, action_id 255), composition-objects/text-object (3,000), surfaces/modal (title and
submit 24, private_metadata 3,000, callback_id 255, 100 blocks), and a message's 50 blocks
(docs.slack.dev/reference/methods/chat.postMessage: "blocks" … up to 50).
"""

from __future__ import annotations

from typing import Any

MESSAGE_BLOCKS, MODAL_BLOCKS = 50, 100


def _over(what: str, value: str | None, limit: int) -> list[str]:
    return [f"{what}: {len(value)} > {limit}"] if value is not None and len(value) > limit else []


def _text(obj: dict[str, Any] | None) -> str | None:
    return None if obj is None else str(obj.get("text", ""))


def block_problems(block: dict[str, Any]) -> list[str]:
    kind = block.get("type")
    found = _over(f"{kind} block_id", block.get("block_id"), 255)
    if kind == "header":
        found += _over("header text", _text(block.get("text")), 150)
    elif kind == "section":
        found += _over("section text", _text(block.get("text")), 3000)
        fields = block.get("fields") or []
        found += [f"section fields: {len(fields)} > 10"] if len(fields) > 10 else []
        for field in fields:
            found += _over("section field", _text(field), 2000)
    elif kind == "context":
        elements = block.get("elements") or []
        found += [f"context elements: {len(elements)} > 10"] if len(elements) > 10 else []
        for element in elements:
            found += _over("context text", _text(element), 3000)
    elif kind == "actions":
        elements = block.get("elements") or []
        found += [f"actions elements: {len(elements)} > 25"] if len(elements) > 25 else []
        for element in elements:
            found += _over("button text", _text(element.get("text")), 75)
            found += _over("button value", element.get("value"), 2000)
            found += _over("button action_id", element.get("action_id"), 255)
    elif kind == "input":
        found += _over("input label", _text(block.get("label")), 2000)
        found += _over("input action_id", (block.get("element") or {}).get("action_id"), 255)
    return found


def message_problems(blocks: list[dict[str, Any]]) -> list[str]:
    found = [f"message blocks: {len(blocks)} > {MESSAGE_BLOCKS}"] if len(blocks) > MESSAGE_BLOCKS else []
    return found + [p for block in blocks for p in block_problems(block)]


def modal_problems(view: dict[str, Any]) -> list[str]:
    blocks = view.get("blocks") or []
    found = [f"modal blocks: {len(blocks)} > {MODAL_BLOCKS}"] if len(blocks) > MODAL_BLOCKS else []
    found += _over("modal title", _text(view.get("title")), 24)
    found += _over("modal submit", _text(view.get("submit")), 24)
    found += _over("modal private_metadata", view.get("private_metadata"), 3000)
    found += _over("modal callback_id", view.get("callback_id"), 255)
    return found + [p for block in blocks for p in block_problems(block)]
