"""`TradingApp`: the whole application on a `FakeVenue`, its use cases one call away.

    venue = FakeVenue.binance(latency=0.05)
    app = await TradingApp.on_sqlite(venue)        # the real SQLite store, in memory
    await app.start()                               # lock, migrate, recover (no loops)
    result = await app.open("BTCUSDT", Side.LONG, "0.01")
    venue.cancel_stop("BTCUSDT")                   # a person removes the stop
    await app.guard_pass()                          # one protection pass puts it back
    await app.crash()                               # the process dies, no shutdown
    await app.restart()                             # a new kernel on the same store and venue

Every call runs in the venue's virtual time and returns when the application is done; the
kernel's wiring stays private. See docs/testing.md ("The application in a test").
"""

import asyncio
from collections.abc import Coroutine
from decimal import Decimal
from typing import Any, TypeVar, cast

from tradecore.adapters.sqlite.database import SqliteDatabase
from tradecore.adapters.virtual_time import CountedStore, ThreadWork, drive, run_driven
from tradecore.app.kernel import Kernel, KernelParts, RecoveryReport, Services
from tradecore.app.open_position import OpenRequest, OpenResult
from tradecore.app.protection import ProtectionReport, ProtectionView
from tradecore.app.settings import TradingSettings
from tradecore.app.sync import SyncReport
from tradecore.app.zombies import SweepReport
from tradecore.domain.model import Side
from tradecore.domain.orders import VenuePosition
from tradecore.ports.exchange import ExchangeUnavailable
from tradecore.ports.repositories import Store
from tradecore.testing import EventLog, FakeVenue, FreeLock

T = TypeVar("T")


class _LifeIds:
    """Ids that never repeat across the app's lives (a restart is a new id space)."""

    def __init__(self, life: int) -> None:
        self._life = life
        self._next = 0

    def new_id(self) -> str:
        self._next += 1
        return f"a{self._life}x{self._next}"

    def new_uuid(self) -> Any:
        import uuid

        self._next += 1
        return uuid.UUID(int=(self._life << 64) | self._next)


class TradingApp:
    """The application (a `Kernel`) on a fake venue and a store, driven in virtual time."""

    def __init__(
        self,
        venue: FakeVenue,
        store: Store,
        *,
        settings: TradingSettings | None = None,
        events: EventLog | None = None,
        account: str = "test",
    ) -> None:
        self.venue = venue
        self.store = store
        self.settings = settings or TradingSettings()
        self.events = events or EventLog()
        self.account = account
        self.work = ThreadWork()
        self.kernel: Kernel | None = None
        self._lives = 0
        self._before: set[asyncio.Task[Any]] = set()
        self._database: SqliteDatabase | None = None

    @classmethod
    async def on_sqlite(cls, venue: FakeVenue, **options: Any) -> "TradingApp":
        """The app on a new in-memory SQLite database (closed by `close()`)."""
        database = await SqliteDatabase.connect(":memory:")
        app = cls(venue, database.store, **options)
        app._database = database
        return app

    @property
    def services(self) -> Services:
        """The use cases of the running kernel (read-only use: reports, trailing state)."""
        if self.kernel is None:
            raise RuntimeError("start the app first")
        return self.kernel.services

    def protection_view(self) -> ProtectionView:
        """What `/health` and the metrics report as unprotected: the symbols the last
        protection pass left without a stop (empty before the first pass)."""
        return self.kernel.protection_view() if self.kernel is not None else ProtectionView()

    # ----------------------------------------------------------------- life

    async def start(self, *, loops: bool = False) -> RecoveryReport:
        """Start a kernel: lock, migrate, recover; the periodic loops only if `loops`."""
        self._lives += 1
        self._before = set(asyncio.all_tasks())
        parts = KernelParts(
            exchange=self.venue.exchange,
            store=cast(Store, CountedStore(self.store, self.work)),
            events=self.events,
            clock=self.venue.clock,
            ids=_LifeIds(self._lives),
            lock=FreeLock(),
            account=self.account,
            settings=self.settings,
        )
        self.kernel = Kernel(parts)
        return await self.run(self.kernel.start(loops=loops))

    async def crash(self) -> None:
        """The process dies: every task it started is cancelled, nothing is shut down."""
        current = asyncio.current_task()
        doomed = [t for t in asyncio.all_tasks() if t not in self._before and t is not current]
        for task in doomed:
            task.cancel()
        await asyncio.gather(*doomed, return_exceptions=True)
        await self.venue.exchange.close()  # its mark streams die with it
        self.kernel = None

    async def restart(self, *, loops: bool = False) -> RecoveryReport:
        """A new kernel on the same store and venue (after `crash()` or `stop()`)."""
        return await self.start(loops=loops)

    async def stop(self) -> None:
        """A graceful stop (positions stay open, protected on the venue)."""
        if self.kernel is not None:
            await self.run(self.kernel.stop("test over"))
            self.kernel = None

    async def close(self) -> None:
        await self.stop()
        if self._database is not None:
            await self._database.close()

    # ----------------------------------------------------------------- use cases

    async def open(
        self, symbol: str, side: Side, quantity: Decimal | str, *, signal_id: str | None = None
    ) -> OpenResult:
        """Open a position now (the atomic open: entry, stop, rollback on failure), as a
        wave opens a signal: the venue's positions read first, none opened on a symbol the
        venue holds (unread: only the journal is asked)."""
        request = OpenRequest(
            symbol=symbol,
            side=side,
            quantity=Decimal(quantity),
            rules=self.venue.rules(symbol),
            signal_id=signal_id,
            venue_positions=await self.run(self._venue_positions()),
        )
        result = await self.run(self.services.opener.open(request))
        if result.opened and result.position is not None:
            await self.run(self.services.trailing.start_for(result.position))
        return result

    async def _venue_positions(self) -> tuple[VenuePosition, ...] | None:
        try:
            return tuple(await self.venue.exchange.fetch_positions())
        except ExchangeUnavailable:
            return None

    async def guard_pass(self) -> ProtectionReport:
        """One protection pass."""
        return await self.run(self.services.guard.check())

    async def sync_pass(self) -> SyncReport:
        """One synchronization pass."""
        return await self.run(self.services.sync.sync())

    async def zombie_pass(self) -> SweepReport:
        """One zombie-order sweep."""
        return await self.run(self.services.zombies.sweep())

    async def aged_pass(self) -> int:
        """One aged-position check."""
        return await self.run(self.services.aged.check())

    # ----------------------------------------------------------------- time

    async def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        """Run `coroutine` to its end, virtual time moving only while it waits on the clock."""
        return await run_driven(self.venue.clock, self.work, coroutine)

    async def pass_time(self, seconds: float) -> None:
        """Let `seconds` of virtual time pass, every task of the app catching up on the way."""
        from datetime import timedelta

        end = self.venue.clock.now() + timedelta(seconds=seconds)
        await drive(self.venue.clock, self.work, until=lambda: False, end=end)
