"""The bot's stop fills, the venue is flat, and a person opens a new position by hand before
any synchronizer pass: the guard must see the bot's position closed by its stop and the new
one as a person's (adopted and protected), never close it at market because the mark is
past the bot's old level — and a person's addition made *before* the stop fired is still the
bot's position (its stop fills only part of what the venue holds).
"""

from collections.abc import Awaitable, Callable
from decimal import Decimal

import pytest

from tradecore.app.protection import ProtectionReport
from tradecore.domain.events import EventType
from tradecore.domain.model import Side
from tradecore.domain.orders import MarkTick
from tradecore.domain.positions import PositionState
from tradecore.testing import FakeVenue, TradingApp

from .outside import btc_venue, running

# What happens after the bot's long of 0.01 (its stop at 48500) opened, up to and including
# the pass that must find the bot's position closed by its stop: that pass's report.
Story = Callable[[TradingApp, FakeVenue], Awaitable[ProtectionReport]]


async def _stop_fires(venue: FakeVenue) -> None:
    await venue.set_mark("BTCUSDT", "48400")
    assert venue.position("BTCUSDT") is None  # the venue is flat


def _reopened(side: Side, quantity: str) -> Story:
    async def story(app: TradingApp, venue: FakeVenue) -> ProtectionReport:
        await _stop_fires(venue)
        venue.open_by_hand("BTCUSDT", side, quantity)
        return await app.guard_pass()  # the next pass, before any sync pass

    return story


async def _reopened_while_down(app: TradingApp, venue: FakeVenue) -> ProtectionReport:
    await app.crash()  # the process is down when the stop fills
    await _stop_fires(venue)
    venue.open_by_hand("BTCUSDT", Side.LONG, "0.01")
    await app.restart()  # recovery, then a guard pass
    return await app.guard_pass()


async def _rest_closed_and_reopened(app: TradingApp, venue: FakeVenue) -> ProtectionReport:
    venue.open_by_hand("BTCUSDT", Side.LONG, "0.01")  # a person doubles it first
    await venue.set_mark("BTCUSDT", "48400")  # the stop fires for the bot's 0.01
    venue.close_by_hand("BTCUSDT")  # the person closes the rest...
    venue.open_by_hand("BTCUSDT", Side.LONG, "0.01")  # ...and buys again
    return await app.guard_pass()


async def _smaller_reopen_synced_first(app: TradingApp, venue: FakeVenue) -> ProtectionReport:
    await _stop_fires(venue)
    venue.open_by_hand("BTCUSDT", Side.LONG, "0.004")
    await app.sync_pass()  # the journal follows the venue's quantity first
    return await app.guard_pass()


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


# Each story, the venue's position after it, how many positions its last pass found bare and
# put right, and the quantity of the bot's settled figures. "the-same" is also the attack of
# a person buying the dip (it was a copy in test_attack_outside). The restart's own guard
# pass puts it right, so the pass after it finds nothing bare. The bot's figures are its
# symbol's fills from its entry until flat (`domain.pnl.position_fills`): with "rest-closed"
# the person's addition and their close of it count in.
STORIES = [
    pytest.param(_reopened(Side.LONG, "0.01"), Side.LONG, "0.01", 1, "0.01", id="the-same"),
    pytest.param(_reopened(Side.LONG, "0.004"), Side.LONG, "0.004", 1, "0.01", id="smaller"),
    pytest.param(_reopened(Side.LONG, "0.03"), Side.LONG, "0.03", 1, "0.01", id="larger"),
    pytest.param(_reopened(Side.SHORT, "0.01"), Side.SHORT, "0.01", 1, "0.01", id="a-short"),
    pytest.param(_reopened_while_down, Side.LONG, "0.01", 0, "0.01", id="while-down"),
    pytest.param(_rest_closed_and_reopened, Side.LONG, "0.01", 1, "0.02", id="rest-closed"),
    pytest.param(_smaller_reopen_synced_first, Side.LONG, "0.004", 1, "0.01", id="synced-first"),
]


@pytest.mark.parametrize("venue_name", ["binance", "bybit"])
@pytest.mark.parametrize(("story", "side", "quantity", "bare", "settled"), STORIES)
async def test_a_position_reopened_by_hand_after_the_stop_filled_is_adopted_and_protected(
    venue_name: str, story: Story, side: Side, quantity: str, bare: int, settled: str
) -> None:
    venue = btc_venue(venue_name)
    async with running(venue) as app:
        assert (await app.open("BTCUSDT", Side.LONG, "0.01")).opened  # stop at 48500
        report = await story(app, venue)

        held = venue.position("BTCUSDT")
        assert held is not None, "the guard closed the person's position at market"
        assert (held.side, held.quantity) == (side, Decimal(quantity))
        assert _protected(venue)
        assert (report.unprotected, report.fixed) == (bare, bare)  # seen bare, put right
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
        assert pnl["quantity"] == Decimal(settled)


@pytest.mark.parametrize("venue_name", ["binance", "bybit"])
async def test_a_person_who_added_before_the_stop_fired_leaves_the_rest_the_bots(
    venue_name: str,
) -> None:
    venue = btc_venue(venue_name)
    async with running(venue) as app:
        assert (await app.open("BTCUSDT", Side.LONG, "0.01")).opened  # stop for 0.01 at 48500
        venue.open_by_hand("BTCUSDT", Side.LONG, "0.01")  # a person doubles it first
        await venue.set_mark("BTCUSDT", "48400")  # the stop fires, for part of what is held
        await app.guard_pass()

        # the rest is the bot's position past its level: closed at market, not adopted
        assert venue.position("BTCUSDT") is None
        assert not app.events.of(EventType.MISSING_POSITION_ADDED)


async def _tick(app: TradingApp, venue: FakeVenue, price: str) -> None:
    await venue.set_mark("BTCUSDT", price)
    await app.run(
        app.services.trailing.on_tick(
            MarkTick(
                venue=venue.exchange.venue,
                symbol="BTCUSDT",
                mark=Decimal(price),
                at=venue.clock.now(),
            )
        )
    )
    await app.pass_time(61)


@pytest.mark.parametrize("venue_name", ["binance", "bybit"])
async def test_a_position_closed_and_bought_again_by_hand_between_passes_is_the_persons(
    venue_name: str,
) -> None:
    """A person closes the bot's long at market and buys the same quantity again, between
    two passes (the simulator, binance seed 202): the venue's stop went with the bot's
    position, and the guard put it back at the bot's level as if nothing had happened. The
    bot carried the person's position on as its own, trailing it from the bot's entry
    (50000) instead of the person's (49000): the mark ran 2.5 % above the person's entry
    and the stop stayed 3 % below the bot's. The fills tell: the account went flat after
    the bot's entry, so its position is closed and the person's adopted, trailed from its
    own entry."""
    venue = btc_venue(venue_name)
    async with running(venue) as app:
        assert (await app.open("BTCUSDT", Side.LONG, "0.01")).opened  # stop at 48500
        await venue.set_mark("BTCUSDT", "49000")
        venue.close_by_hand("BTCUSDT")
        venue.open_by_hand("BTCUSDT", Side.LONG, "0.01")  # at 49000
        await app.guard_pass()

        assert _protected(venue)
        closes = [e.data["reason"] for e in app.events.of(EventType.POSITION_CLOSED)]
        assert len(closes) == 1 and not closes[0].startswith("stop "), closes
        [adopted] = [
            p for p in await app.store.positions.open_positions() if p.state is PositionState.ACTIVE
        ]
        assert adopted.adopted and adopted.entry_price == Decimal("49000")
        for price in ("49800", "50000", "50200"):  # activation: 49000 + 1.5 % = 49735
            await _tick(app, venue, price)
        held = venue.position("BTCUSDT")
        assert held is not None
        [stop] = [s.trigger_price for s in venue.stops("BTCUSDT")] or [held.stop_price]
        assert stop is not None and stop > Decimal("49500"), stop  # trailed: 0.5 % under 50200
