"""A request's view from storage: counts over every device, and only the first rows of each list.

The rows are written directly (no MDE): what is under test is which rows and counts ``build_view`` reads,
on SQLite and PostgreSQL, when the rows that matter are few among many and when they are most of them.
"""

from __future__ import annotations

import csv
import io
from typing import Any

from sqlalchemy import insert

from approvals.db import Database
from approvals.requests.models import DeviceState, RequestDevice
from approvals.requests.views import VIEW_ROWS, build_view, device_rows, result_pages, results_csv
from tests.support.records import add_request

N = 3000
PROTECTED = {5, 1500, 2999}  # few, and not among the first names
WARNED = {7, 2000}
FAILED_FEW = {11, 1200, 2500}


def _device(request_id: int, i: int, *, failed: set[int]) -> dict[str, Any]:
    protection = "protected" if i in PROTECTED else "warn" if i in WARNED else "none"
    return {
        "request_id": request_id,
        "machine_id": f"{i:040x}",
        "name": f"ws-{(i * 7) % N:05d}.contoso.local",  # names not in insertion order
        "tags": [],
        "protection": protection,
        "warning": None if protection == "none" else f"{protection} {i}",
        "priority": 10 if i % 100 == 0 else 30,
        "state": DeviceState.FAILED if i in failed else DeviceState.SUCCEEDED if failed else None,
        "error": "MDE reported the action as Failed" if i in failed else None,
    }


async def _request(db: Database, *, state: str, failed: set[int], break_glass: bool = False) -> int:
    async with db.transaction() as session:
        record = await add_request(session, state=state)
        record.touches_protected = True
        record.break_glass_by = "console:bob" if break_glass else None
        await session.execute(insert(RequestDevice), [_device(record.id, i, failed=failed) for i in range(N)])
        return record.id


async def test_a_pending_view_counts_every_device_and_holds_the_first_rows_by_name(db: Database) -> None:
    request_id = await _request(db, state="pending", failed=set())
    async with db.sessions() as session:
        view = await build_view(session, request_id)
    assert view is not None
    expected = sorted(f"ws-{(i * 7) % N:05d}.contoso.local" for i in range(N) if i not in PROTECTED)
    assert [d.name for d in view.devices] == expected[:VIEW_ROWS]
    assert view.device_count == N - len(PROTECTED) and view.counts.by_state == ((None, N - len(PROTECTED)),)
    assert [e.machine_id for e in view.exclusions] == [
        f"{i:040x}" for i in sorted(PROTECTED, key=lambda i: f"ws-{(i * 7) % N:05d}")
    ]
    assert view.exclusion_count == len(PROTECTED) and view.excludes_protected
    assert {d.warning for d in view.counts.warned} == {f"warn {i}" for i in WARNED}
    assert view.counts.warned_total == len(WARNED)
    high = sum(1 for i in range(0, N, 100) if i not in PROTECTED)
    assert view.order_note is not None and view.order_note.startswith(f"Riskiest first: {high} High")


async def test_a_few_failures_among_many_are_all_listed_and_counted(db: Database) -> None:
    request_id = await _request(db, state="partially_failed", failed=FAILED_FEW, break_glass=True)
    async with db.sessions() as session:
        view = await build_view(session, request_id)
    assert view is not None
    by_name = sorted(FAILED_FEW, key=lambda i: (i * 7) % N)
    assert [d.machine_id for d in view.counts.not_succeeded] == [f"{i:040x}" for i in by_name]
    assert view.counts.not_succeeded_total == len(FAILED_FEW) and view.device_count == N  # break glass: all
    assert dict(view.counts.by_state) == {"Failed": len(FAILED_FEW), "Succeeded": N - len(FAILED_FEW)}
    assert view.progress is not None and (view.progress.failed, view.progress.succeeded) == (3, N - 3)
    assert view.counts.warned_total == len(WARNED) + len(PROTECTED)


async def test_when_most_failed_the_view_holds_the_first_by_name_and_counts_the_rest(db: Database) -> None:
    failed = set(range(0, N, 2))
    request_id = await _request(db, state="partially_failed", failed=failed, break_glass=True)
    async with db.sessions() as session:
        view = await build_view(session, request_id)
    assert view is not None
    names = sorted(f"ws-{(i * 7) % N:05d}.contoso.local" for i in failed)
    assert [d.name for d in view.counts.not_succeeded] == names[:VIEW_ROWS]
    assert view.counts.not_succeeded_total == len(failed)


async def test_show_all_and_the_csv_read_every_device_from_storage(db: Database) -> None:
    request_id = await _request(db, state="pending", failed=set())
    async with db.sessions() as session:
        shown = await device_rows(session, request_id, limit=N)
        text = await results_csv(session, request_id)
        pages = [len(page) async for page in result_pages(session, request_id, page=1000)]
    assert pages == [1000, 1000, 1000]  # keyset pages, the last one full: nothing read twice or left out
    assert len(shown) == N - len(PROTECTED)  # as the card lists them: protected ones wait for break glass
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0][:2] == ["machine_id", "name"] and len(rows) == 1 + N
    assert [r[1] for r in rows[1:]] == sorted(r[1] for r in rows[1:]) and len({r[0] for r in rows[1:]}) == N
