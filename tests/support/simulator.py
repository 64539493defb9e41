"""What the MDE simulator was asked: the calls the real client made over HTTP, filtered by family and method."""

from __future__ import annotations

from mde.simulator import Simulator


def calls(sim: Simulator, family: str | None = None, method: str | None = None) -> list:  # type: ignore[type-arg]
    return [
        e for e in sim.request_log if (family is None or e.family == family) and (method is None or e.method == method)
    ]
