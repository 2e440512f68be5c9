"""Issue 12, item 8: a trailing stop's move never waits for the database.

The move leaves on the tick; the trailing state is journaled after it. A crash in between
leaves the journal one move behind the venue, and a restart takes the venue's stop — the
last one the bot set — never the older journaled one.
"""

import asyncio
import contextlib
import inspect
from collections.abc import AsyncIterator, Awaitable, Callable
from decimal import Decimal
from typing import Any, cast

import pytest

from tradecore.adapters.virtual_time import ThreadWork
from tradecore.domain.model import Side
from tradecore.domain.orders import MarkTick
from tradecore.domain.trailing import TrailingState
from tradecore.ports.exchange import Exchange
from tradecore.ports.repositories import Store
from tradecore.testing import FakeVenue

from .conftest import ROUND_TRIP, Database, Opener
from .crash import Crash, Tripwire, tripped_exchange
from .harness import App, build_app, pass_time
from .proxy import StoreProxy
from .test_crash import recover_and_check

QTY = "0.004"
STOP_COMMANDS = frozenset({"create_stop_order", "set_position_stop", "amend_order"})


@pytest.fixture(params=["binance", "bybit"])
def profile(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def make_venue(profile: str, *, latency: float = 0.0) -> FakeVenue:
    return (FakeVenue.bybit if profile == "bybit" else FakeVenue.binance)(latency=latency)


def tick(app: App, symbol: str, price: str) -> MarkTick:
    return MarkTick(
        venue=app.venue.exchange.venue, symbol=symbol, mark=Decimal(price), at=app.clock.now()
    )


def venue_stop(venue: FakeVenue, symbol: str) -> Decimal | None:
    held = venue.position(symbol)
    if held is not None and held.stop_price is not None:
        return held.stop_price
    stops = venue.stops(symbol)
    return max((s.trigger_price for s in stops if s.trigger_price is not None), default=None)


class _SlowTrailing:
    """The trailing repository of a database whose writes stall while `stalled` is set."""

    def __init__(self, inner: Any, stalled: asyncio.Event, resumed: asyncio.Event) -> None:
        self._inner = inner
        self._stalled = stalled
        self._resumed = resumed

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    async def save(self, state: TrailingState) -> None:
        if self._stalled.is_set():
            await self._resumed.wait()
        await self._inner.save(state)


class StallingStore:
    """`store`, except that trailing states wait for the disk while the test says so."""

    def __init__(self, store: Store) -> None:
        self.stalled, self.resumed = asyncio.Event(), asyncio.Event()
        self._store = store
        for name in ("positions", "operations", "orders", "waves", "signals", "alerts"):
            setattr(self, name, getattr(store, name))
        self.trailing = _SlowTrailing(store.trailing, self.stalled, self.resumed)

    def transaction(self) -> Any:
        return self._store.transaction()


class WatchedExchange:
    """The venue's port, noting the moment a stop command is sent to it."""

    def __init__(self, exchange: Any) -> None:
        self._exchange = exchange
        self.stop_sent = asyncio.Event()

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._exchange, name)
        if name in STOP_COMMANDS and inspect.iscoroutinefunction(value):

            async def sent(*args: Any, **kwargs: Any) -> Any:
                self.stop_sent.set()
                return await value(*args, **kwargs)

            return sent
        return value


async def test_a_stop_move_is_sent_while_its_trailing_state_waits_for_the_disk(
    profile: str, database: Database
) -> None:
    venue = make_venue(profile)
    store = StallingStore(database.store)
    exchange = WatchedExchange(venue.exchange)
    app = build_app(venue, cast(Store, store), exchange=cast(Exchange, exchange))
    result = await app.open("BTCUSDT", Side.LONG, QTY)
    assert result.position is not None
    await app.run(app.trailing.start(result.position))
    before = venue_stop(venue, "BTCUSDT")
    exchange.stop_sent.clear()

    await venue.set_mark("BTCUSDT", "51500")
    store.stalled.set()  # the disk takes its time over the next trailing state
    ticking = asyncio.create_task(app.trailing.on_tick(tick(app, "BTCUSDT", "51500")))
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(exchange.stop_sent.wait(), 5)  # real seconds: nothing is slow
    sent = exchange.stop_sent.is_set()
    store.resumed.set()
    await ticking
    await pass_time(app, 5)

    assert sent, "the stop move waited for the trailing state's write"
    after = venue_stop(venue, "BTCUSDT")
    assert before is not None and after is not None and after > before
    saved = await database.store.trailing.get(result.position.id)
    assert saved is not None and saved.stop_price == after  # and then it was journaled


class DyingWire(Tripwire):
    """A crash at one await, after which the process is dead: every later await of its
    tasks (a stop move, a journal write in the background) dies too. A database call is
    counted as work in flight (`work`), so the virtual clock waits for its answer."""

    work: ThreadWork | None = None

    async def around(self, call: Callable[[], Awaitable[Any]]) -> Any:
        if self.fired:
            raise Crash("the process is dead")
        return await super().around(call)

    async def around_store(self, call: Callable[[], Awaitable[Any]]) -> Any:
        if self.work is None:
            return await self.around(call)
        return await self.work.counted(self.around(call))


@contextlib.asynccontextmanager
async def a_trailed_position(
    profile: str, open_database: Opener
) -> AsyncIterator[tuple[FakeVenue, Database, str]]:
    venue = make_venue(profile, latency=ROUND_TRIP)
    database = await open_database()
    try:
        setup = build_app(venue, database.store)
        result = await setup.open("BTCUSDT", Side.LONG, QTY)
        assert result.position is not None
        await setup.run(setup.trailing.start(result.position))
        yield venue, database, result.position.id
    finally:
        await database.close()


async def test_a_crash_anywhere_in_a_tick_s_stop_move_restarts_on_the_venue_s_stop(
    profile: str, open_database: Opener
) -> None:
    """Every await of a tick's move crashed in turn (before and after it): the restarted bot's
    level is the stop the venue holds — the journal may be a move behind, never ahead."""
    crashed = 0
    for at in range(1, 40):
        completed = True
        for after in (False, True):
            async with a_trailed_position(profile, open_database) as (venue, database, pid):
                wire = DyingWire(0, after=after)  # armed once the process is up
                store = cast(Store, StoreProxy(database.store, wire.around_store))
                exchange = cast(Exchange, tripped_exchange(venue.exchange, wire))
                app = build_app(venue, store, exchange=exchange)
                wire.work = app.work
                await app.run(app.trailing.restore())
                wire.at = wire.count + at
                await venue.set_mark("BTCUSDT", "51500")
                with contextlib.suppress(Crash):
                    await app.trailing.on_tick(tick(app, "BTCUSDT", "51500"))
                with contextlib.suppress(Crash):
                    await pass_time(app, 5)
                completed = completed and not wire.fired
                crashed += wire.fired
                wire.fired = True  # the process is gone; what it had sent lands meanwhile
                with contextlib.suppress(Crash):
                    await pass_time(app, 1)

                await recover_and_check(venue, database)
                level = venue_stop(venue, "BTCUSDT")
                survivor = build_app(venue, database.store)
                await survivor.run(survivor.trailing.restore())
                state = survivor.trailing.state(pid)
                journaled = await database.store.positions.get(pid)
                assert state is not None and journaled is not None
                assert journaled.stop_price == level, (at, after)
                assert state.stop_price == level, (at, after)
        if completed:
            break
    assert crashed >= 6  # the move really has that many awaits, each one crashed
