"""The Alembic migrations build exactly the schema the models describe, on SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

import approvals.models  # noqa: F401  (registers every table)
from approvals.db import OUTSIDE_MODELS, Base, Database
from approvals.migrate import current_revision, head_revision, upgrade_async
from tests.support.databases import postgres_url, sqlite_url


def _diff(connection: Any) -> list[Any]:
    context = MigrationContext.configure(connection, opts={"compare_type": False})
    return [
        d
        for d in compare_metadata(context, Base.metadata)
        if not (d[0] in ("remove_table", "remove_index") and _table_of(d) in OUTSIDE_MODELS)
    ]


def _table_of(diff: Any) -> str:
    item = diff[1]
    return str(getattr(item, "name", "") if diff[0] == "remove_table" else getattr(item.table, "name", ""))


async def _check(url: str) -> None:
    await upgrade_async(url)
    assert await current_revision(url) == head_revision()
    db = Database(url)
    try:
        async with db.engine.connect() as conn:
            diffs = await conn.run_sync(_diff)
    finally:
        await db.dispose()
    assert diffs == [], f"the migrations and the models disagree: {diffs}"


async def test_migrations_match_the_models_on_sqlite(tmp_path: Path) -> None:
    await _check(sqlite_url(tmp_path))


async def test_migrations_match_the_models_on_postgresql() -> None:
    async with postgres_url() as url:
        await _check(url)
