"""Riskiest first: the order in which a large request's devices are submitted, and what the card says of it.

Past MDE's limits (100 actions a minute, 1,500 an hour per action family, from each action's API page, e.g.
learn.microsoft.com/defender-endpoint/api/isolate-machine "Limitations"), a 3,000-device isolation runs for
two hours, so the order matters. Devices go in this order of classes:

1. named by the incident the request acts on (its entities: the hosts the attack was seen on), or with an
   unresolved MDE alert (one listing of the tenant's alerts per request: ``approvals.resolution.alerts``);
2. MDE's own ``riskScore`` High, then 3. Medium (the machine entity's "Risk score as evaluated by Microsoft
   Defender for Endpoint", values None, Informational, Low, Medium, High: defender-endpoint/api/machine.md);
4. the rest.

Within a class, a higher ``exposureLevel`` (None, Low, Medium, High; same page) goes first, then the name.
The number is stored with each device of the frozen snapshot (``request_devices.priority``): jobs are created
in that order and claimed in job order, so no later read of MDE can reorder what the approver saw.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from enum import IntEnum

from mde.models import Machine

_EXPOSURE = {"High": 0, "Medium": 1, "Low": 2, "None": 3}
_UNKNOWN_EXPOSURE = 4
#: a request smaller than this goes out in the first minute anyway: the card says nothing of order
ORDER_WORTH_SAYING = 100


class RiskClass(IntEnum):
    INCIDENT = 0
    HIGH = 1
    MEDIUM = 2
    OTHER = 3

    @property
    def label(self) -> str:
        return _LABELS[self]


_LABELS = {
    RiskClass.INCIDENT: "alerted or named by the incident",
    RiskClass.HIGH: "High risk",
    RiskClass.MEDIUM: "Medium risk",
    RiskClass.OTHER: "the rest",
}


def priority(machine: Machine, *, named_by_incident: bool, alerted: bool = False) -> int:
    """Lower goes first: ten per class, plus the exposure level within it."""
    if named_by_incident or alerted:
        risk = RiskClass.INCIDENT
    elif machine.risk_score == "High":
        risk = RiskClass.HIGH
    elif machine.risk_score == "Medium":
        risk = RiskClass.MEDIUM
    else:
        risk = RiskClass.OTHER
    return 10 * risk + _EXPOSURE.get(machine.exposure_level or "", _UNKNOWN_EXPOSURE)


def risk_class(value: int) -> RiskClass:
    return RiskClass(min(max(value // 10, 0), RiskClass.OTHER))


def minutes_to_submit(count: int, *, per_minute: int = 100, per_hour: int = 1500) -> int:
    """Minutes until the ``count``-th device is submitted when the family's budget is all ours."""
    if count <= 0:
        return 0
    before = count - 1
    return 60 * (before // per_hour) + (before % per_hour) // per_minute


def _duration(minutes: int) -> str:
    if minutes < 1:
        return "in the first minute"
    if minutes < 60:
        return f"within about {minutes} min"
    hours, rest = divmod(minutes, 60)
    return f"within about {hours} h {rest} min" if rest else f"within about {hours} h"


def order_sentence(
    priorities: Iterable[int] | Mapping[int, int], *, per_minute: int = 100, per_hour: int = 1500
) -> str | None:
    """What the card says of the order: the classes, and when each is all submitted (None when it is moot).
    ``priorities``: one per device, or devices per priority (a request view's GROUP BY, never 100,000 ints)."""
    counts: Counter[RiskClass] = Counter()
    for value, devices in priorities.items() if isinstance(priorities, Mapping) else ((p, 1) for p in priorities):
        counts[risk_class(value)] += devices
    total = sum(counts.values())
    if total <= min(ORDER_WORTH_SAYING, per_minute):
        return None
    parts, eta, done = [], [], 0
    for cls in RiskClass:
        if not counts[cls]:
            continue
        done += counts[cls]
        parts.append(f"{counts[cls]:,} {cls.label}")
        when = _duration(minutes_to_submit(done, per_minute=per_minute, per_hour=per_hour))
        eta.append(f"{cls.label} {when}" if cls is not RiskClass.OTHER else f"all {when}")
    return f"Riskiest first: {', '.join(parts)}. Submitted: {'; '.join(eta)}."
