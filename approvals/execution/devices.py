"""Batched writes of device rows: one statement per kind of change, whatever the batch size.

The job stores (``execution.service``) and the cancel stores (``execution.cancels``) both write a job's
devices; one executemany over (request, machine) pairs keeps a 500-job round one round trip.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Table, bindparam, func
from sqlalchemy.ext.asyncio import AsyncSession

from approvals.db import UTCDateTime
from approvals.execution.models import Job
from approvals.requests.models import DeviceState, RequestDevice

DEVICES: Table = RequestDevice.__table__  # type: ignore[assignment]
DEVICE_UPDATE = (
    DEVICES.update()
    .where(DEVICES.c.request_id == bindparam("b_request"), DEVICES.c.machine_id == bindparam("b_machine"))
    .values(
        state=bindparam("b_state"),
        action_id=func.coalesce(bindparam("b_action"), DEVICES.c.action_id),
        error=bindparam("b_error"),
        updated_at=bindparam("b_at", type_=UTCDateTime),
    )
)


def device_rows(
    job: Job, state: DeviceState, now: datetime, action_id: str | None = None, error: str | None = None
) -> list[dict[str, Any]]:
    """The ``DEVICE_UPDATE`` parameters for every device of ``job``."""
    return [
        {
            "b_request": job.request_id,
            "b_machine": m,
            "b_state": state,
            "b_action": action_id,
            "b_error": error,
            "b_at": now,
        }
        for m in job.machine_ids
    ]


async def update_devices(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    if rows:
        await session.execute(DEVICE_UPDATE, rows)
