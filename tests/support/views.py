"""Request views for rendering tests: the largest card a surface must still fit within its limits."""

from __future__ import annotations

from datetime import UTC, datetime

from approvals.views import DeviceRow, ExclusionRow, ProgressView, RequestView


def huge_view(*, state: str, name_suffix: str, devices: int = 5000, exclusion_kind: str = "inactive") -> RequestView:
    """``devices`` rows with hostile names, 300 exclusions, long reason, target and warnings."""
    now = datetime.now(UTC)
    return RequestView(
        id=7,
        action="isolate",
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
        required_approvals=2,
        decisions=(),
        created_at=now,
        expires_at=now,
        warnings=("a" * 4000,) * 5,
        progress=ProgressView(total=devices, submitted=10),
    )
