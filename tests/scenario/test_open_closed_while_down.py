"""An open the process died in, whose position ended while it was down: the resumed open
writes the journal's row CLOSED — and says so with `position_closed`, as every other close
does (promise 2: nothing the bot does goes unrecorded; found in review: these two paths
wrote the row with no event at all)."""

import pytest

from tradecore.adapters.sqlite.database import SqliteDatabase
from tradecore.app.kernel import Kernel
from tradecore.domain.events import Event, EventType
from tradecore.domain.model import Side
from tradecore.domain.positions import Position, PositionState
from tradecore.testing import FakeVenue

from .conftest import ROUND_TRIP
from .harness import App, build_app
from .test_carried_stop import opened_and_died


async def restarted(
    venue: FakeVenue, database: SqliteDatabase, dying: App
) -> tuple[Position, list[Event]]:
    """A new process on the same venue and database: the dead one's position as the
    journal now holds it, and the `position_closed` events the restart wrote for it."""
    survivor = build_app(venue, database.store)
    await survivor.run(Kernel(survivor.parts).start(loops=False))
    [started] = dying.sink.of(EventType.POSITION_OPEN_STARTED)
    assert started.position_id is not None
    position = await database.store.positions.get(started.position_id)
    assert position is not None
    closed = [
        e for e in survivor.sink.of(EventType.POSITION_CLOSED) if e.position_id == position.id
    ]
    return position, closed


@pytest.mark.parametrize("name", ["binance", "bybit"])
async def test_a_position_closed_by_hand_before_its_stop_was_placed_is_closed_with_its_event(
    name: str,
) -> None:
    venue = (FakeVenue.binance if name == "binance" else FakeVenue.bybit)(latency=ROUND_TRIP)
    database = await SqliteDatabase.connect(":memory:")
    try:
        dying = await opened_and_died(venue, database.store, "0.004")
        venue.close_by_hand("BTCUSDT")  # a person, while the bot is down
        position, closed = await restarted(venue, database, dying)
        assert position.state is PositionState.CLOSED
        assert len(closed) == 1, closed
        assert closed[0].data["reason"] == position.close_reason
    finally:
        await database.close()


async def test_a_position_its_carried_stop_closed_while_down_is_closed_with_its_event() -> None:
    """Bybit: the entry carried its stop; while the bot is down the stop fires and a person
    buys the same quantity. The bot's position is closed as its stop closed it."""
    venue = FakeVenue.bybit(latency=ROUND_TRIP)
    database = await SqliteDatabase.connect(":memory:")
    try:
        dying = await opened_and_died(venue, database.store, "0.004")
        await venue.set_mark("BTCUSDT", "48400")  # the carried stop fires while down
        venue.open_by_hand("BTCUSDT", Side.LONG, "0.004")  # a person buys the dip
        bots, closed = await restarted(venue, database, dying)
        assert bots.state is PositionState.CLOSED
        assert len(closed) == 1, closed
    finally:
        await database.close()
