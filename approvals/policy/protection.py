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


class Classifier:
    """The protection rules compiled once (lower-cased names, glob patterns as regexes), then asked per device.

    A 100,000-device request asks 100,000 times: the rules are read once per request, not once per device.
    The first rule that holds decides, in the order ``classify`` documents.
    """

    def __init__(self, policy: ProtectionPolicy) -> None:
        self._protected_tags = [t.lower() for t in policy.protected_tags]
        self._protected_groups = {g.lower() for g in policy.protected_groups}
        self._protected_names = _compiled(policy.protected_names)
        self._warn_tags = [t.lower() for t in policy.warn_tags]
        self._warn_names = _compiled(policy.warn_names)
        self._warn = Protection("warn", policy.warn_reason)

    def __call__(self, machine: Machine) -> Protection:
        # by lower-cased tag, the device's own spelling (the last one, if two differ only in case)
        tags = {t.lower(): t for t in machine.machine_tags} if machine.machine_tags else {}
        if tags:
            for tag in self._protected_tags:
                if tag in tags:
                    return Protection("protected", f"tagged '{tags[tag]}'")
        if (machine.rbac_group_name or "").lower() in self._protected_groups:
            return Protection("protected", f"in the protected device group '{machine.rbac_group_name}'")
        full = machine.computer_dns_name.lower()
        short = full.split(".", 1)[0]
        pattern = _name_matches(full, short, self._protected_names)
        if pattern:
            return Protection("protected", f"name matches the protected pattern '{pattern}'")
        if (tags and any(t in tags for t in self._warn_tags)) or _name_matches(full, short, self._warn_names):
            return self._warn
        return NONE


def _compiled(patterns: list[str]) -> list[tuple[str, re.Pattern[str]]]:
    return [(p, _regex(p)) for p in patterns]


@functools.lru_cache(maxsize=256)
def _regex(pattern: str) -> re.Pattern[str]:
    return re.compile(fnmatch.translate(pattern.lower()))


def _name_matches(full: str, short: str, patterns: list[tuple[str, re.Pattern[str]]]) -> str | None:
    for pattern, regex in patterns:
        if regex.match(full) or regex.match(short):
            return pattern
    return None


def classify(machine: Machine, policy: ProtectionPolicy) -> Protection:
    """Protected: a protected tag (in the policy's order), the protected group, or a protected name pattern
    (the full DNS name or its short name); else warn: a warn tag or warn name pattern; else none. For many
    devices, build one ``Classifier`` and ask it."""
    return Classifier(policy)(machine)
