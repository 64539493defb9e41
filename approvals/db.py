"""Database engine, sessions and the declarative base shared by every domain folder.

SQLite (a file, zero set-up) by default; PostgreSQL by ``DATABASE_URL`` for production and replicas.
"""

from __future__ import annotations

import enum
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any, TypeVar

from sqlalchemy import DateTime, MetaData, String, event
from sqlalchemy.engine import Dialect, make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.types import TypeDecorator

from approvals.errors import DatabaseUrlError

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


#: tables the migrations create for code outside the ORM models (the shared budget, mde/limiter_backends/postgres.py)
OUTSIDE_MODELS = frozenset({"rate_limit_grants"})


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


#: what every flow reads the time from: ``utcnow`` in production, a controllable function in tests
Clock = Callable[[], datetime]


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Always timezone-aware UTC in Python, whatever the backend stores (SQLite keeps naive text)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


E = TypeVar("E", bound=enum.StrEnum)


class EnumText(TypeDecorator[E]):
    """A ``StrEnum`` in a plain VARCHAR: the database keeps the value's text (no schema change, no native
    enum), Python reads the enum back; writing or reading a value the enum does not know is an error."""

    impl = String
    cache_ok = True

    def __init__(self, enum_type: type[E], length: int) -> None:
        super().__init__(length)
        self.enum_type = enum_type

    def process_bind_param(self, value: E | str | None, dialect: Dialect) -> str | None:
        return None if value is None else self.enum_type(value).value

    def process_result_value(self, value: str | None, dialect: Dialect) -> E | None:
        return None if value is None else self.enum_type(value)


def normalize_url(url: str) -> str:
    """Accept the URLs people paste (postgres://, postgresql://, sqlite:///file) and pick async drivers;
    a URL that cannot be read raises ``DatabaseUrlError``."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://") :]
    if url.startswith("postgresql://"):
        url = "postgresql+asyncpg://" + url[len("postgresql://") :]
    if url.startswith("sqlite://") and not url.startswith("sqlite+aiosqlite://"):
        url = "sqlite+aiosqlite://" + url[len("sqlite://") :]
    _check_url(url)
    return url


def _check_url(url: str) -> None:
    expected = "expected postgresql://USER:PASSWORD@HOST:5432/NAME or sqlite:///PATH"
    try:
        port = make_url(url).port
    except ArgumentError:
        reason = "it cannot be parsed" if "://" in url else "it has no scheme://"
        raise DatabaseUrlError(f"DATABASE_URL is not a database URL ({reason}); {expected}") from None
    except ValueError:  # int(port)
        raise DatabaseUrlError(f"DATABASE_URL is not a database URL (its port is not a number); {expected}") from None
    if port is not None and not 0 < port < 65536:
        raise DatabaseUrlError(f"DATABASE_URL is not a database URL (port {port} is out of range); {expected}")


def make_engine(url: str, **kwargs: Any) -> AsyncEngine:
    url = normalize_url(url)
    if url.startswith("sqlite"):
        engine = create_async_engine(url, connect_args={"timeout": 30}, **kwargs)

        @event.listens_for(engine.sync_engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA busy_timeout=30000")
            # WAL + NORMAL: a process crash loses nothing; only an OS crash may lose the last commits
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

        return engine
    kwargs.setdefault("pool_pre_ping", True)
    kwargs.setdefault("pool_size", 10)
    kwargs.setdefault("max_overflow", 20)
    return create_async_engine(url, **kwargs)


class Database:
    """One engine and session factory per process."""

    def __init__(self, url: str, **engine_kwargs: Any) -> None:
        self.url = normalize_url(url)
        self.engine = make_engine(self.url, **engine_kwargs)
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)

    @property
    def is_postgres(self) -> bool:
        return self.engine.dialect.name == "postgresql"

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        async with self.sessions() as session, session.begin():
            yield session

    async def dispose(self) -> None:
        await self.engine.dispose()
