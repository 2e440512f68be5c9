"""The PostgreSQL database: pool, migrations, the store, and what else the runner needs."""

import contextlib
from collections.abc import Awaitable
from datetime import datetime
from typing import Any, TypeVar, cast
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from tradecore.adapters.postgres.executor import PgExecutor, reachable, transaction_factory
from tradecore.adapters.postgres.in_loop import (
    InStep,
    InStepExecutor,
    SideLoop,
    in_step_transactions,
)
from tradecore.adapters.postgres.journal import PostgresEventWriter
from tradecore.adapters.postgres.lock import PostgresInstanceLock, advisory_key
from tradecore.adapters.sql import binding
from tradecore.adapters.sql.binding import AccountBoundLock
from tradecore.adapters.sql.executor import PostgresCodec
from tradecore.adapters.sql.migrations import Migration, load_migrations, pending
from tradecore.adapters.sql.reachability import Reachability
from tradecore.adapters.sql.repositories import wall_clock
from tradecore.adapters.sql.store import SqlStore
from tradecore.ports.clock import Clock
from tradecore.ports.repositories import Store

T = TypeVar("T")
_MIGRATION_LOCK = advisory_key("schema-migrations")


async def migrate_postgres(connection: "asyncpg.Connection[Any]") -> tuple[Migration, ...]:
    """Apply the pending migrations in one transaction; the ones applied, in order.

    An advisory transaction lock makes two processes migrating at once take turns.
    """
    available = load_migrations("tradecore.adapters.postgres")
    async with connection.transaction():
        await connection.execute("SELECT pg_advisory_xact_lock($1)", _MIGRATION_LOCK)
        applied: dict[int, str] = {}
        if await connection.fetchval("SELECT to_regclass('schema_migrations') IS NOT NULL"):
            rows = await connection.fetch("SELECT version, checksum FROM schema_migrations")
            applied = {r["version"]: r["checksum"] for r in rows}
        todo = pending(available, applied)
        for migration in todo:
            await connection.execute(migration.sql)
            await connection.execute(
                "INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
                migration.version,
                migration.name,
                migration.checksum,
            )
    return todo


class PostgresDatabase:
    """Open with `connect`; constructors do no I/O.

    `side` (virtual time, `connect(…, in_loop=True)`): the pool lives on that loop and every
    call — the store's, the journal writer's, the lock's — is answered within the caller's
    step (`in_loop.SideLoop`), so the order of what happens at one instant is the same on
    every run and the same as on in-loop SQLite. `clock` stamps the rows' `updated_at`."""

    def __init__(
        self,
        dsn: str,
        pool: "asyncpg.Pool[Any]",
        *,
        side: SideLoop | None = None,
        clock: Clock | None = None,
    ):
        self.dsn = dsn
        self._pool = pool
        self._side = side
        now = clock.now if clock is not None else wall_clock
        self.reachability = reached = Reachability()  # the journal hears an outage from it
        if side is None:
            store = SqlStore(
                PgExecutor(pool), PostgresCodec(), transaction_factory(pool), now, reached
            )
        else:
            store = SqlStore(
                InStepExecutor(PgExecutor(pool), side),
                PostgresCodec(),
                in_step_transactions(transaction_factory(pool), side),
                now,
                reached,
            )
        self.store: Store = store

    @classmethod
    async def connect(
        cls,
        dsn: str,
        *,
        apply_migrations: bool = True,
        min_size: int = 1,
        max_size: int = 5,
        in_loop: bool = False,
        clock: Clock | None = None,
    ) -> "PostgresDatabase":
        """`in_loop`: asyncpg on a loop of its own, each call answered within the caller's
        step (virtual time: the order of one instant's work never depends on the server)."""
        if not in_loop:
            pool = await cls._open_pool(dsn, apply_migrations, min_size, max_size)
            return cls(dsn, pool, clock=clock)
        side = SideLoop()
        try:
            pool = side.run(cls._open_pool(dsn, apply_migrations, min_size, max_size))
        except BaseException:
            side.close()
            raise
        return cls(dsn, pool, side=side, clock=clock)

    @staticmethod
    async def _open_pool(
        dsn: str, apply_migrations: bool, min_size: int, max_size: int
    ) -> "asyncpg.Pool[Any]":
        # A server that is down or refusing connections is `StoreUnavailable` (the runner
        # waits for it); a wrong password or database name is not, and stays the driver's.
        async with reachable():
            pool = await asyncpg.create_pool(
                dsn,
                min_size=min_size,
                max_size=max_size,
                timeout=5.0,
                command_timeout=30.0,
                server_settings={"application_name": "tradecore"},
            )
        try:
            if apply_migrations:
                async with reachable(), pool.acquire() as connection:
                    await migrate_postgres(connection)
        except BaseException:
            await pool.close()
            raise
        return pool

    async def _on_pool(self, call: Awaitable[T]) -> T:
        """`call` on the loop the pool lives on (within this step when that is the side loop)."""
        if self._side is None:
            return await call
        return self._side.run(call)

    async def migrate(self) -> tuple[Migration, ...]:
        return await self._on_pool(self._migrate())

    async def _migrate(self) -> tuple[Migration, ...]:
        async with self._pool.acquire() as connection:
            return await migrate_postgres(connection)

    async def applied_migrations(self) -> list[tuple[int, str]]:
        rows = await self._on_pool(
            self._pool.fetch("SELECT version, name FROM schema_migrations ORDER BY 1")
        )
        return [(r["version"], r["name"]) for r in rows]

    def event_writer(self) -> PostgresEventWriter:
        """A journal writer with its own connection (COPY must not wait for the pool)."""
        writer = PostgresEventWriter(self.dsn)
        return (
            writer if self._side is None else cast(PostgresEventWriter, InStep(writer, self._side))
        )

    def instance_lock(self) -> AccountBoundLock:
        """The session advisory lock, and the database bound to the first account that takes
        it (adapters/sql/binding.py)."""
        lock = PostgresInstanceLock(self.dsn)
        inner = lock if self._side is None else cast(PostgresInstanceLock, InStep(lock, self._side))
        return AccountBoundLock(inner, self._bind_account, _shown(self.dsn))

    async def _bind_account(self, account: str) -> str:
        return await self._on_pool(self._claim(account))

    async def _claim(self, account: str) -> str:
        async with self._pool.acquire() as connection:
            # two first starts at once: the other one may have made the table meanwhile
            with contextlib.suppress(asyncpg.UniqueViolationError, asyncpg.DuplicateTableError):
                await connection.execute(binding.CREATE)
            await connection.execute(binding.CLAIM.format(param="$1"), account)
            return str(await connection.fetchval(binding.OWNER))

    async def purge_events(self, *, older_than: datetime, batch_size: int = 10_000) -> int:
        return await self._on_pool(self._purge_events(older_than, batch_size))

    async def _purge_events(self, older_than: datetime, batch_size: int) -> int:
        """Delete events created before `older_than`, in batches; the number deleted."""
        total = 0
        while True:
            deleted = await self._pool.execute(
                "DELETE FROM events WHERE id IN (SELECT id FROM events "
                "WHERE created_at < $1 ORDER BY created_at LIMIT $2)",
                older_than,
                batch_size,
            )
            count = int(deleted.rsplit(" ", 1)[-1])
            total += count
            if count < batch_size:
                return total

    async def close(self) -> None:
        try:
            await self._on_pool(self._pool.close())
        finally:
            if self._side is not None:
                self._side.close()


def _shown(dsn: str) -> str:
    """The DSN without its password, for a message."""
    parts = urlsplit(dsn)
    if parts.password is None:
        return dsn
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))
