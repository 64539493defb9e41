"""Bounded JSON bodies: the limit is exact, strings do not count, and depth past the parser's is a refusal."""

from __future__ import annotations

import pytest

from bot.bodies import MAX_DEPTH, BodyError, loads_bounded, nesting_depth


def test_depth_counts_arrays_and_objects_not_strings() -> None:
    assert nesting_depth({"a": [1, {"b": []}], "c": "[[[[["}) == 4
    assert nesting_depth("[[[") == 0


def test_the_limit_is_exact() -> None:
    assert loads_bounded(b"[" * MAX_DEPTH + b"]" * MAX_DEPTH) is not None
    with pytest.raises(BodyError, match="nested too deeply"):
        loads_bounded(b"[" * (MAX_DEPTH + 1) + b"]" * (MAX_DEPTH + 1))


@pytest.mark.parametrize("body", [b"[" * 100_000 + b"]" * 100_000, b"{not json", b"\xff\xfe"])
def test_unreadable_bodies_are_one_error(body: bytes) -> None:
    with pytest.raises(BodyError):
        loads_bounded(body)
