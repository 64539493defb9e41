"""Request views for rendering tests: the largest card a surface must still fit within its limits."""

from __future__ import annotations

import dataclasses
from collections import Counter
from datetime import UTC, datetime

from approvals.requests.models import NOT_SUCCEEDED_DEVICE_STATES
from approvals.requests.views import VIEW_ROWS
from approvals.verbs import Verb
from approvals.views import DeviceCounts, DeviceRow, ExclusionRow, OutcomeCount, ProgressView, RequestView


def counted(view: RequestView) -> RequestView:
    """The view as ``build_view`` makes it of these rows: counts over all of them, then only the first rows of
    each list (a view never holds every device, so a renderer that needs more than the first shows it)."""
    devices, exclusions = view.devices, view.exclusions
    not_succeeded = [d for d in devices if d.state in NOT_SUCCEEDED_DEVICE_STATES]
    warned = [d for d in devices if d.warning]
    counts = DeviceCounts(
        total=len(devices),
        by_state=tuple(Counter(d.state for d in devices).items()),
        not_succeeded=tuple(not_succeeded[:VIEW_ROWS]),
        not_succeeded_total=len(not_succeeded),
        warned=tuple(warned[:VIEW_ROWS]),
        warned_total=len(warned),
        exclusions_total=len(exclusions),
        exclusion_kinds=frozenset(e.kind for e in exclusions),
        outcomes=tuple(OutcomeCount(s, e, n) for (s, e), n in Counter((d.state, d.error) for d in devices).items()),
    )
    return dataclasses.replace(view, devices=devices[:VIEW_ROWS], exclusions=exclusions[:VIEW_ROWS], counts=counts)


def huge_view(*, state: str, name_suffix: str, devices: int = 5000, exclusion_kind: str = "inactive") -> RequestView:
    """``devices`` rows with hostile names, 300 exclusions, long reason, target and warnings."""
    now = datetime.now(UTC)
    return counted(
        RequestView(
            id=7,
            action=Verb.ISOLATE,
            action_label="Isolate (Full)",
            state=state,
            requester_label="alice",
            reason="x" * 5000,
            target_text="tag:" + "y" * 4000,
            devices=tuple(
                DeviceRow(
                    machine_id=f"{i:040x}",
                    name=f"ws-{i:05d}{name_suffix}",
                    os_platform="Windows11",
                    health_status="Active",
                    state="Pending",
                    warning="w" * 300,
                )
                for i in range(devices)
            ),
            exclusions=tuple(ExclusionRow(name=f"x-{i}", reason="r" * 400, kind=exclusion_kind) for i in range(300)),
            counts=DeviceCounts(total=0),
            required_approvals=2,
            decisions=(),
            created_at=now,
            expires_at=now,
            warnings=("a" * 4000,) * 5,
            progress=ProgressView(total=devices, submitted=10),
        )
    )
