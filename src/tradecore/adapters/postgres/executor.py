"""The shared repositories' `Executor` over an asyncpg pool or connection."""

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import asyncpg

from tradecore.adapters.sql.executor import Executor, Row, UniqueViolation
from tradecore.ports.repositories import StoreUnavailable


def _count(status: str) -> int:
    # asyncpg returns the command tag, e.g. "INSERT 0 1", "UPDATE 3".
    tail = status.rsplit(" ", 1)[-1]
    return int(tail) if tail.isdigit() else 0


# What an unreachable or lost server looks like through asyncpg.
UNREACHABLE = (
    OSError,
    TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.CannotConnectNowError,
    asyncpg.AdminShutdownError,
    # a pooled connection an outage interrupted mid-protocol: "cannot switch to state …;
    # another operation … is in progress" (the pool replaces it on release)
    asyncpg.InternalClientError,
)


@asynccontextmanager
async def reachable() -> AsyncIterator[None]:
    """Turn the driver's connection failures into the port's `StoreUnavailable`."""
    try:
        yield
    except UNREACHABLE as exc:
        raise StoreUnavailable(f"PostgreSQL unreachable: {type(exc).__name__}: {exc}") from exc


class PgExecutor:
    def __init__(self, target: "asyncpg.Pool[Any] | asyncpg.Connection[Any]"):
        self._target = target

    async def execute(self, sql: str, *args: Any) -> int:
        async with reachable():
            try:
                return _count(await self._target.execute(sql, *args))
            except asyncpg.UniqueViolationError as exc:
                raise UniqueViolation(exc.constraint_name or str(exc)) from exc

    async def fetch(self, sql: str, *args: Any) -> Sequence[Row]:
        async with reachable():
            return await self._target.fetch(sql, *args)


def transaction_factory(pool: "asyncpg.Pool[Any]") -> Any:
    """A `BeginTransaction` for SqlStore: one pooled connection inside one transaction."""

    @asynccontextmanager
    async def begin() -> AsyncIterator[Executor]:
        async with reachable(), pool.acquire() as connection, connection.transaction():
            yield PgExecutor(connection)

    return begin
