"""``mde-chatops audit export --containments``: the containment register as CSV or JSON Lines."""

from __future__ import annotations

import csv
import json
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any, TextIO

from approvals.containment import service as store
from approvals.containment.models import Containment
from approvals.db import Database

FIELDS = [
    "id",
    "machine_id",
    "device_name",
    "isolation_type",
    "source",
    "request_id",
    "incident_id",
    "requested_by",
    "approved_by",
    "adopted_by",
    "reason",
    "isolated_at",
    "planned_end",
    "mde_state",
    "mde_action_id",
    "confirmed_at",
    "released_at",
    "released_by",
    "release_request_id",
]


def containment_dict(row: Containment) -> dict[str, Any]:
    data = {name: getattr(row, name) for name in FIELDS}
    return {k: v.isoformat() if isinstance(v, datetime) else v for k, v in data.items()}


async def _rows(db: Database, since: datetime | None, until: datetime | None) -> AsyncIterator[Containment]:
    """Every containment isolated in range (open ones whatever their start), in id order, a batch at a time."""
    last_id = 0
    while True:
        async with db.sessions() as session:
            batch = await store.all_containments(session, last_id, 1000)
        if not batch:
            return
        for row in batch:
            in_range = (since is None or row.isolated_at >= since or row.released_at is None) and (
                until is None or row.isolated_at < until
            )
            if in_range:
                yield row
        last_id = batch[-1].id


async def export_containments(
    db: Database, out: TextIO, *, fmt: str = "json", since: datetime | None = None, until: datetime | None = None
) -> int:
    writer = None
    if fmt == "csv":
        writer = csv.DictWriter(out, fieldnames=FIELDS)
        writer.writeheader()
    elif fmt != "json":
        raise ValueError(f"unknown format {fmt!r}: use csv or json")
    count = 0
    async for row in _rows(db, since, until):
        data = containment_dict(row)
        if writer is not None:
            writer.writerow({k: "" if v is None else v for k, v in data.items()})
        else:
            out.write(json.dumps(data, sort_keys=True) + "\n")
        count += 1
    return count
