"""An entry whose state the venue proves late, or not within the read-back, never fails the open.

Bybit's `/v5/order/create` only acknowledges, and a look-up may not list the order yet (v5
"Place Order", "Get Order History": creation is asynchronous). The open must not read "not
found yet" as "failed": an entry that filled ends protected, by the open itself when the
read-back proves it in time, else by the next guard or sync pass; and no second entry is
ever sent for it. Run on the paper Bybit venue and through ccxt on the loopback Bybit.
"""

from collections.abc import AsyncIterator
from decimal import Decimal
from typing import cast

import pytest

from tradecore.domain.events import EventType
from tradecore.domain.model import Side
from tradecore.domain.orders import OrderType
from tradecore.domain.positions import PositionState
from tradecore.testing import FakeVenue, Fault, Op
from tradecore.testing.loopback import LoopbackVenue

from .conftest import ROUND_TRIP, Database
from .harness import App, build_app
from .invariants import entries_sent, journal_problems, stop_problems
from .test_ccxt_venues import OnTheWire

QTY = Decimal("0.004")


@pytest.fixture(params=["paper-bybit", "ccxt-bybit"])
async def app(request: pytest.FixtureRequest, database: Database) -> AsyncIterator[App]:
    """The application on a Bybit venue; at the end one full stop per open position and the
    journal agrees with the venue."""
    loopback: LoopbackVenue | None = None
    if request.param == "paper-bybit":
        venue = FakeVenue.bybit(latency=ROUND_TRIP)
        application = build_app(venue, database.store)
    else:
        loopback = LoopbackVenue.bybit()
        await loopback.start()
        venue = cast(FakeVenue, OnTheWire(loopback))
        application = build_app(venue, database.store, exchange=loopback.exchange)
    try:
        yield application
        assert stop_problems(venue) == []
        assert await journal_problems(venue, database.store) == []
    finally:
        if loopback is not None:
            await loopback.close()


def lag(app: App, seconds: float) -> None:
    cast(FakeVenue | LoopbackVenue, getattr(app.venue, "loopback", app.venue)).lag_listing(seconds)


async def stored_state(app: App, position_id: str) -> PositionState:
    stored = await app.store.positions.get(position_id)
    assert stored is not None
    return stored.state


def entry_failures(app: App) -> list[object]:
    return [e for e in app.sink.events if e.type is EventType.ENTRY_ORDER_FAILED]


async def test_an_entry_the_venue_lists_late_is_read_back_and_the_open_ends_protected(
    app: App,
) -> None:
    lag(app, 2)  # the order is not listed for the first look-ups after its create

    result = await app.open("BTCUSDT", Side.LONG, str(QTY))

    assert result.opened and result.state is PositionState.ACTIVE, result
    assert result.position is not None and result.position.quantity == QTY
    assert [o.trigger_price for o in app.venue.stops("BTCUSDT")] == [result.position.stop_price]
    assert entries_sent(app.venue, "BTCUSDT") == QTY
    assert entry_failures(app) == []


async def test_an_entry_never_proven_in_the_read_back_stays_in_flight_and_the_guard_protects_it(
    app: App,
) -> None:
    lag(app, 3600)  # nothing proves the entry before the read-back gives up
    # and the open's one look at the venue's positions is refused: it cannot take the
    # held position as its fill itself (it does when it can: test_unproven_entries)
    # the symbol's leverage is set up first, so the fault hits the open's own look
    await app.run(app.services.margin.prepare("BTCUSDT"))
    app.venue.engine.faults.add(Fault.timeout(Op.FETCH_POSITIONS))

    result = await app.open("BTCUSDT", Side.LONG, str(QTY))

    assert not result.opened and result.position is not None
    assert await stored_state(app, result.position.id) is PositionState.PENDING_ENTRY
    assert entry_failures(app) == []  # unknown is not failed
    again = await app.open("BTCUSDT", Side.LONG, str(QTY))  # the same symbol: refused
    assert not again.opened and again.reason.startswith("duplicate"), again
    held = app.venue.position("BTCUSDT")
    assert held is not None and held.quantity == QTY  # it did fill

    await app.run(app.guard.check())

    assert await stored_state(app, result.position.id) is PositionState.ACTIVE
    stored = await app.store.positions.get(result.position.id)
    assert stored is not None and stored.quantity == QTY and stored.stop_price is not None
    assert [o.trigger_price for o in app.venue.stops("BTCUSDT")] == [stored.stop_price]
    assert entries_sent(app.venue, "BTCUSDT") == QTY  # found, never sent again
    assert entry_failures(app) == []


async def test_the_synchronizer_resolves_an_unproven_entry_too(app: App) -> None:
    lag(app, 3600)
    # the symbol's leverage is set up first, so the fault hits the open's own look
    await app.run(app.services.margin.prepare("ETHUSDT"))
    app.venue.engine.faults.add(Fault.timeout(Op.FETCH_POSITIONS))  # the open cannot look
    result = await app.open("ETHUSDT", Side.SHORT, "0.1")
    assert not result.opened and result.position is not None

    await app.run(app.sync.sync())

    assert await stored_state(app, result.position.id) is PositionState.ACTIVE
    assert len(app.venue.stops("ETHUSDT")) == 1
    assert entries_sent(app.venue, "ETHUSDT") == Decimal("0.1")


async def test_an_entry_that_never_reached_the_venue_ends_failed_at_the_next_pass(
    app: App,
) -> None:
    app.venue.engine.faults.add(Fault.timeout(Op.MARKET_ORDER))  # lost before the venue

    result = await app.open("BTCUSDT", Side.LONG, str(QTY))

    assert not result.opened and result.position is not None
    assert await stored_state(app, result.position.id) is PositionState.PENDING_ENTRY

    await app.run(app.guard.check())

    assert await stored_state(app, result.position.id) is PositionState.FAILED
    assert app.venue.position("BTCUSDT") is None
    assert [o for o in app.venue.books.orders_for("BTCUSDT") if o.type is OrderType.MARKET] == []
    assert len(entry_failures(app)) == 1
