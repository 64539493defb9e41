"""Many rows into one table inside the caller's transaction, by the database's own fast path.

A 100,000-device request stores 100,000 snapshot rows before its card is shown. Through SQLAlchemy's
``insert()`` each row is a parameter dict compiled and processed one by one (and on PostgreSQL a multi-row
``VALUES`` statement per thousand); that was most of the insert's time and a peak of memory. Here the values
go column by column through the columns' own bind processors (so the stored text of a date or a JSON list is
exactly what the ORM writes), then in one driver call: ``COPY`` (asyncpg ``copy_records_to_table``) on
PostgreSQL, one ``executemany`` on SQLite. Any other database takes the ordinary ``insert()``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sqlalchemy import JSON, Table, insert
from sqlalchemy.ext.asyncio import AsyncSession

from mde.gcpause import cyclic_gc_paused


async def insert_columns(session: AsyncSession, table: Table, columns: Mapping[str, Sequence[Any]]) -> None:
    """Insert ``len`` of any column's values rows; ``columns`` maps a column name to its values, row by row.

    Columns left out take their database default (NULL for the nullable ones). The rows commit or roll back
    with the session's transaction.
    """
    unknown = set(columns) - set(table.c.keys())
    if unknown:
        raise ValueError(f"{table.name} has no column {', '.join(sorted(unknown))}")
    names = [c.name for c in table.columns if c.name in columns]  # the table's order, as SQLAlchemy compiles it
    count = len(columns[names[0]]) if names else 0
    if not count:
        return
    if any(len(columns[name]) != count for name in names):
        raise ValueError(f"{table.name}: every column needs {count} values")
    connection = await session.connection()
    dialect = connection.dialect
    if (dialect.name, dialect.driver) not in (("sqlite", "aiosqlite"), ("postgresql", "asyncpg")):
        rows = zip(*(columns[name] for name in names), strict=True)
        await session.execute(insert(table), [dict(zip(names, row, strict=True)) for row in rows])
        return
    with cyclic_gc_paused():  # 100,000 fresh tuples, no cycle among them: see mde.gcpause
        records = list(zip(*(_processed(table, name, columns[name], dialect) for name in names), strict=True))
    driver: Any = (await connection.get_raw_connection()).driver_connection
    if dialect.name == "postgresql":
        if not driver.is_in_transaction():  # SQLAlchemy's adapter begins on its first statement; COPY must be in it
            await connection.exec_driver_sql("SELECT 1")
        if not driver.is_in_transaction():
            raise RuntimeError("the session's connection is not in a transaction: COPY would commit on its own")
        await driver.copy_records_to_table(table.name, records=records, columns=names, schema_name=table.schema)
        return
    compiled = insert(table).compile(dialect=dialect, column_keys=names)
    if list(compiled.positiontup or ()) != names:  # the statement's ? placeholders, in our values' order
        raise RuntimeError(f"{table.name}: compiled parameters {compiled.positiontup} differ from {names}")
    await driver.executemany(str(compiled), records)


def _processed(table: Table, name: str, values: Sequence[Any], dialect: Any) -> Sequence[Any]:
    """The values as the driver receives them from SQLAlchemy (a date as SQLite's text, a list as JSON text)."""
    column_type = table.c[name].type
    process: Callable[[Any], Any] | None = column_type.dialect_impl(dialect).bind_processor(dialect)
    if process is None:
        return values
    if isinstance(column_type, JSON):
        return list(map(_memo(process), values))  # a few distinct tag lists over 100,000 devices
    return list(map(process, values))


def _memo(process: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """``process`` once per distinct value (a device's tags: a tuple of texts, written as a JSON array);
    unhashable values each time."""
    seen: dict[Any, Any] = {}

    def cached(value: Any) -> Any:
        try:
            return seen[value]
        except KeyError:
            seen[value] = result = process(value)
            return result
        except TypeError:
            return process(value)

    return cached
