"""A stop move never undercuts a person's tighter stop the keeper has not seen yet.

Found by the simulator (binance seeds 79 and 82): a person tightened a trailed short's stop
by hand; before a guard pass noticed, the trailing stop moved from the journal's level and
placed the bot's new stop looser than the person's. The rule (issue 10): a person's tighter
stop becomes the bot's level and the bot never sets a looser one. The keeper now reads the
venue's stops before a move: a tighter full stop standing is adopted, not undercut.
"""

from decimal import Decimal

import pytest

from tradecore.domain.model import OrderSide, Side
from tradecore.domain.orders import OrderType
from tradecore.domain.positions import StopOwner
from tradecore.testing import FakeVenue, TradingApp


def venues() -> list[FakeVenue]:
    return [
        FakeVenue.binance(marks={"BTCUSDT": "50000"}, latency=0.05),
        FakeVenue.bybit(marks={"BTCUSDT": "50000"}, latency=0.05),
    ]


@pytest.mark.parametrize("venue", venues(), ids=["binance", "bybit"])
async def test_a_trailing_move_adopts_a_persons_tighter_stop_instead_of_undercutting_it(
    venue: FakeVenue,
) -> None:
    app = await TradingApp.on_sqlite(venue)
    await app.start()
    opened = await app.open("BTCUSDT", Side.LONG, "0.01")
    assert opened.opened and opened.position is not None
    first = [s.trigger_price for s in venue.stops("BTCUSDT")]
    assert first == [Decimal("48500")]

    venue.move_stop("BTCUSDT", Decimal("49500"))  # a person tightens it by hand
    position = await app.store.positions.get(opened.position.id)
    assert position is not None
    result = await app.run(
        app.services.keeper.apply(
            position, Decimal("49000"), owner=StopOwner.TRAILING, reason="trail"
        )
    )

    placed = [
        r.trigger_price
        for r in venue.books.orders_for("BTCUSDT")
        if r.origin in ("api", "entry") and r.trigger_price is not None
    ]
    assert placed == [Decimal("48500")]  # no stop of the bot's looser than the person's
    assert [s.trigger_price for s in venue.stops("BTCUSDT")] == [Decimal("49500")]
    assert result.ok and result.position.stop_price == Decimal("49500")  # the bot's level now
    await app.close()


@pytest.mark.parametrize("venue", venues(), ids=["binance", "bybit"])
async def test_a_move_past_a_persons_stop_leaves_one_stop_not_the_persons_too(
    venue: FakeVenue,
) -> None:
    """Simulator binance seed 51 (one_stop): a person replaced the bot's stop with a tighter
    one of their own; the next trailing move wants a stop tighter still. The bot's journaled
    stop is gone, so the bot places its own — and left the person's standing: two full stops
    for good. Every other full stop the keeper saw on its fresh read goes once the new one
    stands."""
    app = await TradingApp.on_sqlite(venue)
    await app.start()
    opened = await app.open("BTCUSDT", Side.LONG, "0.01")
    assert opened.opened and opened.position is not None
    venue.cancel_stop("BTCUSDT")  # a person swaps the bot's stop for a tighter one by hand
    venue.manual_stop("BTCUSDT", OrderSide.SELL, "0.01", "49500")
    position = await app.store.positions.get(opened.position.id)
    assert position is not None

    result = await app.run(
        app.services.keeper.apply(
            position, Decimal("49800"), owner=StopOwner.TRAILING, reason="trail"
        )
    )

    assert result.ok and result.position.stop_price == Decimal("49800")
    assert [s.trigger_price for s in venue.stops("BTCUSDT")] == [Decimal("49800")]
    await app.close()


@pytest.mark.parametrize("venue", venues(), ids=["binance", "bybit"])
async def test_a_move_leaves_a_persons_order_that_is_no_stop_loss_alone(venue: FakeVenue) -> None:
    """Only what the guard counts as the position's stop-loss (reduce-only, close-position or
    attached) is retired as a second stop: a person's plain stop order, which could open a
    position the other way, is not the keeper's to cancel."""
    app = await TradingApp.on_sqlite(venue)
    await app.start()
    opened = await app.open("BTCUSDT", Side.LONG, "0.01")
    assert opened.opened and opened.position is not None
    plain = venue.engine.place_stop(
        "BTCUSDT",
        OrderSide.SELL,
        Decimal("0.02"),
        Decimal("48000"),
        reduce_only=False,
        origin="manual",
    )
    position = await app.store.positions.get(opened.position.id)
    assert position is not None

    result = await app.run(
        app.services.keeper.apply(
            position, Decimal("49800"), owner=StopOwner.TRAILING, reason="trail"
        )
    )

    assert result.ok and result.position.stop_price == Decimal("49800")
    standing = {s.order_id for s in venue.engine.open_orders("BTCUSDT")}
    assert plain.order.order_id in standing  # type: ignore[union-attr]
    await app.close()


@pytest.mark.parametrize("venue", venues(), ids=["binance", "bybit"])
async def test_a_move_never_trades_the_bots_stop_loss_for_a_persons_plain_stop(
    venue: FakeVenue,
) -> None:
    """Review finding 4: a person's plain (not reduce-only) stop, tighter than the move, was
    adopted as the bot's level and the bot's reduce-only stop cancelled — leaving the position
    with only an order the guard does not count as a stop-loss. Only a stop-loss as the guard
    counts it (reduce-only, close-position or attached) may be adopted."""
    app = await TradingApp.on_sqlite(venue)
    await app.start()
    opened = await app.open("BTCUSDT", Side.LONG, "0.01")
    assert opened.opened and opened.position is not None
    plain = venue.engine.place_stop(
        "BTCUSDT",
        OrderSide.SELL,
        Decimal("0.01"),
        Decimal("49900"),
        reduce_only=False,
        origin="manual",
    )
    position = await app.store.positions.get(opened.position.id)
    assert position is not None

    result = await app.run(
        app.services.keeper.apply(
            position, Decimal("49800"), owner=StopOwner.TRAILING, reason="trail"
        )
    )

    assert result.ok and result.position.stop_price == Decimal("49800")
    assert result.position.stop_order_id != plain.order.order_id  # type: ignore[union-attr]
    counted = [
        o.trigger_price
        for o in venue.stops("BTCUSDT")
        if o.reduce_only or o.close_position or o.type is OrderType.POSITION_STOP
    ]
    assert counted == [Decimal("49800")]  # the bot's stop-loss stands (on Bybit: attached)
    await app.close()
