"""Alembic environment: runs migrations on the async engine of the configured database URL."""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy.engine import Connection

import approvals.models  # noqa: F401  (registers every table)
from approvals.db import OUTSIDE_MODELS, Base, make_engine

config = context.config
target_metadata = Base.metadata


def _include_object(obj: object, name: str | None, kind: str, reflected: bool, compare_to: object) -> bool:
    """Autogenerate must not propose dropping tables that code outside the models owns."""
    table = getattr(obj, "table", obj) if kind in ("index", "column", "unique_constraint") else obj
    return getattr(table, "name", name) not in OUTSIDE_MODELS


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        include_object=_include_object,
    )
    with context.begin_transaction():
        context.run_migrations()


async def _online() -> None:
    engine = make_engine(config.get_main_option("sqlalchemy.url") or "")
    async with engine.connect() as connection:
        await connection.run_sync(_run)
        await connection.commit()
    await engine.dispose()


if context.is_offline_mode():
    context.configure(url=config.get_main_option("sqlalchemy.url"), target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    asyncio.run(_online())
