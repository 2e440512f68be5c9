"""The PostgreSQL database: pool, migrations, the store, and what else the runner needs."""

from datetime import datetime
from typing import Any

import asyncpg

from tradecore.adapters.postgres.executor import PgExecutor, reachable, transaction_factory
from tradecore.adapters.postgres.journal import PostgresEventWriter
from tradecore.adapters.postgres.lock import PostgresInstanceLock, advisory_key
from tradecore.adapters.sql.executor import PostgresCodec
from tradecore.adapters.sql.migrations import Migration, load_migrations, pending
from tradecore.adapters.sql.store import SqlStore
from tradecore.ports.repositories import Store

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
    """Open with `connect`; constructors do no I/O."""

    def __init__(self, dsn: str, pool: "asyncpg.Pool[Any]"):
        self.dsn = dsn
        self._pool = pool
        self.store: Store = SqlStore(PgExecutor(pool), PostgresCodec(), transaction_factory(pool))

    @classmethod
    async def connect(
        cls, dsn: str, *, apply_migrations: bool = True, min_size: int = 1, max_size: int = 5
    ) -> "PostgresDatabase":
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
        return cls(dsn, pool)

    async def migrate(self) -> tuple[Migration, ...]:
        async with self._pool.acquire() as connection:
            return await migrate_postgres(connection)

    async def applied_migrations(self) -> list[tuple[int, str]]:
        rows = await self._pool.fetch("SELECT version, name FROM schema_migrations ORDER BY 1")
        return [(r["version"], r["name"]) for r in rows]

    def event_writer(self) -> PostgresEventWriter:
        """A journal writer with its own connection (COPY must not wait for the pool)."""
        return PostgresEventWriter(self.dsn)

    def instance_lock(self) -> PostgresInstanceLock:
        return PostgresInstanceLock(self.dsn)

    async def purge_events(self, *, older_than: datetime, batch_size: int = 10_000) -> int:
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
        await self._pool.close()
