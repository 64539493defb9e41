"""Which devices are protected (never touched without break-glass) or carry a warning."""

from __future__ import annotations

import fnmatch
import functools
import re
from dataclasses import dataclass
from typing import Literal

from approvals.policy.models import ProtectionPolicy
from mde.models import Machine


@dataclass(frozen=True, slots=True)
class Protection:
    level: Literal["none", "warn", "protected"]
    reason: str | None = None


NONE = Protection("none")


@functools.lru_cache(maxsize=64)
def _compiled(patterns: tuple[str, ...]) -> list[tuple[str, re.Pattern[str]]]:
    return [(p, re.compile(fnmatch.translate(p.lower()))) for p in patterns]


def _name_matches(machine: Machine, patterns: list[str]) -> str | None:
    if not patterns:
        return None
    full = machine.computer_dns_name.lower()
    short = full.split(".", 1)[0]
    for pattern, regex in _compiled(tuple(patterns)):
        if regex.match(full) or regex.match(short):
            return pattern
    return None


def classify(machine: Machine, policy: ProtectionPolicy) -> Protection:
    tags = {t.lower(): t for t in machine.machine_tags}
    for tag in policy.protected_tags:
        if tag.lower() in tags:
            return Protection("protected", f"tagged '{tags[tag.lower()]}'")
    group = (machine.rbac_group_name or "").lower()
    for name in policy.protected_groups:
        if name.lower() == group:
            return Protection("protected", f"in the protected device group '{machine.rbac_group_name}'")
    pattern = _name_matches(machine, policy.protected_names)
    if pattern:
        return Protection("protected", f"name matches the protected pattern '{pattern}'")
    if any(t.lower() in tags for t in policy.warn_tags) or _name_matches(machine, policy.warn_names):
        return Protection("warn", policy.warn_reason)
    return NONE
