"""The shared repositories' `Executor` over one aiosqlite connection (or an `InLoopConnection`).

SQLite has one writer at a time and a `:memory:` database exists only on its own connection,
so the store and the journal share one connection and take turns through an asyncio lock.
Outside a transaction each statement commits by itself (autocommit mode).
"""

import asyncio
import re
import sqlite3
from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager, nullcontext
from typing import Any

import aiosqlite

from tradecore.adapters.sql.executor import Executor, Row, UniqueViolation
from tradecore.adapters.sqlite.in_loop import InLoopConnection
from tradecore.ports.repositories import StoreUnavailable

# aiosqlite's, on a worker thread; or one on the event loop's thread, for virtual time
Connection = aiosqlite.Connection | InLoopConnection

_PLACEHOLDER = re.compile(r"\$(\d+)")
_translated: dict[str, str] = {}


def sqlite_sql(sql: str) -> str:
    """PostgreSQL placeholders (`$1`) as SQLite numbered ones (`?1`)."""
    cached = _translated.get(sql)
    if cached is None:
        cached = _translated[sql] = _PLACEHOLDER.sub(r"?\1", sql)
    return cached


class SqliteExecutor:
    """`lock` is None inside a transaction, which already holds it."""

    def __init__(self, connection: Connection, lock: asyncio.Lock | None):
        self._connection = connection
        self._lock = lock

    def _turn(self) -> AbstractAsyncContextManager[Any]:
        return self._lock if self._lock is not None else nullcontext()

    # `reachable()`'s translation written out: no context manager built per statement
    async def execute(self, sql: str, *args: Any) -> int:
        async with self._turn():
            try:
                cursor = await self._connection.execute(sqlite_sql(sql), args)
            except sqlite3.IntegrityError as exc:
                if "UNIQUE" in str(exc):
                    raise UniqueViolation(str(exc)) from exc
                raise
            except sqlite3.OperationalError as exc:
                if _unreachable(exc):
                    raise StoreUnavailable(f"SQLite unavailable: {exc}") from exc
                raise
            return cursor.rowcount

    async def fetch(self, sql: str, *args: Any) -> Sequence[Row]:
        async with self._turn():
            try:
                rows = await self._connection.execute_fetchall(sqlite_sql(sql), args)
            except sqlite3.OperationalError as exc:
                if _unreachable(exc):
                    raise StoreUnavailable(f"SQLite unavailable: {exc}") from exc
                raise
        return rows  # type: ignore[return-value]  # sqlite3.Row reads by column name


# SQLite's way of saying "not now": the file is locked, gone or unreadable.
_UNREACHABLE = ("locked", "busy", "unable to open", "disk i/o error", "readonly")


@asynccontextmanager
async def reachable() -> AsyncIterator[None]:
    """Turn SQLite's "cannot get at the file" errors into the port's `StoreUnavailable`."""
    try:
        yield
    except sqlite3.OperationalError as exc:
        if _unreachable(exc):
            raise StoreUnavailable(f"SQLite unavailable: {exc}") from exc
        raise


def _unreachable(exc: sqlite3.OperationalError) -> bool:
    return any(word in str(exc).lower() for word in _UNREACHABLE)


def transaction_factory(connection: Connection, lock: asyncio.Lock) -> Any:
    """A `BeginTransaction` for SqlStore: BEGIN IMMEDIATE ... COMMIT under the lock."""

    @asynccontextmanager
    async def begin() -> AsyncIterator[Executor]:
        async with lock, immediate(connection):
            yield SqliteExecutor(connection, None)

    return begin


@asynccontextmanager
async def immediate(connection: Connection) -> AsyncIterator[None]:
    """A write transaction; rolled back on any exception, including a failing COMMIT
    (a deferred foreign key), which SQLite would otherwise leave open."""
    await connection.execute("BEGIN IMMEDIATE")
    try:
        yield
        await connection.execute("COMMIT")
    except BaseException:
        if connection.in_transaction:
            await connection.execute("ROLLBACK")
        raise
