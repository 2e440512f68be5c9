"""What the scenarios written from outside share: the application on the public test surface
(`tradecore.testing`: a FakeVenue, `TradingApp` on in-memory SQLite) and their venues."""

import contextlib
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

from tradecore.domain.model import Side
from tradecore.domain.orders import MarkTick
from tradecore.domain.precision import MarketRules
from tradecore.testing import FakeVenue, Fault, TradingApp

from .conftest import ROUND_TRIP

# a minimum quantity above the step (MarketRules allows it): a fill of 0.003 is below it;
# whether a real Binance market lists such figures is not checked: inferred
BELOW_MINIMUM = MarketRules(
    symbol="BTCUSDT",
    tick_size=Decimal("0.1"),
    step_size=Decimal("0.001"),
    min_quantity=Decimal("0.005"),
    min_notional=Decimal("5"),
    max_leverage=Decimal(100),
)


@contextlib.asynccontextmanager
async def running(venue: FakeVenue, **options: Any) -> AsyncIterator[TradingApp]:
    """The application on `venue` and in-memory SQLite, started; closed however the test ends."""
    app = await TradingApp.on_sqlite(venue, **options)
    await app.start()
    try:
        yield app
    finally:
        await app.close()


def btc_venue(name: str, **options: Any) -> FakeVenue:
    """A Binance or Bybit account, BTCUSDT marked at 50000 (`options`: FakeVenue's)."""
    maker = FakeVenue.binance if name == "binance" else FakeVenue.bybit
    return maker(marks={"BTCUSDT": "50000"}, latency=ROUND_TRIP, **options)


def binance_with_a_minimum_above_the_step() -> FakeVenue:
    """A Binance account whose BTCUSDT (at 50000) is `BELOW_MINIMUM`'s market."""
    return FakeVenue.binance(
        marks={"BTCUSDT": "50000"}, latency=ROUND_TRIP, markets=[BELOW_MINIMUM]
    )


async def open_below_minimum(app: TradingApp, venue: FakeVenue) -> None:
    """An open of 0.01 BTCUSDT of which only 0.003 fills: below the market's minimum."""
    venue.inject(Fault.partial_fill("0.3"))
    await app.open("BTCUSDT", Side.LONG, "0.01")


async def mark_moves(
    app: TradingApp, venue: FakeVenue, price: str, *, then: float = 20, symbol: str = "BTCUSDT"
) -> None:
    """The mark moves to `price`; the trailing stop hears of it; `then` seconds pass."""
    await venue.set_mark(symbol, price)
    tick = MarkTick(venue=venue.exchange.venue, symbol=symbol, mark=Decimal(price), at=venue.now())
    await app.services.trailing.on_tick(tick)
    await app.pass_time(then)
