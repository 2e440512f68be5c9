"""Opening a database from its URL: the factory the runner uses, and `migrate`."""

from tradecore.adapters.dburl import DatabaseUrl, Dialect, parse_database_url
from tradecore.adapters.journal import BatchWriter, Journal
from tradecore.adapters.postgres import PostgresEventWriter, PostgresInstanceLock
from tradecore.adapters.postgres.database import PostgresDatabase
from tradecore.adapters.sql.migrations import Migration
from tradecore.adapters.sqlite import FileInstanceLock, SqliteEventWriter
from tradecore.adapters.sqlite.database import SqliteDatabase
from tradecore.ports.clock import Clock, IdGenerator
from tradecore.ports.events import EventSink
from tradecore.ports.lock import InstanceLock

Database = PostgresDatabase | SqliteDatabase


async def connect_store(
    url: str | DatabaseUrl,
    *,
    apply_migrations: bool = True,
    in_loop: bool = False,
    clock: Clock | None = None,
) -> PostgresDatabase | SqliteDatabase:
    """Open the database at `url` (migrated unless told otherwise).

    The result has `.store` (the `Store` port), `.event_writer()` (for a `Journal`),
    `.instance_lock()` (the `InstanceLock` port), `.purge_events()` and `.close()`.
    `in_loop` (virtual time): SQLite runs on the event loop's thread, PostgreSQL answers
    within the caller's step (`postgres.in_loop`), so the order of what happens at one
    instant never depends on a worker thread or the server's speed; `clock` stamps the
    bookkeeping times (`updated_at`; SQLite's `recorded_at`) — docs/testing.md, determinism.
    """
    parsed = url if isinstance(url, DatabaseUrl) else parse_database_url(url)
    if parsed.dialect is Dialect.POSTGRESQL:
        return await PostgresDatabase.connect(
            parsed.url, apply_migrations=apply_migrations, in_loop=in_loop, clock=clock
        )
    assert parsed.path is not None
    return await SqliteDatabase.connect(
        parsed.path, apply_migrations=apply_migrations, in_loop=in_loop, clock=clock
    )


async def migrate(url: str | DatabaseUrl) -> tuple[Migration, ...]:
    """Apply pending migrations to the database at `url`; the ones applied."""
    database = await connect_store(url, apply_migrations=False)
    try:
        return await database.migrate()
    finally:
        await database.close()


def open_journal(
    database: PostgresDatabase | SqliteDatabase,
    spool_path: str,
    *,
    clock: Clock | None = None,
    ids: IdGenerator | None = None,
) -> Journal:
    """A journal writing to `database`, spooling to `spool_path`; call `start()` in the loop."""
    writer: BatchWriter
    if isinstance(database, SqliteDatabase):
        writer = database.event_writer(clock)  # recorded_at on the journal's clock
    else:
        writer = database.event_writer()  # PostgreSQL's now()
    journal = Journal(writer, spool_path, clock=clock, ids=ids)
    # An outage begins and ends when the store finds it, not at the journal's next write.
    database.reachability.listen(journal.database_down, journal.database_answered)
    return journal


def _conformance(
    journal: Journal,
    pg_lock: PostgresInstanceLock,
    file_lock: FileInstanceLock,
    pg_writer: PostgresEventWriter,
    sqlite_writer: SqliteEventWriter,
) -> tuple[EventSink, InstanceLock, InstanceLock, BatchWriter, BatchWriter]:
    """Never called: mypy checks here that the adapters implement their ports."""
    return journal, pg_lock, file_lock, pg_writer, sqlite_writer
