"""A `ports.repositories.Store` over any `Executor`; the dialect adapters supply the executor
and how a transaction begins."""

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import datetime

from tradecore.adapters.sql.executor import Codec, Executor
from tradecore.adapters.sql.reachability import Reachability, WatchedExecutor
from tradecore.adapters.sql.repositories import (
    SqlAlerts,
    SqlOperations,
    SqlOrders,
    SqlPositions,
    SqlSignals,
    SqlTrailing,
    SqlWaves,
    wall_clock,
)
from tradecore.ports.repositories import (
    AlertRepository,
    OperationRepository,
    OrderRepository,
    PositionRepository,
    SignalRepository,
    StoreUnavailable,
    TrailingRepository,
    WaveRepository,
)

BeginTransaction = Callable[[], AbstractAsyncContextManager[Executor]]


class SqlStore:
    """The repositories on one executor. `begin` is None inside a transaction (nested joins).
    `now` stamps the rows' `updated_at` (the application's clock, so virtual time in a paper
    session: no wall-clock read in a journal that must be the same on every run).
    `reachability` hears every call that finds the database gone or back (the journal)."""

    def __init__(
        self,
        db: Executor,
        codec: Codec,
        begin: BeginTransaction | None,
        now: Callable[[], datetime] = wall_clock,
        reachability: Reachability | None = None,
    ):
        self.reachability = reachability = reachability or Reachability()
        db = WatchedExecutor(db, reachability)
        self._codec = codec
        self._begin = begin
        self._now = now
        # Annotated with the ports so mypy checks every repository against its protocol.
        self.positions: PositionRepository = SqlPositions(
            db, codec, now, None if begin is None else self._watched
        )
        self.operations: OperationRepository = SqlOperations(db, codec)
        self.orders: OrderRepository = SqlOrders(db, codec)
        self.trailing: TrailingRepository = SqlTrailing(db, codec, now)
        self.waves: WaveRepository = SqlWaves(db, codec)
        self.signals: SignalRepository = SqlSignals(db, codec)
        self.alerts: AlertRepository = SqlAlerts(db, codec)

    @asynccontextmanager
    async def _watched(self) -> AsyncIterator[Executor]:
        """A transaction of one repository's write (a position saved with its events)."""
        assert self._begin is not None
        try:
            async with self._begin() as tx:
                yield WatchedExecutor(tx, self.reachability)
        except StoreUnavailable as error:
            self.reachability.failed(error)
            raise

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator["SqlStore"]:
        if self._begin is None:
            yield self
            return
        try:
            async with self._begin() as tx:
                yield SqlStore(tx, self._codec, None, self._now, self.reachability)
        except StoreUnavailable as error:
            self.reachability.failed(error)
            raise
