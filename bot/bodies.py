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


def nesting_depth(value: Any, stop_above: int | None = None) -> int:
    """How deep arrays and objects nest in a parsed value, level by level without recursion (and no
    further than one level past ``stop_above``)."""
    depth = 0
    level = [value] if isinstance(value, dict | list) else []
    while level and (stop_above is None or depth <= stop_above):
        depth += 1
        below: list[Any] = []
        for item in level:
            below.extend(c for c in (item.values() if isinstance(item, dict) else item) if isinstance(c, dict | list))
        level = below
    return depth


def loads(body: bytes | str, max_depth: int = MAX_DEPTH) -> Any:
    """The parsed body, or ``BodyError`` (not JSON, or deeper than the parser itself goes). Its depth is
    not checked yet: ``check_depth`` does that, after the caller is authenticated if the route can."""
    try:
        return json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BodyError(f"the body is not JSON: {exc}") from None
    except RecursionError:
        raise _too_deep(max_depth) from None


def check_depth(value: Any, max_depth: int = MAX_DEPTH) -> None:
    if nesting_depth(value, stop_above=max_depth) > max_depth:
        raise _too_deep(max_depth)


def loads_bounded(body: bytes | str, max_depth: int = MAX_DEPTH) -> Any:
    """The parsed body, or ``BodyError`` (not JSON, or nested deeper than ``max_depth``)."""
    value = loads(body, max_depth)
    check_depth(value, max_depth)
    return value


def _too_deep(max_depth: int) -> BodyError:
    return BodyError(f"the body is nested too deeply (more than {max_depth} levels)")
