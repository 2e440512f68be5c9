"""A few application scenarios through the real ccxt client and the venues' wire formats.

The same use cases as on the paper adapter, but every venue call is ccxt talking HTTP to a
loopback Binance fapi / Bybit v5 server backed by the simulated venue's engine: an open, a
trailing stop that moves, and a crash after the venue accepted the stop, recovered by a new
process with a new client.
"""

import asyncio
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any, cast

import pytest

from tradecore.app.kernel import Kernel
from tradecore.domain.model import Side
from tradecore.domain.orders import MarkTick, Order, VenuePosition
from tradecore.domain.positions import PositionState
from tradecore.domain.precision import MarketRules
from tradecore.ports.exchange import Exchange
from tradecore.testing import FakeVenue, Fault, Op
from tradecore.testing.loopback import LoopbackVenue

from .conftest import Database
from .crash import Crash, Tripwire, tripped_exchange
from .harness import App, build_app, pass_time
from .invariants import entries_sent, journal_problems, stop_problems


class OnTheWire:
    """The paper venue's reading surface over a loopback venue, for the harness and checks."""

    def __init__(self, loopback: LoopbackVenue, exchange: Exchange | None = None) -> None:
        self.loopback = loopback
        self.exchange = exchange or loopback.exchange
        self.clock = loopback.clock
        self.engine = loopback.engine
        self.books = loopback.books

    def rules(self, symbol: str) -> MarketRules:
        return self.loopback.rules(symbol)

    def position(self, symbol: str) -> VenuePosition | None:
        return self.engine.position(symbol)

    def stops(self, symbol: str) -> list[Order]:
        return [o for o in self.engine.open_orders(symbol) if o.is_stop]

    async def set_mark(self, symbol: str, mark: Decimal | str | int) -> None:
        await self.loopback.set_mark(symbol, mark)

    def unprotected_intervals(self, symbol: str | None = None) -> tuple[Any, ...]:
        return self.books.unprotected_intervals(symbol)


@pytest.fixture(params=["binance", "bybit"])
async def wire(request: pytest.FixtureRequest) -> AsyncIterator[LoopbackVenue]:
    loopback = LoopbackVenue.binance() if request.param == "binance" else LoopbackVenue.bybit()
    await loopback.start()
    yield loopback
    await loopback.close()


def on(loopback: LoopbackVenue, database: Database, exchange: Exchange | None = None) -> App:
    return build_app(
        cast(FakeVenue, OnTheWire(loopback, exchange)),
        database.store,
        exchange=exchange or loopback.exchange,
    )


async def settled(app: App) -> None:
    while app.trailing.busy:  # ccxt's HTTP is real I/O the clock does not wait for
        await asyncio.sleep(0.005)


async def test_an_open_over_ccxt_ends_protected_for_the_filled_quantity(
    wire: LoopbackVenue, database: Database
) -> None:
    app = on(wire, database)

    result = await app.open("BTCUSDT", Side.LONG, "0.004")

    assert result.opened and result.state is PositionState.ACTIVE
    venue = cast(FakeVenue, OnTheWire(wire))
    assert stop_problems(venue) == []
    assert await journal_problems(venue, database.store) == []


async def test_an_entry_answered_with_a_5xx_after_it_filled_is_found_and_protected(
    wire: LoopbackVenue, database: Database
) -> None:
    """Story 9: the venue filled the entry, then answered 503; the open must not fail."""
    app = on(wire, database)
    app.gaps_allowed = 1  # the look-up that finds the entry is one more round trip bare
    wire.inject(Fault.server_error(Op.MARKET_ORDER, acted=True))

    result = await app.open("BTCUSDT", Side.LONG, "0.004")

    assert result.opened and result.state is PositionState.ACTIVE
    venue = cast(FakeVenue, OnTheWire(wire))
    assert entries_sent(venue, "BTCUSDT") == Decimal("0.004")  # found, not sent again
    assert stop_problems(venue) == []
    assert await journal_problems(venue, database.store) == []


async def test_a_trailing_stop_over_ccxt_moves_up_and_the_venue_holds_one_stop(
    wire: LoopbackVenue, database: Database
) -> None:
    app = on(wire, database)
    result = await app.open("BTCUSDT", Side.LONG, "0.004")
    assert result.position is not None
    await app.trailing.start(result.position)

    for price in ("50800", "51200", "51600"):
        wire.engine.set_mark("BTCUSDT", Decimal(price))
        tick = MarkTick(
            venue=wire.engine.venue, symbol="BTCUSDT", mark=Decimal(price), at=wire.clock.now()
        )
        await app.trailing.on_tick(tick)
        await settled(app)
        await pass_time(app, 61)

    state = app.trailing.state(result.position.id)
    venue = cast(FakeVenue, OnTheWire(wire))
    [stop] = venue.stops("BTCUSDT")
    assert state is not None and stop.trigger_price == state.stop_price
    assert stop.trigger_price is not None and stop.trigger_price > Decimal("51000")
    assert stop_problems(venue) == []


async def test_a_crash_after_the_venue_took_the_stop_is_recovered_by_a_new_process(
    wire: LoopbackVenue, database: Database
) -> None:
    tripwire = Tripwire(0, after=True)  # armed below
    app = on(wire, database, cast(Exchange, tripped_exchange(wire.exchange, tripwire)))
    await app.run(app.services.margin.prepare("BTCUSDT"))  # leverage and margin mode first
    # Then the open's venue calls: the mark (#1), the entry (#2), the stop (#3). Die after #3.
    tripwire.at = tripwire.count + 3
    with pytest.raises(Crash):
        await app.open("BTCUSDT", Side.LONG, "0.004")
    assert OnTheWire(wire).stops("BTCUSDT")  # the venue has the stop; the journal does not
    survivor = on(wire, database, wire.connect())

    await survivor.run(Kernel(survivor.parts).start(loops=False))

    venue = cast(FakeVenue, OnTheWire(wire))
    assert stop_problems(venue) == []
    assert await journal_problems(venue, database.store) == []
    assert await database.store.operations.in_flight() == []
    assert entries_sent(venue, "BTCUSDT") <= Decimal("0.004")
