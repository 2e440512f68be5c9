"""The journal's SQLite writer: one `executemany` of `INSERT ... ON CONFLICT (id) DO NOTHING`
per batch, in one transaction, on the database's shared connection."""

from collections.abc import Sequence
from typing import TYPE_CHECKING

from tradecore.adapters.journal.rows import EVENT_COLUMNS, EventRow
from tradecore.adapters.sql.executor import recorded_text, sqlite_time
from tradecore.adapters.sqlite.executor import immediate
from tradecore.ports.clock import Clock

__all__ = ["SqliteEventWriter", "recorded_text"]

if TYPE_CHECKING:
    from tradecore.adapters.sqlite.database import SqliteDatabase

_INSERT = (
    f"INSERT INTO events ({', '.join(EVENT_COLUMNS)}) "
    f"VALUES ({', '.join('?' for _ in EVENT_COLUMNS)}) ON CONFLICT (id) DO NOTHING"
)
_INSERT_RECORDED = (
    f"INSERT INTO events ({', '.join(EVENT_COLUMNS)}, recorded_at) "
    f"VALUES ({', '.join('?' for _ in EVENT_COLUMNS)}, ?) ON CONFLICT (id) DO NOTHING"
)


class SqliteEventWriter:
    """A `BatchWriter`. A locked or unwritable file makes `write` and `ping` raise.

    `recorded_at` is the instant the batch is written: on `clock` when given (the journal's
    own: virtual time in a paper session, so a rerun stores the same text), else SQLite's
    wall clock (the column's default)."""

    def __init__(self, database: "SqliteDatabase", clock: Clock | None = None):
        self._database = database
        self._clock = clock

    async def write(self, rows: Sequence[EventRow]) -> None:
        params: list[tuple[object, ...]] = [(str(r[0]), *r[1:11], sqlite_time(r[11])) for r in rows]
        insert = _INSERT
        if self._clock is not None:
            recorded = recorded_text(self._clock.now())
            params = [(*p, recorded) for p in params]
            insert = _INSERT_RECORDED
        connection = self._database.connection
        async with self._database.lock, immediate(connection):
            await connection.executemany(insert, params)

    async def ping(self) -> None:
        # SELECT 1 succeeds on a locked file; taking the write lock is the real question.
        connection = self._database.connection
        async with self._database.lock, immediate(connection):
            pass

    async def close(self) -> None:
        """The connection belongs to the database; it closes it."""
