"""The application on the simulated venue, in virtual time, on a real database."""

import itertools
from collections.abc import Coroutine
from datetime import timedelta
from decimal import Decimal
from typing import Any, TypeVar, cast

import attrs

from tradecore.adapters.clock import SequentialIds, VirtualClock
from tradecore.adapters.virtual_time import CountedStore, ThreadWork, run_driven
from tradecore.adapters.virtual_time import drive as drive_clock
from tradecore.app.aged import AgedManager
from tradecore.app.kernel import KernelParts, Services, build_services
from tradecore.app.open_position import OpenPosition, OpenRequest, OpenResult
from tradecore.app.protection import ProtectionGuard
from tradecore.app.settings import TradingSettings
from tradecore.app.stop_keeper import KeeperSettings, StopKeeper
from tradecore.app.sync import Synchronizer
from tradecore.app.trailing import TrailingService
from tradecore.app.waves import WaveProcessor
from tradecore.app.zombies import ZombieSweeper
from tradecore.domain.events import Event, EventType
from tradecore.domain.model import Side
from tradecore.domain.precision import MarketRules
from tradecore.ports.alerts import Alerter
from tradecore.ports.events import EventSink
from tradecore.ports.exchange import Exchange
from tradecore.ports.repositories import Store
from tradecore.testing import EventLog, FakeVenue, FreeLock

T = TypeVar("T")


class ListSink(EventLog):
    """The public in-memory event sink, also noting each type for the coverage check."""

    def emit(self, event: Event) -> None:
        EMITTED.add(event.type)
        super().emit(event)


@attrs.define
class App:
    venue: FakeVenue
    store: Store
    sink: ListSink
    parts: KernelParts
    services: Services
    work: ThreadWork
    gaps_allowed: int = 0  # gaps a scenario makes on purpose (see invariants.gap_problems)

    @property
    def clock(self) -> VirtualClock:
        return self.venue.clock

    @property
    def keeper(self) -> StopKeeper:
        return self.services.keeper

    @property
    def opener(self) -> OpenPosition:
        return self.services.opener

    @property
    def trailing(self) -> TrailingService:
        return self.services.trailing

    @property
    def guard(self) -> ProtectionGuard:
        return self.services.guard

    @property
    def sync(self) -> Synchronizer:
        return self.services.sync

    @property
    def zombies(self) -> ZombieSweeper:
        return self.services.zombies

    @property
    def aged(self) -> AgedManager:
        return self.services.aged

    @property
    def waves(self) -> WaveProcessor:
        return self.services.waves

    async def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        """Run `coroutine` to its end, moving virtual time only while it waits on the clock."""
        return await run_driven(self.clock, self.work, coroutine)

    async def open(self, symbol: str, side: Side, quantity: str) -> OpenResult:
        request = OpenRequest(
            symbol=symbol, side=side, quantity=Decimal(quantity), rules=self.venue.rules(symbol)
        )
        return await self.run(self.opener.open(request))


_PROCESSES = itertools.count(1)
SETTINGS = TradingSettings(keeper=KeeperSettings(attempts=3, retry_delay_seconds=0.2, lookups=3))


def build_app(
    venue: FakeVenue,
    store: Store,
    *,
    settings: TradingSettings = SETTINGS,
    sink: ListSink | None = None,
    exchange: Exchange | None = None,
    alerter: Alerter | None = None,
) -> App:
    """The application's use cases on `venue` and `store`, wired as the kernel wires them.

    `exchange` replaces the venue's own port (e.g. by one that crashes on cue).
    """
    sink = sink or ListSink()
    work = ThreadWork()
    parts = KernelParts(
        exchange=exchange or venue.exchange,
        store=cast(Store, CountedStore(store, work)),
        events=sink,
        clock=venue.clock,
        ids=SequentialIds(f"p{next(_PROCESSES)}x"),  # each process its own id space
        lock=FreeLock(),
        account="test",
        settings=settings,
        alerter=alerter,
    )
    services = build_services(parts, venue.engine.markets)
    return App(venue=venue, store=store, sink=sink, parts=parts, services=services, work=work)


async def pass_time(app: App, seconds: float) -> None:
    """Let `seconds` of virtual time pass, every task (and store call) catching up on the way."""
    end = app.clock.now() + timedelta(seconds=seconds)
    await drive_clock(app.clock, app.work, until=lambda: False, end=end)


async def follow_marks(app: App, symbols: list[str]) -> None:
    """Feed the venue's mark stream to the trailing service (the kernel's job in production)."""
    async for tick in app.venue.exchange.watch_mark_prices(symbols):
        await app.trailing.on_tick(tick)


def many_markets(count: int, *, mark: str = "100") -> tuple[list[MarketRules], dict[str, str]]:
    """`count` plain markets S00USDT… with a 0.01 tick, 0.1 step, 5 USDT minimum notional."""
    rules = [
        MarketRules(
            symbol=f"S{i:02d}USDT",
            tick_size="0.01",
            step_size="0.1",
            min_quantity="0.1",
            min_notional="5",
            max_leverage="50",
        )
        for i in range(count)
    ]
    return rules, {r.symbol: mark for r in rules}


class RecordingSink(ListSink):
    """Passes events on to a real sink (the journal) and keeps them for the test to read."""

    def __init__(self, inner: EventSink) -> None:
        super().__init__()
        self.inner = inner

    def emit(self, event: Event) -> None:
        super().emit(event)
        self.inner.emit(event)

    async def flush(self) -> None:
        await self.inner.flush()

    async def close(self) -> None:
        await self.inner.close()


EMITTED: set[EventType] = set()
"""Every event type any scenario emitted in this session (for the coverage check)."""
