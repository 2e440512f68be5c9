"""Crash anywhere: kill the app at every await of an open and of a stop move, restart, check.

After a fresh kernel has recovered on the same database and venue: every position is
protected by exactly one stop for its full quantity, nothing was opened twice, no operation
is left in flight, the journal agrees with the venue — within 5 s of virtual time.
"""

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from decimal import Decimal
from typing import cast

import pytest

from tradecore.app.kernel import Kernel
from tradecore.domain.model import Side
from tradecore.domain.positions import StopOwner
from tradecore.ports.exchange import Exchange
from tradecore.ports.repositories import Store
from tradecore.testing import FakeVenue, Fault, Op

from .conftest import ROUND_TRIP, Database, Opener
from .crash import Crash, Tripwire, tripped_exchange, tripped_store
from .harness import App, build_app
from .invariants import entries_sent, journal_problems, stop_problems

QTY = "0.004"
MAX_AWAITS = 60


@pytest.fixture(params=["binance", "bybit"])
def profile(request: pytest.FixtureRequest) -> str:
    return str(request.param)


async def fresh(profile: str, open_database: Opener) -> tuple[FakeVenue, Database]:
    venue = (FakeVenue.bybit if profile == "bybit" else FakeVenue.binance)(latency=ROUND_TRIP)
    return venue, await open_database()


def tripped(venue: FakeVenue, database: Database, wire: Tripwire) -> App:
    store = cast(Store, tripped_store(database.store, wire))
    exchange = cast(Exchange, tripped_exchange(venue.exchange, wire))
    return build_app(venue, store, exchange=exchange)


async def recover_and_check(venue: FakeVenue, database: Database) -> None:
    survivor = build_app(venue, database.store)
    started = venue.clock.now()
    await survivor.run(Kernel(survivor.parts).start(loops=False))
    assert venue.clock.now() - started <= timedelta(seconds=5)
    assert stop_problems(venue) == []
    assert await journal_problems(venue, database.store) == []
    assert await database.store.operations.in_flight() == []
    assert entries_sent(venue, "BTCUSDT") <= Decimal(QTY)  # nothing opened twice


Scenario = Callable[[FakeVenue, Database, Tripwire], Awaitable[None]]


async def crash_points(
    profile: str, open_database: Opener, scenario: Scenario
) -> AsyncIterator[int]:
    """Run `scenario` with a crash at await 1, 2, … (before and after) until it completes."""
    for at in range(1, MAX_AWAITS):
        completed = True
        for after in (False, True):
            venue, database = await fresh(profile, open_database)
            wire = Tripwire(at, after=after)
            with contextlib.suppress(Crash):
                await scenario(venue, database, wire)
            completed = completed and not wire.fired
            await recover_and_check(venue, database)
            await database.close()
            yield at
        if completed:
            return
    raise AssertionError(f"the scenario still had awaits after {MAX_AWAITS}")


async def test_a_crash_anywhere_in_an_open_recovers_protected_and_never_doubled(
    profile: str, open_database: Opener
) -> None:
    async def open_once(venue: FakeVenue, database: Database, wire: Tripwire) -> None:
        app = tripped(venue, database, wire)
        await app.open("BTCUSDT", Side.LONG, QTY)

    points = [at async for at in crash_points(profile, open_database, open_once)]
    assert len(points) >= 10  # the open really has that many awaits, each one crashed


async def test_a_crash_anywhere_in_a_stop_move_recovers_with_one_stop(
    profile: str, open_database: Opener
) -> None:
    async def move_once(venue: FakeVenue, database: Database, wire: Tripwire) -> None:
        setup = build_app(venue, database.store)
        result = await setup.open("BTCUSDT", Side.LONG, QTY)
        assert result.position is not None
        app = tripped(venue, database, wire)
        await app.run(
            app.keeper.apply(
                result.position, Decimal("49000"), owner=StopOwner.TRAILING, reason="t"
            )
        )

    points = [at async for at in crash_points(profile, open_database, move_once)]
    assert len(points) >= 4


async def test_a_recovery_whose_first_read_fails_still_closes_a_position_stopped_while_down(
    profile: str, open_database: Opener
) -> None:
    venue, database = await fresh(profile, open_database)
    result = await build_app(venue, database.store).open("BTCUSDT", Side.LONG, QTY)
    assert result.position is not None and result.position.stop_price is not None
    # the process dies; its stop fires while it is down
    await venue.set_mark("BTCUSDT", result.position.stop_price - 500)
    assert venue.position("BTCUSDT") is None
    # the restart's first read of the venue's positions (the synchronizer's) gets no answer
    venue.inject(Fault.network_error(Op.FETCH_POSITIONS))
    survivor = build_app(venue, database.store)
    await survivor.run(Kernel(survivor.parts).start(loops=False))
    # recovered, trading from here on: the journal is the venue's
    assert await journal_problems(venue, database.store) == []
    closed = await database.store.positions.get(result.position.id)
    assert closed is not None and closed.close_reason is not None
    assert "stop" in closed.close_reason
    await database.close()
