"""An aged position's limit exit order outlived the position (the simulator beyond the CI
seeds, bybit seed 283): the position's stop filled, the venue kept the reduce-only limit
sell (a venue may, docs/venues.md), and nothing of the bot's cancelled it; the next wave
opened the symbol again, and the zombie pass, finding a position there, took the old
position's exit for one of the new position's — a limit that would have sold it at the old
position's breakeven. The bot cancels a position's exit orders when it journals it closed,
and an exit order naming any position but the one the journal holds is a zombie."""

from decimal import Decimal

import pytest

from tradecore.domain.model import Side
from tradecore.domain.orders import OrderType
from tradecore.testing import FakeVenue, Fault, Op, RejectReason, TradingApp

from .conftest import ROUND_TRIP
from .outside import running


def _keeping_reduce_only_orders(name: str) -> FakeVenue:
    maker = FakeVenue.binance if name == "binance" else FakeVenue.bybit
    return maker(marks={"BTCUSDT": "50000"}, latency=ROUND_TRIP, cancel_reduce_only_when_flat=False)


def _limits(venue: FakeVenue) -> list[str]:
    return [o.order_id for o in venue.engine.open_orders("BTCUSDT") if o.type is OrderType.LIMIT]


async def _aged_then_stopped_out(app: TradingApp, venue: FakeVenue) -> None:
    """An aged long with its exit order standing, then its stop fires: the venue is flat."""
    assert (await app.open("BTCUSDT", Side.LONG, "0.01")).opened  # its stop at 48500
    await venue.set_mark("BTCUSDT", "49500")  # under water
    await app.pass_time(3 * 3600 + 60)  # past the aged threshold (3 h): exit at breakeven
    await app.aged_pass()
    assert _limits(venue), "the premise: the aged exit order stands"
    await venue.set_mark("BTCUSDT", "48400")
    assert venue.position("BTCUSDT") is None


@pytest.mark.parametrize("venue_name", ["binance", "bybit"])
async def test_an_aged_exit_is_cancelled_when_its_position_is_journaled_closed(
    venue_name: str,
) -> None:
    venue = _keeping_reduce_only_orders(venue_name)
    async with running(venue) as app:
        await _aged_then_stopped_out(app, venue)
        await app.sync_pass()

        assert _limits(venue) == [], "the aged exit outlived its position"


@pytest.mark.parametrize("venue_name", ["binance", "bybit"])
async def test_an_old_positions_exit_is_a_zombie_for_the_next_position_on_the_symbol(
    venue_name: str,
) -> None:
    venue = _keeping_reduce_only_orders(venue_name)
    async with running(venue) as app:
        await _aged_then_stopped_out(app, venue)
        venue.inject(Fault.reject(RejectReason.OTHER, Op.CANCEL, times=20))
        await app.sync_pass()  # journaled closed; its exit could not be cancelled
        venue.engine.faults.clear()
        assert (await app.open("BTCUSDT", Side.LONG, "0.01")).opened  # the next wave
        await app.zombie_pass()

        assert _limits(venue) == [], "the old position's exit would sell the new one"
        await venue.set_mark("BTCUSDT", "50100")  # past the old exit's price
        held = venue.position("BTCUSDT")
        assert held is not None and held.quantity == Decimal("0.01")


@pytest.mark.parametrize("venue_name", ["binance", "bybit"])
async def test_an_aged_pass_that_read_the_position_before_its_close_places_no_exit(
    venue_name: str,
) -> None:
    """The review of the change above: the aged pass reads the open positions once, then
    keeps each one's exit. Journaled closed meanwhile (its exits cancelled then), the
    position got a fresh exit all the same — a reduce-only limit that would sell the
    position a person bought since."""
    venue = _keeping_reduce_only_orders(venue_name)
    async with running(venue) as app:
        assert (await app.open("BTCUSDT", Side.LONG, "0.01")).opened
        [read_by_the_aged_pass] = await app.store.positions.open_positions()
        await venue.set_mark("BTCUSDT", "48400")  # the stop fires: flat
        await app.sync_pass()  # journaled closed
        venue.open_by_hand("BTCUSDT", Side.LONG, "0.01")  # a person buys again

        await app.run(app.services.keeper.keep_exit(read_by_the_aged_pass, Decimal("50000")))

        assert _limits(venue) == [], "an exit for a closed position would sell the person's"
