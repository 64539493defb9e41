"""The bulk insert (COPY on PostgreSQL, one executemany on SQLite) stores exactly what SQLAlchemy's insert() does."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import Table, insert, select, text

from approvals.bulk import insert_columns
from approvals.db import Database
from approvals.requests.models import RequestDevice, RequestExclusion
from tests.support.records import add_request

DEVICES: Table = RequestDevice.__table__  # type: ignore[assignment]
EXCLUSIONS: Table = RequestExclusion.__table__  # type: ignore[assignment]
PARIS = timezone(timedelta(hours=1))

#: edge cases of every kind the snapshot stores: no date, a date in another zone, no tags, quotes and non-ASCII
ROWS: list[dict[str, Any]] = [
    {
        "machine_id": "a" * 40,
        "name": "ws-1.contoso.local",
        "os_platform": "Windows11",
        "health_status": "Active",
        "last_seen": datetime(2026, 12, 2, 12, 54, 50, 777953, tzinfo=UTC),
        "tags": ("Finance Laptops", "O'Brien's \"VIP\" é"),
        "group_name": "Tier0 Servers",
        "protection": "warn",
        "warning": "Hyper-V host: isolating it cuts off every guest VM",
        "priority": 13,
        "note": "alice last logon 2026-12-01 10:00 UTC",
    },
    {
        "machine_id": "b" * 40,
        "name": "mac-2",
        "os_platform": None,
        "health_status": None,
        "last_seen": None,
        "tags": (),
        "group_name": None,
        "protection": "none",
        "warning": None,
        "priority": 34,
        "note": None,
    },
    {
        "machine_id": "c" * 40,
        "name": "srv-3.contoso.local",
        "os_platform": "WindowsServer2022",
        "health_status": "Inactive",
        "last_seen": datetime(2026, 1, 2, 3, 4, 5, tzinfo=PARIS),
        "tags": ("Finance Laptops", "O'Brien's \"VIP\" é"),
        "group_name": "",
        "protection": "protected",
        "warning": "tagged 'Domain Controllers'",
        "priority": 0,
        "note": "",
    },
]


async def _stored(db: Database, table: Table, request_id: int) -> list[tuple[Any, ...]]:
    """The rows as the database holds them (no type processing on the way back), without id and request."""
    names = [c.name for c in table.columns if c.name not in ("id", "request_id")]
    query = f"SELECT {', '.join(names)} FROM {table.name} WHERE request_id = :r ORDER BY machine_id"
    async with db.sessions() as session:
        return [tuple(row) for row in (await session.execute(text(query), {"r": request_id})).all()]


async def test_devices_are_stored_as_sqlalchemy_stores_them(db: Database) -> None:
    async with db.transaction() as session:
        bulk, plain = (await add_request(session)).id, (await add_request(session)).id
        columns = {name: [row[name] for row in ROWS] for name in ROWS[0]}
        await insert_columns(session, DEVICES, {"request_id": [bulk] * len(ROWS), **columns})
        await session.execute(
            insert(DEVICES), [{**row, "tags": list(row["tags"]), "request_id": plain} for row in ROWS]
        )
    assert await _stored(db, DEVICES, bulk) == await _stored(db, DEVICES, plain)
    async with db.sessions() as session:
        read = (await session.execute(select(RequestDevice).where(RequestDevice.request_id == bulk))).scalars().all()
    by_id = {d.machine_id: d for d in read}
    assert by_id["a" * 40].tags == ["Finance Laptops", "O'Brien's \"VIP\" é"]
    assert by_id["c" * 40].last_seen == datetime(2026, 1, 2, 2, 4, 5, tzinfo=UTC)
    assert by_id["b" * 40].last_seen is None and by_id["b" * 40].tags == [] and by_id["b" * 40].state is None


async def test_rows_roll_back_with_the_transaction(db: Database) -> None:
    async with db.transaction() as session:
        request_id = (await add_request(session)).id
    with pytest.raises(RuntimeError):
        async with db.transaction() as session:
            await insert_columns(
                session,
                EXCLUSIONS,
                {
                    "request_id": [request_id],
                    "machine_id": [None],
                    "name": ["x"],
                    "kind": ["not_found"],
                    "reason": ["r"],
                },
            )
            raise RuntimeError("abort")
    assert await _stored(db, EXCLUSIONS, request_id) == []


async def test_no_rows_is_no_statement_and_bad_columns_are_refused(db: Database) -> None:
    async with db.transaction() as session:
        request_id = (await add_request(session)).id
        await insert_columns(session, EXCLUSIONS, {"request_id": [], "name": []})
        with pytest.raises(ValueError, match="no column"):
            await insert_columns(session, EXCLUSIONS, {"request_id": [request_id], "nmae": ["x"]})
        with pytest.raises(ValueError, match="every column"):
            await insert_columns(session, EXCLUSIONS, {"request_id": [request_id], "name": ["x", "y"]})
    assert await _stored(db, EXCLUSIONS, request_id) == []
