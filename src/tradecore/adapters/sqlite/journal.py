"""The journal's SQLite writer: one `executemany` of `INSERT ... ON CONFLICT (id) DO NOTHING`
per batch, in one transaction, on the database's shared connection."""

from collections.abc import Sequence
from typing import TYPE_CHECKING

from tradecore.adapters.journal.rows import EVENT_COLUMNS, EventRow
from tradecore.adapters.sql.executor import sqlite_time
from tradecore.adapters.sqlite.executor import immediate

if TYPE_CHECKING:
    from tradecore.adapters.sqlite.database import SqliteDatabase

_INSERT = (
    f"INSERT INTO events ({', '.join(EVENT_COLUMNS)}) "
    f"VALUES ({', '.join('?' for _ in EVENT_COLUMNS)}) ON CONFLICT (id) DO NOTHING"
)


class SqliteEventWriter:
    """A `BatchWriter`. A locked or unwritable file makes `write` and `ping` raise."""

    def __init__(self, database: "SqliteDatabase"):
        self._database = database

    async def write(self, rows: Sequence[EventRow]) -> None:
        params = [(str(r[0]), *r[1:11], sqlite_time(r[11])) for r in rows]
        connection = self._database.connection
        async with self._database.lock, immediate(connection):
            await connection.executemany(_INSERT, params)

    async def ping(self) -> None:
        # SELECT 1 succeeds on a locked file; taking the write lock is the real question.
        connection = self._database.connection
        async with self._database.lock, immediate(connection):
            pass

    async def close(self) -> None:
        """The connection belongs to the database; it closes it."""
