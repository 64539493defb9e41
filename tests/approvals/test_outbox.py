"""The outbox on its own: an event exists exactly when its change commits; one deliverer per surface."""

from __future__ import annotations

from datetime import timedelta

import pytest

from approvals.db import Database, utcnow
from approvals.outbox import service as outbox
from approvals.outbox.models import EventKind
from tests.support.records import add_request


async def _request(db: Database) -> int:
    async with db.transaction() as session:
        return (await add_request(session)).id


async def test_an_event_exists_only_if_its_transaction_commits(db: Database) -> None:
    request_id = await _request(db)
    with pytest.raises(RuntimeError):
        async with db.transaction() as session:
            outbox.emit(session, request_id, EventKind.CREATED)
            raise RuntimeError("the change failed")
    async with db.transaction() as session:
        outbox.emit(session, request_id, EventKind.NOTE, text="kept")
    async with db.sessions() as session:
        events = await outbox.events_after(session, 0)
    assert [(e.kind, e.payload) for e in events] == [(EventKind.NOTE.value, {"text": "kept"})]


async def test_events_are_read_in_order_after_the_cursor(db: Database) -> None:
    request_id = await _request(db)
    async with db.transaction() as session:
        for n in range(5):
            outbox.emit(session, request_id, EventKind.NOTE, n=n)
    async with db.sessions() as session:
        first = await outbox.events_after(session, 0, limit=2)
        rest = await outbox.events_after(session, first[-1].id)
        latest = await outbox.latest_event_id(session)
    assert [e.payload["n"] for e in first + rest] == [0, 1, 2, 3, 4]
    assert latest == rest[-1].id


async def test_one_deliverer_holds_a_surface_until_its_lease_runs_out(db: Database) -> None:
    ttl, now = timedelta(seconds=30), utcnow()
    async with db.transaction() as session:
        assert await outbox.lease_cursor(session, "slack", "a", ttl, now) == 0
        assert await outbox.advance_cursor(session, "slack", "a", 7)
    async with db.transaction() as session:
        assert await outbox.lease_cursor(session, "slack", "b", ttl, now + timedelta(seconds=10)) is None
        assert not await outbox.advance_cursor(session, "slack", "b", 9)
        assert await outbox.lease_cursor(session, "teams", "b", ttl, now) == 0  # surfaces are independent
    async with db.transaction() as session:  # a's lease ran out: b takes over where a stopped
        assert await outbox.lease_cursor(session, "slack", "b", ttl, now + timedelta(seconds=31)) == 7
        assert not await outbox.advance_cursor(session, "slack", "a", 8)
