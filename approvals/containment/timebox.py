"""Time-boxed isolation: ``isolate … --for 8h`` / ``--until 2026-12-03T18:00Z`` in a request's params, and the
planned end it gives a containment."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from approvals.commands.models import ActionCommand


def time_box_params(command: ActionCommand) -> dict[str, Any]:
    """``{"planned_release": {"after_s": 28800, "after": "8h"}}`` or ``{"planned_release": {"at": ISO}}``."""
    if command.release_after is not None:
        seconds = int(command.release_after.total_seconds())
        return {"planned_release": {"after_s": seconds, "after": _span(seconds)}}
    if command.release_at is not None:
        return {"planned_release": {"at": command.release_at.isoformat()}}
    return {}


def planned_end(params: dict[str, Any], isolated_at: datetime) -> datetime | None:
    planned = params.get("planned_release")
    if not isinstance(planned, dict):
        return None
    if planned.get("at"):
        return datetime.fromisoformat(str(planned["at"]))
    return isolated_at + timedelta(seconds=int(planned.get("after_s") or 0))


def _span(seconds: int) -> str:
    for unit, size in (("w", 604800), ("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"
