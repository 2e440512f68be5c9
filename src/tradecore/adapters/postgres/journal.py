"""The journal's PostgreSQL writer: COPY into a session-local staging table, then one
`INSERT ... SELECT ... ON CONFLICT (id) DO NOTHING`, in one transaction.

COPY alone is the fastest path but cannot skip rows that exist, and a replayed batch must
create no duplicates; staging keeps COPY's speed with the idempotency. The staging table is a
TEMP table (lives and dies with the writer's own connection), not part of the schema.
"""

from collections.abc import Sequence
from typing import Any

import asyncpg

from tradecore.adapters.journal.rows import EVENT_COLUMNS, EventRow

_STAGE = "tradecore_events_stage"
_COLUMNS = ", ".join(EVENT_COLUMNS)
_CREATE_STAGE = (
    f"CREATE TEMP TABLE IF NOT EXISTS {_STAGE} ("
    "ord bigint GENERATED ALWAYS AS IDENTITY, "
    "id uuid, event_type text, event_data jsonb, correlation_id text, position_id text, "
    "order_id text, symbol text, exchange text, severity text, error_message text, "
    "stack_trace text, created_at timestamptz) ON COMMIT DELETE ROWS"
)
_INSERT = (
    f"INSERT INTO events ({_COLUMNS}) SELECT {_COLUMNS} FROM {_STAGE} ORDER BY ord "
    "ON CONFLICT (id) DO NOTHING"
)


class PostgresEventWriter:
    """A `BatchWriter` on one dedicated connection, reopened after any failure."""

    def __init__(self, dsn: str, *, connect_timeout: float = 3.0, command_timeout: float = 15.0):
        self._dsn = dsn
        self._connect_timeout = connect_timeout
        self._command_timeout = command_timeout
        self._connection: asyncpg.Connection[Any] | None = None

    @property
    def backend_pid(self) -> int | None:
        """The server process of the current connection (operators: pg_stat_activity)."""
        connection = self._connection
        if connection is None or connection.is_closed():
            return None
        return connection.get_server_pid()

    async def write(self, rows: Sequence[EventRow]) -> None:
        connection = await self._connect()
        try:
            async with connection.transaction():
                await connection.copy_records_to_table(
                    _STAGE, records=rows, columns=EVENT_COLUMNS, timeout=self._command_timeout
                )
                await connection.execute(_INSERT, timeout=self._command_timeout)
        except BaseException:
            await self._drop()
            raise

    async def ping(self) -> None:
        connection = await self._connect()
        try:
            await connection.fetchval("SELECT 1", timeout=self._connect_timeout)
        except BaseException:
            await self._drop()
            raise

    async def close(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None and not connection.is_closed():
            try:
                await connection.close(timeout=self._connect_timeout)
            except Exception:
                connection.terminate()

    async def _connect(self) -> "asyncpg.Connection[Any]":
        connection = self._connection
        if connection is not None and not connection.is_closed():
            return connection
        connection = await asyncpg.connect(
            self._dsn,
            timeout=self._connect_timeout,
            command_timeout=self._command_timeout,
            server_settings={"application_name": "tradecore-journal"},
        )
        try:
            await connection.execute(_CREATE_STAGE)
        except BaseException:
            connection.terminate()
            raise
        self._connection = connection
        return connection

    async def _drop(self) -> None:
        # Whatever went wrong, this connection's state is unknown: start clean next time.
        connection, self._connection = self._connection, None
        if connection is not None:
            connection.terminate()
