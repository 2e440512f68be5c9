"""A `ports.repositories.Store` over any `Executor`; the dialect adapters supply the executor
and how a transaction begins."""

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

from tradecore.adapters.sql.executor import Codec, Executor
from tradecore.adapters.sql.repositories import (
    SqlAlerts,
    SqlOperations,
    SqlOrders,
    SqlPositions,
    SqlSignals,
    SqlTrailing,
    SqlWaves,
)

BeginTransaction = Callable[[], AbstractAsyncContextManager[Executor]]


class SqlStore:
    """The repositories on one executor. `begin` is None inside a transaction (nested joins)."""

    def __init__(self, db: Executor, codec: Codec, begin: BeginTransaction | None):
        self._codec = codec
        self._begin = begin
        self.positions = SqlPositions(db, codec)
        self.operations = SqlOperations(db, codec)
        self.orders = SqlOrders(db, codec)
        self.trailing = SqlTrailing(db, codec)
        self.waves = SqlWaves(db, codec)
        self.signals = SqlSignals(db, codec)
        self.alerts = SqlAlerts(db, codec)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator["SqlStore"]:
        if self._begin is None:
            yield self
            return
        async with self._begin() as tx:
            yield SqlStore(tx, self._codec, None)
