"""SQLite on the event loop's own thread, for virtual time.

aiosqlite runs every call on a worker thread and hands the answer back to the loop whenever
the thread is done, so what else the loop runs meanwhile — other tasks' work of the same
virtual instant — depends on the machine's speed: two paper sessions on the same inputs then
journal the same events in different orders. `InLoopConnection` speaks the part of
aiosqlite's `Connection` the adapter uses but runs each statement at once, inside the
awaiting task's step: the loop alone decides the order of everything, as it does in virtual
time for every other task. It blocks the loop for the statement's duration, which a
wall-clock bot must not do; a paper session or a simulation in virtual time loses nothing.
"""

import sqlite3
from collections.abc import Iterable, Sequence
from typing import Any


class InLoopConnection:
    def __init__(self, connection: sqlite3.Connection):
        self._connection = connection

    @classmethod
    def connect(cls, path: str) -> "InLoopConnection":
        # autocommit as aiosqlite's connection is opened (isolation_level=None); the loop's
        # thread is the only one that uses it
        return cls(sqlite3.connect(path, isolation_level=None, check_same_thread=False))

    @property
    def row_factory(self) -> Any:
        return self._connection.row_factory

    @row_factory.setter
    def row_factory(self, factory: Any) -> None:
        self._connection.row_factory = factory

    @property
    def in_transaction(self) -> bool:
        return self._connection.in_transaction

    async def execute(self, sql: str, parameters: Sequence[Any] = ()) -> sqlite3.Cursor:
        return self._connection.execute(sql, parameters)

    async def executemany(self, sql: str, parameters: Iterable[Sequence[Any]]) -> sqlite3.Cursor:
        return self._connection.executemany(sql, parameters)

    async def execute_fetchall(self, sql: str, parameters: Sequence[Any] = ()) -> list[Any]:
        return self._connection.execute(sql, parameters).fetchall()

    async def close(self) -> None:
        self._connection.close()
