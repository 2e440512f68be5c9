"""Crash anywhere in the guard's repair, the story-3 close, a resize and a resume.

`test_crash` kills the app inside an open and a stop move; these kill it inside the other
writers of a position's stop: the protection guard putting back a stop removed by hand,
closing at market a position whose bot level the mark has crossed, resizing the stop of a
position partly closed by hand, and the recovery itself finishing an interrupted move.
After a fresh kernel recovered: one full stop per position, nothing opened twice, nothing
left in flight, the journal agrees with the venue.
"""

import contextlib
from decimal import Decimal

import pytest

from tradecore.app.kernel import Kernel
from tradecore.domain.model import OrderSide, Side
from tradecore.domain.positions import StopOwner
from tradecore.testing import FakeVenue

from .conftest import Database, Opener
from .crash import Crash, Tripwire
from .harness import build_app
from .test_crash import QTY, crash_points, tripped
from .test_stop_ownership import remove_stops_by_hand


@pytest.fixture(params=["binance", "bybit"])
def profile(request: pytest.FixtureRequest) -> str:
    return str(request.param)


async def _opened(venue: FakeVenue, database: Database) -> str:
    setup = build_app(venue, database.store)
    result = await setup.open("BTCUSDT", Side.LONG, QTY)
    assert result.opened and result.position is not None
    return result.position.id


async def test_a_crash_anywhere_in_the_guards_repair_recovers_protected(
    profile: str, open_database: Opener
) -> None:
    async def repair(venue: FakeVenue, database: Database, wire: Tripwire) -> None:
        await _opened(venue, database)
        setup = build_app(venue, database.store)
        await remove_stops_by_hand(setup, "BTCUSDT")
        app = tripped(venue, database, wire)
        await app.run(app.guard.check())

    points = [at async for at in crash_points(profile, open_database, repair)]
    assert len(points) >= 4


async def test_a_crash_anywhere_in_closing_past_the_bots_level_recovers(
    profile: str, open_database: Opener
) -> None:
    async def close_past(venue: FakeVenue, database: Database, wire: Tripwire) -> None:
        await _opened(venue, database)
        setup = build_app(venue, database.store)
        await remove_stops_by_hand(setup, "BTCUSDT")
        await venue.set_mark("BTCUSDT", "40000")  # far under the bot's level
        app = tripped(venue, database, wire)
        await app.run(app.guard.check())

    points = [at async for at in crash_points(profile, open_database, close_past)]
    assert len(points) >= 4


async def test_a_crash_anywhere_in_resizing_after_a_partial_close_recovers(
    profile: str, open_database: Opener
) -> None:
    async def resize(venue: FakeVenue, database: Database, wire: Tripwire) -> None:
        await _opened(venue, database)
        held = venue.position("BTCUSDT")
        assert held is not None
        venue.manual_order("BTCUSDT", held.side.exit, "0.002", reduce_only=True)
        app = tripped(venue, database, wire)
        await app.run(app.guard.check())

    points = [at async for at in crash_points(profile, open_database, resize)]
    assert len(points) >= 2


async def test_a_crash_anywhere_in_resuming_an_interrupted_move_recovers(
    profile: str, open_database: Opener
) -> None:
    async def resume(venue: FakeVenue, database: Database, wire: Tripwire) -> None:
        position_id = await _opened(venue, database)
        first = tripped(venue, database, Tripwire(3, after=True))  # dies mid-move
        position = await database.store.positions.get(position_id)
        assert position is not None
        with contextlib.suppress(Crash):
            await first.run(
                first.keeper.apply(position, Decimal("49000"), owner=StopOwner.TRAILING, reason="t")
            )
        app = tripped(venue, database, wire)
        await app.run(Kernel(app.parts).start(loops=False))

    points = [at async for at in crash_points(profile, open_database, resume)]
    assert len(points) >= 4


async def test_a_crash_anywhere_in_the_guards_adoption_recovers_protected(
    profile: str, open_database: Opener
) -> None:
    async def adopt(venue: FakeVenue, database: Database, wire: Tripwire) -> None:
        venue.manual_order("BTCUSDT", OrderSide.SELL, QTY)  # opened by hand, bare
        app = tripped(venue, database, wire)
        await app.run(app.guard.check())

    points = [at async for at in crash_points(profile, open_database, adopt)]
    assert len(points) >= 4
