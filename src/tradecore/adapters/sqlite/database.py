"""The SQLite database: one connection, migrations, the store, the journal writer, the lock."""

import asyncio
import sqlite3
import tempfile
from datetime import datetime
from pathlib import Path

import aiosqlite

from tradecore.adapters.sql import binding
from tradecore.adapters.sql.binding import AccountBoundLock
from tradecore.adapters.sql.executor import SqliteCodec, sqlite_time
from tradecore.adapters.sql.migrations import Migration, load_migrations, pending
from tradecore.adapters.sql.reachability import Reachability
from tradecore.adapters.sql.repositories import wall_clock
from tradecore.adapters.sql.store import SqlStore
from tradecore.adapters.sqlite.executor import (
    Connection,
    SqliteExecutor,
    immediate,
    reachable,
    transaction_factory,
)
from tradecore.adapters.sqlite.in_loop import InLoopConnection
from tradecore.adapters.sqlite.journal import SqliteEventWriter, recorded_text
from tradecore.adapters.sqlite.lock import FileInstanceLock
from tradecore.ports.clock import Clock
from tradecore.ports.repositories import Store

MEMORY = ":memory:"


def statements(script: str) -> list[str]:
    """`script` split into complete statements (sqlite3 knows where one ends)."""
    found: list[str] = []
    buffer = ""
    for line in script.splitlines(keepends=True):
        buffer += line
        if sqlite3.complete_statement(buffer):
            if buffer.strip():
                found.append(buffer.strip())
            buffer = ""
    if buffer.strip() and not all(
        part.strip().startswith("--") or not part.strip() for part in buffer.splitlines()
    ):
        raise ValueError(f"the migration ends inside a statement: {buffer.strip()[:80]!r}")
    return found


class SqliteDatabase:
    """Open with `connect`; constructors do no I/O.

    `clock`: what stamps `updated_at`, `recorded_at` and `applied_at` (SQLite's wall clock
    when None); the application's own, so a paper session's file holds virtual times only."""

    def __init__(self, path: str, connection: Connection, clock: Clock | None = None):
        self.path = path
        self.connection = connection
        self.lock = asyncio.Lock()
        self.clock = clock
        self.reachability = Reachability()  # the journal hears an outage from the store
        self.store: Store = SqlStore(
            SqliteExecutor(connection, self.lock),
            SqliteCodec(),
            transaction_factory(connection, self.lock),
            clock.now if clock is not None else wall_clock,
            self.reachability,
        )

    @classmethod
    async def connect(
        cls,
        path: str,
        *,
        apply_migrations: bool = True,
        busy_timeout_ms: int = 5000,
        in_loop: bool = False,
        clock: Clock | None = None,
    ) -> "SqliteDatabase":
        """`in_loop`: run every statement on the event loop's thread (`InLoopConnection`),
        for virtual time, where the order of events must not depend on a worker thread."""
        # A file that cannot be opened or is locked by another process (a backup holding it)
        # is `StoreUnavailable`, as it is for every later query: the runner waits for it.
        async with reachable():
            connection: Connection
            if in_loop:
                connection = InLoopConnection.connect(path)
            else:
                connection = await cls._threaded(path)
            try:
                connection.row_factory = sqlite3.Row
                await connection.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
                if path != MEMORY:
                    await connection.execute("PRAGMA journal_mode = WAL")
                await connection.execute("PRAGMA synchronous = FULL")
                await connection.execute("PRAGMA foreign_keys = ON")
                database = cls(path, connection, clock)
                if apply_migrations:
                    await database.migrate()
            except BaseException:
                await connection.close()
                raise
        return database

    @staticmethod
    async def _threaded(path: str) -> aiosqlite.Connection:
        pending_connection = aiosqlite.connect(path, isolation_level=None)
        # aiosqlite's worker thread is not a daemon: a process that dies of an exception
        # before closing the database would hang at exit instead of exiting (and never be
        # restarted by its supervisor). SQLite with WAL and synchronous=FULL is crash-safe,
        # so let the interpreter exit without it.
        worker = getattr(pending_connection, "_thread", None)
        if worker is not None and not worker.is_alive():
            worker.daemon = True
        return await pending_connection

    async def migrate(self) -> tuple[Migration, ...]:
        """Apply the pending migrations in one transaction; the ones applied, in order."""
        available = load_migrations("tradecore.adapters.sqlite")
        connection = self.connection
        async with self.lock, immediate(connection):
            known = await connection.execute_fetchall(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'"
            )
            applied: dict[int, str] = {}
            if known:
                rows = await connection.execute_fetchall(
                    "SELECT version, checksum FROM schema_migrations"
                )
                applied = {r["version"]: r["checksum"] for r in rows}
            todo = pending(available, applied)
            applied_at = None if self.clock is None else recorded_text(self.clock.now())
            for migration in todo:
                for statement in statements(migration.sql):
                    await connection.execute(statement)
                await connection.execute(
                    "INSERT INTO schema_migrations (version, name, checksum, applied_at) "
                    "VALUES (?, ?, ?, coalesce(?, strftime('%Y-%m-%dT%H:%M:%f', 'now')))",
                    (migration.version, migration.name, migration.checksum, applied_at),
                )
        return todo

    async def applied_migrations(self) -> list[tuple[int, str]]:
        async with self.lock:
            rows = await self.connection.execute_fetchall(
                "SELECT version, name FROM schema_migrations ORDER BY 1"
            )
        return [(r["version"], r["name"]) for r in rows]

    def event_writer(self, clock: Clock | None = None) -> SqliteEventWriter:
        """The journal's writer; `recorded_at` on `clock` (else the database's own)."""
        return SqliteEventWriter(self, clock or self.clock)

    def instance_lock(self) -> AccountBoundLock:
        """A lock file next to the database file (in the temp dir for `:memory:`), and the
        database bound to the first account that takes it (adapters/sql/binding.py)."""
        if self.path == MEMORY:
            return AccountBoundLock(
                FileInstanceLock(tempfile.gettempdir()), self._bind_account, self.path
            )
        db = Path(self.path).resolve()
        return AccountBoundLock(
            FileInstanceLock(db.parent, stem=db.name), self._bind_account, str(db)
        )

    async def _bind_account(self, account: str) -> str:
        connection = self.connection
        async with self.lock, immediate(connection):
            await connection.execute(binding.CREATE)
            await connection.execute(binding.CLAIM.format(param="?"), (account,))
            rows = list(await connection.execute_fetchall(binding.OWNER))
        return str(rows[0][0])

    async def purge_events(self, *, older_than: datetime, batch_size: int = 10_000) -> int:
        """Delete events created before `older_than`, in batches; the number deleted."""
        total = 0
        cutoff = sqlite_time(older_than)
        while True:
            async with self.lock:
                cursor = await self.connection.execute(
                    "DELETE FROM events WHERE seq IN (SELECT seq FROM events "
                    "WHERE created_at < ? ORDER BY created_at LIMIT ?)",
                    (cutoff, batch_size),
                )
            total += cursor.rowcount
            if cursor.rowcount < batch_size:
                return total

    async def close(self) -> None:
        await self.connection.close()
