"""Read an inbound JSON body with its nesting depth bounded, before anything else touches it.

Python's parser and everything after it (the ORM's JSON columns, logging, re-serialisation) recurse per
level: a body a few hundred levels deep parses and then fails later with ``RecursionError``. No Slack,
Teams, Sentinel or Graph payload comes close to ``MAX_DEPTH``, so deeper bodies are refused up front.
"""

from __future__ import annotations

import json
from typing import Any

MAX_DEPTH = 64


class BodyError(ValueError):
    """The body is not JSON this service reads; the message says why, in one sentence."""


def nesting_depth(value: Any) -> int:
    """How deep arrays and objects nest in a parsed value, walked without recursion."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        deepest = max(deepest, depth + 1)
        stack.extend((child, depth + 1) for child in children)
    return deepest


def loads_bounded(body: bytes | str, max_depth: int = MAX_DEPTH) -> Any:
    """The parsed body, or ``BodyError`` (not JSON, or nested deeper than ``max_depth``)."""
    too_deep = BodyError(f"the body is nested too deeply (more than {max_depth} levels)")
    try:
        value = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BodyError(f"the body is not JSON: {exc}") from None
    except RecursionError:  # deeper than the parser itself goes
        raise too_deep from None
    if nesting_depth(value) > max_depth:
        raise too_deep
    return value
