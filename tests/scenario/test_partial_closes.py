"""A market close that fills only part: the rest stays journaled and protected.

Every market close (the aged manager at its cap, the guard past the bot's level, an open's
rollback) goes through `StopKeeper.close_at_market`: it sends the venue's quantity and says
"closed" only once the venue shows the position flat. What a close leaves keeps a stop for
its own quantity, never looser than the journal's, and is closed on a later pass.
"""

from collections.abc import AsyncIterator
from decimal import Decimal

import pytest

from tradecore.app.settings import AgedSettings, TradingSettings
from tradecore.domain.aged import AgedParams
from tradecore.domain.events import EventType
from tradecore.domain.model import Side
from tradecore.domain.positions import Position, PositionState
from tradecore.testing import FakeVenue, Fault

from .conftest import ROUND_TRIP, Database
from .harness import SETTINGS, App, build_app
from .invariants import journal_problems, stop_problems

HOUR = 3600.0


@pytest.fixture
async def aged_app(venue: FakeVenue, database: Database) -> AsyncIterator[App]:
    """Aged at once, no grace, 10 % an hour up to a 1 % cap: the aged pass an hour after
    the open closes the position at market."""
    params = AgedParams(
        max_position_age_hours=0, grace_period_hours=0, loss_step_percent=10, max_loss_percent=1
    )
    settings = TradingSettings(keeper=SETTINGS.keeper, aged=AgedSettings(params=params))
    yield build_app(venue, database.store, settings=settings)
    assert stop_problems(venue) == []


async def _opened(app: App) -> Position:
    result = await app.open("BTCUSDT", Side.LONG, "0.004")
    assert result.opened and result.position is not None
    return result.position


async def test_the_rest_of_an_aged_close_keeps_the_bots_stop_for_its_own_quantity(
    aged_app: App,
) -> None:
    app = aged_app
    opened = await _opened(app)
    await app.clock.advance(HOUR)  # past the loss cap
    app.venue.inject(Fault.partial_fill("0.5"))

    await app.run(app.aged.check())

    held = app.venue.position("BTCUSDT")
    assert held is not None and held.quantity == Decimal("0.002")
    stored = await app.store.positions.get(opened.id)
    assert stored is not None and stored.state is PositionState.ACTIVE
    assert stored.quantity == Decimal("0.002")  # the journal follows the venue
    assert stored.stop_price == opened.stop_price  # the bot's level: no looser, no tighter
    levels = [s.trigger_price for s in app.venue.stops("BTCUSDT")] or [held.stop_price]
    assert levels == [opened.stop_price]
    assert await journal_problems(app.venue, app.store) == []
    [incomplete] = app.sink.of(EventType.MARKET_CLOSE_INCOMPLETE)
    assert incomplete.data["sent"] == Decimal("0.004")
    assert incomplete.data["remaining"] == Decimal("0.002")
    assert app.sink.of(EventType.POSITION_CLOSED) == []


async def test_the_next_aged_pass_closes_the_rest_and_journals_it_closed_once(
    aged_app: App,
) -> None:
    app = aged_app
    opened = await _opened(app)
    await app.clock.advance(HOUR)
    app.venue.inject(Fault.partial_fill("0.5"))
    await app.run(app.aged.check())

    await app.clock.advance(60)
    await app.run(app.aged.check())  # the liquidity is back
    await app.run(app.sync.sync())

    assert app.venue.position("BTCUSDT") is None
    assert app.venue.stops("BTCUSDT") == []
    stored = await app.store.positions.get(opened.id)
    assert stored is not None and stored.state is PositionState.CLOSED
    assert len(app.sink.of(EventType.POSITION_CLOSED)) == 1


async def test_a_guard_close_that_filled_part_is_finished_by_the_next_guard_pass(
    venue: FakeVenue, database: Database
) -> None:
    app = build_app(venue, database.store)
    opened = await _opened(app)
    venue.cancel_stop("BTCUSDT")  # a person removes the stop...
    await venue.set_mark("BTCUSDT", "48000")  # ...and the mark falls past the bot's level
    venue.inject(Fault.partial_fill("0.5"))

    first = await app.run(app.guard.check())

    assert first.failed == 1 and "BTCUSDT" in app.guard.view.symbols  # half is still bare
    [rollback] = app.sink.of(EventType.POSITION_ROLLBACK)
    assert rollback.data["closed"] is False
    stored = await app.store.positions.get(opened.id)
    assert stored is not None and stored.state is PositionState.ACTIVE  # not journaled closed

    await app.clock.advance(ROUND_TRIP)
    second = await app.run(app.guard.check())
    await app.run(app.sync.sync())

    assert second.fixed == 1 and app.guard.view.symbols == frozenset()
    assert venue.position("BTCUSDT") is None
    stored = await app.store.positions.get(opened.id)
    assert stored is not None and stored.state is PositionState.CLOSED
