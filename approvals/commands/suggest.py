"""Did-you-mean for verbs, options and target kinds."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def closest(word: str, candidates: Iterable[str], cutoff: float = 0.6) -> str | None:
    matches = difflib.get_close_matches(word.lower(), list(candidates), n=1, cutoff=cutoff)
    return matches[0] if matches else None
