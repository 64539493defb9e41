"""Pause the cyclic garbage collector around one synchronous bulk parse.

Decoding a 10,000-device page and mapping it to ``Machine`` records allocates hundreds of thousands of
containers, none of them in a reference cycle; each allocation counts towards the collector's thresholds, so
a 100,000-device listing set off full collections that walked every live object again and again: most of the
listing's CPU (issue 18, profiled). msgpack's documentation gives the same advice for large messages. The pause
covers synchronous code only (no ``await`` inside), so nothing else runs while it lasts; reference counting
still frees everything as usual, and the collector resumes, with the same thresholds, when the block ends.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def cyclic_gc_paused() -> Iterator[None]:
    """Disable automatic cyclic collection for the block (re-enabled after it, unless it was off before)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
