"""Known tag, group and device names, for "did you mean" suggestions.

Built from one streamed listing only when a target matched nothing, then cached for a while: the
happy path never pays for it.
"""

from __future__ import annotations

import difflib
import time
from dataclasses import dataclass, field

from mde.client import MdeClient


@dataclass
class Catalog:
    tags: set[str] = field(default_factory=set)
    groups: set[str] = field(default_factory=set)
    names: set[str] = field(default_factory=set)


class CatalogCache:
    def __init__(self, client: MdeClient, ttl_s: float = 600.0) -> None:
        self._client = client
        self._ttl = ttl_s
        self._value: Catalog | None = None
        self._at = 0.0

    async def get(self) -> Catalog:
        if self._value is None or time.monotonic() - self._at > self._ttl:
            catalog = Catalog()
            async for machine in self._client.iter_machines():
                catalog.tags.update(machine.machine_tags)
                if machine.rbac_group_name:
                    catalog.groups.add(machine.rbac_group_name)
                catalog.names.add(machine.computer_dns_name)
            self._value, self._at = catalog, time.monotonic()
        return self._value


def did_you_mean(value: str, candidates: set[str]) -> str | None:
    """The closest known spelling, compared case-insensitively; None when nothing is close."""
    lowered = {c.lower(): c for c in candidates}
    match = difflib.get_close_matches(value.lower(), list(lowered), n=1, cutoff=0.6)
    return lowered[match[0]] if match else None
