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
from tradecore.ports.repositories import (
    AlertRepository,
    OperationRepository,
    OrderRepository,
    PositionRepository,
    SignalRepository,
    TrailingRepository,
    WaveRepository,
)

BeginTransaction = Callable[[], AbstractAsyncContextManager[Executor]]


class SqlStore:
    """The repositories on one executor. `begin` is None inside a transaction (nested joins)."""

    def __init__(self, db: Executor, codec: Codec, begin: BeginTransaction | None):
        self._codec = codec
        self._begin = begin
        # Annotated with the ports so mypy checks every repository against its protocol.
        self.positions: PositionRepository = SqlPositions(db, codec)
        self.operations: OperationRepository = SqlOperations(db, codec)
        self.orders: OrderRepository = SqlOrders(db, codec)
        self.trailing: TrailingRepository = SqlTrailing(db, codec)
        self.waves: WaveRepository = SqlWaves(db, codec)
        self.signals: SignalRepository = SqlSignals(db, codec)
        self.alerts: AlertRepository = SqlAlerts(db, codec)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator["SqlStore"]:
        if self._begin is None:
            yield self
            return
        async with self._begin() as tx:
            yield SqlStore(tx, self._codec, None)
