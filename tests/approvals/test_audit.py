"""The audit log: written with every change, exported as CSV or JSON, append-only on PostgreSQL."""

from __future__ import annotations

import csv
import io
import json
from datetime import timedelta

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from approvals.audit.export import export_audit
from approvals.db import Database, utcnow
from approvals.migrate import upgrade_async
from tests.support.actors import ALICE, BOB, HERE
from tests.support.databases import postgres_url
from tests.support.stack import Stack


async def test_export_has_who_what_when_devices_and_action_ids(db_kind: str) -> None:
    async with Stack.start(db_kind=db_kind) as stack:
        request_id = (await stack.chatops.handle(ALICE, HERE, "isolate device:ws-0005 --reason 'INC 9'")).request.id  # type: ignore[union-attr]
        await stack.chatops.decide(BOB, request_id, approve=True)
        await stack.wait_for_state(request_id, {"succeeded"})
        out = io.StringIO()
        count = await export_audit(stack.db, out, fmt="json")
        rows = [json.loads(line) for line in out.getvalue().splitlines()]
        assert count == len(rows) >= 4
        created = next(r for r in rows if r["event"] == "request.created")
        assert created["actor"] == "console:alice" and created["text"] == "INC 9" and created["devices"]
        approved = next(r for r in rows if r["event"] == "request.approved_by")
        assert approved["actor"] == "console:bob"
        finished = next(r for r in rows if r["event"] == "request.finished")
        assert finished["outcome"] == "succeeded" and finished["action_ids"]
        assert finished["action_ids"][0] in stack.sim.tenant.actions

        out = io.StringIO()
        await export_audit(stack.db, out, fmt="csv", since=utcnow() - timedelta(minutes=5))
        table = list(csv.DictReader(io.StringIO(out.getvalue())))
        assert len(table) == count and table[0]["event"] == "request.created"
        out = io.StringIO()
        assert await export_audit(stack.db, out, fmt="csv", since=utcnow() + timedelta(minutes=5)) == 0


async def test_the_audit_log_refuses_update_and_delete_on_postgres() -> None:
    async with postgres_url() as url:
        await upgrade_async(url)
        db = Database(url)
        try:
            async with db.transaction() as session:
                await session.execute(
                    text(
                        "INSERT INTO audit_log (at, event, actor_key, actor_label, devices, action_ids, details) "
                        "VALUES (now(), 'x', 'a', 'a', '[]', '[]', '{}')"
                    )
                )
            for statement in ("UPDATE audit_log SET event = 'y'", "DELETE FROM audit_log"):
                with pytest.raises(DBAPIError, match="append-only"):
                    async with db.transaction() as session:
                        await session.execute(text(statement))
        finally:
            await db.dispose()
