"""A person's take-profit beside the bot's stop-loss (issue 11, item 3's bar).

On both venues, simulated and over the wire: a position with a user's TP and the bot's SL
keeps both through the guard's, the zombie sweeper's and the synchronizer's passes; a
position with only a TP gets a stop-loss, and the TP stays. The person places the TP the
way the venues' own tools do: a conditional order that triggers when the price moves the
position's way (Binance TAKE_PROFIT_MARKET on the algo endpoint, Bybit a conditional order
with `triggerDirection` 1 for a sell), or, on the simulated venue, `add_take_profit`.
"""

from decimal import Decimal

import ccxt.async_support as ccxt

from tradecore.domain.model import Side
from tradecore.domain.orders import Order, OrderType
from tradecore.testing import Accepted
from tradecore.testing.loopback import LoopbackVenue

from .conftest import Database
from .harness import App
from .invariants import journal_problems, stop_problems
from .test_ccxt_venues import on, settled, wire  # noqa: F401  (the loopback fixture)

SYMBOL = "BTCUSDT"


async def every_pass(app: App) -> None:
    await app.run(app.guard.check())
    await app.run(app.zombies.sweep())
    await app.run(app.sync.sync())
    await app.run(app.guard.check())


def take_profits(app: App) -> list[Order]:
    return [o for o in app.venue.engine.open_orders(SYMBOL) if o.type is OrderType.TAKE_PROFIT]


# ------------------------------------------------------------------ the simulated venues


async def test_a_users_take_profit_and_the_bots_stop_both_stay(app: App) -> None:
    opened = await app.open(SYMBOL, Side.LONG, "0.004")
    assert opened.opened
    [stop] = app.venue.stops(SYMBOL)
    added = app.venue.add_take_profit(SYMBOL, "55000")
    assert isinstance(added, Accepted), added
    assert added.order.type is OrderType.TAKE_PROFIT

    await every_pass(app)

    assert [s.order_id for s in app.venue.stops(SYMBOL)] == [stop.order_id]
    assert [tp.order_id for tp in take_profits(app)] == [added.order.order_id]
    assert await journal_problems(app.venue, app.store) == []

    await app.venue.set_mark(SYMBOL, "55000")  # the person's take-profit takes the profit
    assert app.venue.position(SYMBOL) is None


async def test_a_position_with_only_a_take_profit_gets_a_stop(app: App) -> None:
    app.gaps_allowed = 1  # from the person's removal of the stop to the guard's pass
    opened = await app.open(SYMBOL, Side.LONG, "0.004")
    assert opened.opened
    app.venue.cancel_stop(SYMBOL)
    added = app.venue.add_take_profit(SYMBOL, "55000")
    assert isinstance(added, Accepted) and added.order.type is OrderType.TAKE_PROFIT

    report = await app.run(app.guard.check())

    assert report.unprotected == 1
    assert stop_problems(app.venue) == []  # one stop-loss, for the full quantity
    await every_pass(app)
    assert [tp.order_id for tp in take_profits(app)] == [added.order.order_id]


async def test_a_users_trailing_stop_is_left_alone_and_never_counted_as_the_stop(
    app: App,
) -> None:
    app.gaps_allowed = 1  # from the person's removal of the stop to the guard's pass
    opened = await app.open(SYMBOL, Side.LONG, "0.004")
    assert opened.opened
    trailing = app.venue.add_trailing_stop(SYMBOL, rate="0.01")  # level 49500, tighter
    assert isinstance(trailing, Accepted) and trailing.order.type is OrderType.TRAILING_STOP
    [stop] = app.venue.stops(SYMBOL)

    await every_pass(app)  # the bot's stop is not "looser than a person's": nothing moves
    assert [s.order_id for s in app.venue.stops(SYMBOL)] == [stop.order_id]

    app.venue.cancel_stop(SYMBOL)  # only the person's trailing stop is left
    report = await app.run(app.guard.check())

    assert report.unprotected == 1
    assert stop_problems(app.venue) == []
    kinds = sorted(o.type.value for o in app.venue.engine.open_orders(SYMBOL))
    assert "trailing_stop" in kinds


# ---------------------------------------------------------------- over ccxt, on the wire


async def persons_take_profit(venue: LoopbackVenue, price: str) -> dict[str, object]:
    """The person's own tool on the same account: ccxt's unified take-profit order."""
    tool = venue.connect().client
    try:
        held = venue.engine.position(SYMBOL)
        assert held is not None
        return await tool.create_order(
            "BTC/USDT:USDT",
            "market",
            held.side.exit.value,
            float(held.quantity),
            None,
            {"takeProfitPrice": price, "reduceOnly": True},
        )
    finally:
        await tool.close()


async def test_over_ccxt_a_users_take_profit_and_the_bots_stop_both_stay(
    wire: LoopbackVenue,  # noqa: F811
    database: Database,
) -> None:
    app = on(wire, database)
    opened = await app.open(SYMBOL, Side.LONG, "0.004")
    assert opened.opened
    try:
        await persons_take_profit(wire, "55000")
    except ccxt.BaseError as refused:
        raise AssertionError(f"the venue refused the person's take-profit: {refused}") from None
    before = await wire.exchange.fetch_open_orders(SYMBOL)  # the bot's stop and the TP
    assert sorted(o.is_stop for o in before) == [False, True]
    assert [o.type for o in before if not o.is_stop] == [OrderType.TAKE_PROFIT]

    await every_pass(app)
    await settled(app)

    after = await wire.exchange.fetch_open_orders(SYMBOL)
    assert sorted(o.order_id for o in after) == sorted(o.order_id for o in before)
    assert await journal_problems(app.venue, app.store) == []


async def test_over_ccxt_a_position_with_only_a_take_profit_gets_a_stop(
    wire: LoopbackVenue,  # noqa: F811
    database: Database,
) -> None:
    app = on(wire, database)
    opened = await app.open(SYMBOL, Side.LONG, "0.004")
    assert opened.opened
    for stop in [o for o in wire.engine.open_orders(SYMBOL) if o.is_stop]:
        if stop.type is OrderType.POSITION_STOP:
            wire.engine.set_position_stop(SYMBOL, None, origin="manual")
        else:
            wire.engine.cancel(SYMBOL, stop.order_id, origin="manual")
    try:
        await persons_take_profit(wire, "55000")
    except ccxt.BaseError as refused:
        raise AssertionError(f"the venue refused the person's take-profit: {refused}") from None

    report = await app.run(app.guard.check())
    await settled(app)

    assert report.unprotected == 1
    [stop] = [o for o in wire.engine.open_orders(SYMBOL) if o.is_stop]
    assert stop.trigger_price is not None and stop.trigger_price < Decimal("50000")
    assert len(take_profits(app)) == 1
