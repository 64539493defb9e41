"""Test databases: a fresh SQLite file, or a fresh PostgreSQL database on the local server."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import asyncpg

from approvals.db import Database
from approvals.models import create_all

PG_HOST = os.environ.get("TEST_PG_HOST", "127.0.0.1")
PG_PORT = int(os.environ.get("TEST_PG_PORT", "5432"))
PG_USER = os.environ.get("TEST_PG_USER", "postgres")
PG_ADMIN_DB = os.environ.get("TEST_PG_DATABASE", "test")


async def _admin() -> asyncpg.Connection:
    return await asyncpg.connect(host=PG_HOST, port=PG_PORT, user=PG_USER, database=PG_ADMIN_DB)


@asynccontextmanager
async def postgres_url() -> AsyncIterator[str]:
    name = f"mdechatops_{uuid.uuid4().hex[:12]}"
    conn = await _admin()
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    try:
        yield f"postgresql+asyncpg://{PG_USER}@{PG_HOST}:{PG_PORT}/{name}"
    finally:
        conn = await _admin()
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()


def sqlite_url(directory: Path) -> str:
    return f"sqlite+aiosqlite:///{directory / 'test.db'}"


@asynccontextmanager
async def database(kind: str, tmp_path: Path) -> AsyncIterator[Database]:
    """A migrated-from-scratch database of ``kind`` ("sqlite" or "postgres")."""
    if kind == "postgres":
        async with postgres_url() as url:
            db = Database(url)
            try:
                await create_all(db)
                yield db
            finally:
                await db.dispose()
        return
    db = Database(sqlite_url(tmp_path))
    try:
        await create_all(db)
        yield db
    finally:
        await db.dispose()
