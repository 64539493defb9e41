"""``mde-chatops audit export``: the audit log as CSV or JSON Lines, for a SIEM."""

from __future__ import annotations

import csv
import json
from datetime import datetime
from typing import TextIO

from approvals.audit.service import entry_dict, iter_audit
from approvals.db import Database

CSV_FIELDS = [
    "id",
    "at",
    "event",
    "actor",
    "actor_label",
    "actor_email",
    "surface",
    "channel_id",
    "request_id",
    "verb",
    "devices",
    "action_ids",
    "outcome",
    "text",
    "details",
]


async def export_audit(
    db: Database,
    out: TextIO,
    *,
    fmt: str = "json",
    since: datetime | None = None,
    until: datetime | None = None,
) -> int:
    """Write every entry in range to ``out``; returns how many were written."""
    count = 0
    writer = None
    if fmt == "csv":
        writer = csv.DictWriter(out, fieldnames=CSV_FIELDS)
        writer.writeheader()
    elif fmt != "json":
        raise ValueError(f"unknown format {fmt!r}: use csv or json")
    async for row in iter_audit(db, since=since, until=until):
        data = entry_dict(row)
        if writer is not None:
            data["devices"] = " ".join(data["devices"])
            data["action_ids"] = " ".join(data["action_ids"])
            data["details"] = json.dumps(data["details"], sort_keys=True)
            writer.writerow(data)
        else:
            out.write(json.dumps(data, sort_keys=True) + "\n")
        count += 1
    return count
