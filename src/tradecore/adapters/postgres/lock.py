"""One instance per account on PostgreSQL: a session advisory lock on a dedicated connection
held for the life of the process. If the process dies, the server drops the connection and the
lock with it."""

import hashlib
from typing import Any

import asyncpg

from tradecore.ports.lock import LockHeld


def advisory_key(account: str) -> int:
    """A stable signed 64-bit key for `account` (the same in every process and version)."""
    digest = hashlib.blake2b(f"tradecore:{account}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


class PostgresInstanceLock:
    def __init__(self, dsn: str, *, connect_timeout: float = 5.0):
        self._dsn = dsn
        self._connect_timeout = connect_timeout
        self._connection: asyncpg.Connection[Any] | None = None
        self._account: str | None = None

    async def acquire(self, account: str) -> None:
        if self._connection is not None:
            raise LockHeld(f"this process already holds the instance lock for {self._account!r}")
        key = advisory_key(account)
        connection = await asyncpg.connect(
            self._dsn,
            timeout=self._connect_timeout,
            server_settings={"application_name": f"tradecore-lock:{account}"[:63]},
        )
        try:
            taken = await connection.fetchval("SELECT pg_try_advisory_lock($1)", key)
            if not taken:
                holder = await _holder(connection, key)
                raise LockHeld(
                    f"another tradecore instance is already running for account {account!r} "
                    f"({holder}; PostgreSQL advisory lock {key}); stop it first, or use a "
                    "different account"
                )
        except BaseException:
            await connection.close()
            raise
        self._connection = connection
        self._account = account

    async def release(self) -> None:
        connection, self._connection = self._connection, None
        if connection is None or connection.is_closed():
            return
        try:
            await connection.execute("SELECT pg_advisory_unlock_all()")
        finally:
            await connection.close()

    @property
    def held(self) -> bool:
        return self._connection is not None and not self._connection.is_closed()


async def _holder(connection: "asyncpg.Connection[Any]", key: int) -> str:
    # A bigint advisory key shows in pg_locks as classid (high 32 bits) and objid (low 32).
    unsigned = key & 0xFFFFFFFFFFFFFFFF
    row = await connection.fetchrow(
        "SELECT a.pid, a.client_addr::text AS addr, a.application_name, a.backend_start "
        "FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
        "WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1 "
        "AND l.classid::bigint = $1 AND l.objid::bigint = $2",
        unsigned >> 32,
        unsigned & 0xFFFFFFFF,
    )
    if row is None:
        return "PostgreSQL advisory lock held by another session"
    return (
        f"advisory lock held by server pid {row['pid']}, client {row['addr'] or 'local'}, "
        f"since {row['backend_start']:%Y-%m-%d %H:%M:%S %Z}"
    )
