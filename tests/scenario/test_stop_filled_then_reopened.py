"""The bot's stop fills, the venue is flat, and a person opens a new position by hand before
any synchronizer pass: the guard must see the bot's position closed by its stop and the new
one as a person's (adopted and protected), never close it at market because the mark is
past the bot's old level — and a person's addition made *before* the stop fired is still the
bot's position (its stop fills only part of what the venue holds).
"""

import contextlib
from collections.abc import AsyncIterator
from decimal import Decimal

import pytest

from tradecore.domain.events import EventType
from tradecore.domain.model import Side
from tradecore.domain.positions import PositionState
from tradecore.testing import FakeVenue, TradingApp

ROUND_TRIP = 0.05


@contextlib.asynccontextmanager
async def _running(venue: FakeVenue) -> AsyncIterator[TradingApp]:
    app = await TradingApp.on_sqlite(venue)
    await app.start()
    try:
        yield app
    finally:
        await app.close()


def _venue(name: str) -> FakeVenue:
    maker = FakeVenue.binance if name == "binance" else FakeVenue.bybit
    return maker(marks={"BTCUSDT": "50000"}, latency=ROUND_TRIP)


def _protected(venue: FakeVenue) -> bool:
    held = venue.position("BTCUSDT")
    assert held is not None
    return bool(venue.stops("BTCUSDT")) or held.stop_price is not None


async def _bots_closed_by_its_stop(app: TradingApp) -> None:
    """The journal: the bot's own position closed, by its stop, with its figures."""
    closes = [e.data["reason"] for e in app.events.of(EventType.POSITION_CLOSED)]
    assert len(closes) == 1 and closes[0].startswith("stop "), closes
    [adopted] = [
        p for p in await app.store.positions.open_positions() if p.state is PositionState.ACTIVE
    ]
    assert adopted.adopted, "the person's position is journaled as the bot's own"
    assert app.events.of(EventType.MISSING_POSITION_ADDED)
    assert not app.events.of(EventType.POSITION_ROLLBACK)


@pytest.mark.parametrize("venue_name", ["binance", "bybit"])
@pytest.mark.parametrize("quantity", ["0.01", "0.004", "0.03"])
async def test_a_position_reopened_by_hand_after_the_stop_filled_is_adopted_and_protected(
    venue_name: str, quantity: str
) -> None:
    venue = _venue(venue_name)
    async with _running(venue) as app:
        assert (await app.open("BTCUSDT", Side.LONG, "0.01")).opened  # stop at 48500
        await venue.set_mark("BTCUSDT", "48400")  # the stop fires: flat
        assert venue.position("BTCUSDT") is None
        venue.open_by_hand("BTCUSDT", Side.LONG, quantity)  # smaller, the same, larger
        report = await app.guard_pass()

        held = venue.position("BTCUSDT")
        assert held is not None, "the guard closed the person's position at market"
        assert held.quantity == Decimal(quantity)
        assert _protected(venue)
        assert report.unprotected == 1 and report.fixed == 1  # seen bare, put right
        assert not app.protection_view().symbols
        await _bots_closed_by_its_stop(app)
        await app.sync_pass()  # the synchronizer agrees: nothing more to close or adopt
        assert venue.position("BTCUSDT") is not None
        assert len(app.events.of(EventType.POSITION_CLOSED)) == 1
        [pnl] = [
            e.data
            for e in app.events.of(EventType.POSITION_PNL_RECORDED)
            if e.data["entry_price"] == Decimal("50000")
        ]
        assert pnl["quantity"] == Decimal("0.01")


@pytest.mark.parametrize("venue_name", ["binance", "bybit"])
async def test_a_short_opened_by_hand_after_the_longs_stop_filled_is_adopted_and_protected(
    venue_name: str,
) -> None:
    venue = _venue(venue_name)
    async with _running(venue) as app:
        assert (await app.open("BTCUSDT", Side.LONG, "0.01")).opened
        await venue.set_mark("BTCUSDT", "48400")
        venue.open_by_hand("BTCUSDT", Side.SHORT, "0.01")
        await app.guard_pass()

        held = venue.position("BTCUSDT")
        assert held is not None and held.side is Side.SHORT
        assert held.quantity == Decimal("0.01")
        assert _protected(venue)
        await _bots_closed_by_its_stop(app)


@pytest.mark.parametrize("venue_name", ["binance", "bybit"])
async def test_a_restart_after_the_stop_filled_and_a_person_reopened_keeps_the_position(
    venue_name: str,
) -> None:
    venue = _venue(venue_name)
    async with _running(venue) as app:
        assert (await app.open("BTCUSDT", Side.LONG, "0.01")).opened
        await app.crash()  # the process is down when the stop fills
        await venue.set_mark("BTCUSDT", "48400")
        venue.open_by_hand("BTCUSDT", Side.LONG, "0.01")
        await app.restart()  # recovery, then a guard pass
        await app.guard_pass()

        assert venue.position("BTCUSDT") is not None, "closed at market on the restart"
        assert _protected(venue)
        await _bots_closed_by_its_stop(app)


@pytest.mark.parametrize("venue_name", ["binance", "bybit"])
async def test_a_person_who_added_before_the_stop_fired_leaves_the_rest_the_bots(
    venue_name: str,
) -> None:
    venue = _venue(venue_name)
    async with _running(venue) as app:
        assert (await app.open("BTCUSDT", Side.LONG, "0.01")).opened  # stop for 0.01 at 48500
        venue.open_by_hand("BTCUSDT", Side.LONG, "0.01")  # a person doubles it first
        await venue.set_mark("BTCUSDT", "48400")  # the stop fires, for part of what is held
        await app.guard_pass()

        # the rest is the bot's position past its level: closed at market, not adopted
        assert venue.position("BTCUSDT") is None
        assert not app.events.of(EventType.MISSING_POSITION_ADDED)


@pytest.mark.parametrize("venue_name", ["binance", "bybit"])
async def test_a_rest_closed_by_hand_and_reopened_after_the_stop_filled_part_is_the_persons(
    venue_name: str,
) -> None:
    venue = _venue(venue_name)
    async with _running(venue) as app:
        assert (await app.open("BTCUSDT", Side.LONG, "0.01")).opened
        venue.open_by_hand("BTCUSDT", Side.LONG, "0.01")  # a person doubles it first
        await venue.set_mark("BTCUSDT", "48400")  # the stop fires for the bot's 0.01
        venue.close_by_hand("BTCUSDT")  # the person closes the rest...
        venue.open_by_hand("BTCUSDT", Side.LONG, "0.01")  # ...and buys again
        await app.guard_pass()

        held = venue.position("BTCUSDT")
        assert held is not None, "the guard closed the person's new position at market"
        assert _protected(venue)
        await _bots_closed_by_its_stop(app)


@pytest.mark.parametrize("venue_name", ["binance", "bybit"])
async def test_a_smaller_reopen_a_sync_pass_saw_first_is_still_the_persons(
    venue_name: str,
) -> None:
    venue = _venue(venue_name)
    async with _running(venue) as app:
        assert (await app.open("BTCUSDT", Side.LONG, "0.01")).opened
        await venue.set_mark("BTCUSDT", "48400")
        venue.open_by_hand("BTCUSDT", Side.LONG, "0.004")
        await app.sync_pass()  # the journal follows the venue's quantity first
        await app.guard_pass()

        held = venue.position("BTCUSDT")
        assert held is not None and held.quantity == Decimal("0.004")
        assert _protected(venue)
        await _bots_closed_by_its_stop(app)
