"""The trailing stop on the venue: activates, trails, triggers — and never leaves a gap."""

import asyncio
from decimal import Decimal
from typing import cast

import attrs

from tradecore.app.trailing import TrailingService
from tradecore.domain.events import EventType
from tradecore.domain.model import Side
from tradecore.domain.orders import MarkTick
from tradecore.domain.positions import StopOwner
from tradecore.domain.trailing import TrailingParams, TrailingPhase, TrailingState
from tradecore.ports.repositories import Store, StoreUnavailable
from tradecore.testing import FakeVenue, Fault, Op

from .conftest import Database
from .harness import SETTINGS, App, build_app, follow_marks, pass_time


async def open_and_trail(app: App, symbol: str, side: Side, quantity: str) -> str:
    result = await app.open(symbol, side, quantity)
    assert result.opened and result.position is not None
    await app.trailing.start(result.position)
    return result.position.id


async def mark(app: App, symbol: str, price: str, *, then_wait: float = 61) -> None:
    await app.venue.set_mark(symbol, price)
    await pass_time(app, then_wait)


async def test_a_trailing_stop_activates_trails_and_triggers_without_a_gap(app: App) -> None:
    follower = asyncio.create_task(follow_marks(app, ["BTCUSDT"]))
    position_id = await open_and_trail(app, "BTCUSDT", Side.LONG, "0.004")
    opened_gaps = len(app.venue.unprotected_intervals("BTCUSDT"))

    for price in ("50400", "50800", "51200", "51600", "52000"):
        await mark(app, "BTCUSDT", price)

    state = app.trailing.state(position_id)
    assert state is not None and state.phase is TrailingPhase.ACTIVE
    [stop] = app.venue.stops("BTCUSDT")
    assert stop.trigger_price == state.stop_price
    assert stop.trigger_price is not None and stop.trigger_price > Decimal("51700")
    stored = await app.store.positions.get(position_id)
    assert stored is not None and stored.stop_owner is StopOwner.TRAILING

    await mark(app, "BTCUSDT", "51000")  # falls through the trailed stop

    assert app.venue.position("BTCUSDT") is None
    assert len(app.venue.unprotected_intervals("BTCUSDT")) == opened_gaps  # no new gap
    assert app.sink.of(EventType.TRAILING_STOP_ACTIVATED)
    assert len(app.sink.of(EventType.TRAILING_STOP_UPDATED)) >= 3
    follower.cancel()


async def test_a_short_trails_downwards_and_the_stop_never_moves_up(app: App) -> None:
    follower = asyncio.create_task(follow_marks(app, ["ETHUSDT"]))
    position_id = await open_and_trail(app, "ETHUSDT", Side.SHORT, "0.1")
    seen: list[Decimal] = []

    for price in ("2950", "2940", "2945", "2900", "2910", "2880"):
        await mark(app, "ETHUSDT", price)
        state = app.trailing.state(position_id)
        assert state is not None and state.stop_price is not None
        seen.append(state.stop_price)

    assert seen == sorted(seen, reverse=True)  # only ever down, in the short's favour
    assert seen[-1] < Decimal("3000")  # past breakeven
    [stop] = app.venue.stops("ETHUSDT")
    assert stop.trigger_price == seen[-1]
    follower.cancel()


async def test_moves_inside_the_rate_limit_wait_unless_they_are_big(app: App) -> None:
    follower = asyncio.create_task(follow_marks(app, ["BTCUSDT"]))
    position_id = await open_and_trail(app, "BTCUSDT", Side.LONG, "0.004")
    await mark(app, "BTCUSDT", "50800", then_wait=5)  # activates
    moves = len(app.sink.of(EventType.TRAILING_STOP_UPDATED))

    await mark(app, "BTCUSDT", "50900", then_wait=5)  # +0.2 %, inside 60 s: held back
    assert len(app.sink.of(EventType.TRAILING_STOP_UPDATED)) == moves

    await mark(app, "BTCUSDT", "51600", then_wait=5)  # +1.6 %: the emergency override
    assert len(app.sink.of(EventType.TRAILING_STOP_UPDATED)) == moves + 1
    state = app.trailing.state(position_id)
    assert state is not None and state.stop_price == app.venue.stops("BTCUSDT")[0].trigger_price
    follower.cancel()


async def test_trailing_state_survives_a_restart(app: App) -> None:
    follower = asyncio.create_task(follow_marks(app, ["BTCUSDT"]))
    position_id = await open_and_trail(app, "BTCUSDT", Side.LONG, "0.004")
    await mark(app, "BTCUSDT", "50800")
    before = app.trailing.state(position_id)
    follower.cancel()

    from .harness import build_app

    fresh = build_app(app.venue, app.store)
    assert await fresh.trailing.restore() == 1
    after = fresh.trailing.state(position_id)
    assert after is not None and before is not None
    assert (after.phase, after.best_price, after.stop_price, after.update_count) == (
        before.phase,
        before.best_price,
        before.stop_price,
        before.update_count,
    )


async def test_a_rate_limited_stop_move_is_retried_and_the_limit_recorded(app: App) -> None:
    follower = asyncio.create_task(follow_marks(app, ["BTCUSDT"]))
    position_id = await open_and_trail(app, "BTCUSDT", Side.LONG, "0.004")
    stop_op = Op.POSITION_STOP if app.venue.exchange.capabilities.position_stop else Op.STOP_ORDER
    app.venue.inject(Fault.rate_limit(stop_op))

    await mark(app, "BTCUSDT", "50800")  # activates: the move meets the rate limit once

    state = app.trailing.state(position_id)
    [stop] = app.venue.stops("BTCUSDT")
    assert state is not None and stop.trigger_price == state.stop_price
    assert stop.trigger_price is not None and stop.trigger_price > Decimal("50000")
    assert app.sink.of(EventType.RATE_LIMIT_HIT)
    follower.cancel()


async def test_breakeven_moves_the_stop_to_the_entry_before_trailing_starts(
    venue: FakeVenue, database: Database
) -> None:
    settings = attrs.evolve(SETTINGS, trailing=TrailingParams(breakeven_percent=Decimal("0.5")))
    app = build_app(venue, database.store, settings=settings)
    follower = asyncio.create_task(follow_marks(app, ["BTCUSDT"]))
    position_id = await open_and_trail(app, "BTCUSDT", Side.LONG, "0.004")

    await mark(app, "BTCUSDT", "50300")  # +0.6 %: past breakeven, short of activation

    state = app.trailing.state(position_id)
    assert state is not None and state.phase is TrailingPhase.WAITING
    [stop] = app.venue.stops("BTCUSDT")
    assert stop.trigger_price is not None and stop.trigger_price >= Decimal("50000")
    assert app.sink.of(EventType.TRAILING_STOP_BREAKEVEN)
    follower.cancel()


async def test_a_trailing_state_the_database_refuses_for_good_holds_up_no_other_close(
    venue: FakeVenue, database: Database
) -> None:
    """The database refuses one position's trailing state for good (not an outage: the store
    holds those). Another position's trailing stop still ends — the close path, and with it
    shutdown, never waits on the refused write — and the dropped state is a critical_error."""
    repository = database.store.trailing
    save = repository.save
    refused: set[str] = set()

    async def refusing(state: TrailingState) -> None:
        if state.position_id in refused:
            raise ValueError("numeric field overflow")
        await save(state)

    repository.save = refusing  # type: ignore[method-assign]
    app = build_app(venue, database.store)
    closing = await open_and_trail(app, "BTCUSDT", Side.LONG, "0.004")
    poisoned = await open_and_trail(app, "ETHUSDT", Side.LONG, "0.1")
    refused.add(poisoned)
    state = app.trailing.state(poisoned)
    assert state is not None
    up = state.entry_price * Decimal("1.05")
    await app.venue.set_mark("ETHUSDT", str(up))
    await app.trailing.on_tick(
        MarkTick(venue=app.venue.exchange.venue, symbol="ETHUSDT", mark=up, at=app.clock.now())
    )  # the state changes (activation); its journal write is refused

    ending = asyncio.create_task(app.trailing.end(closing, reason="closed"))
    await pass_time(app, 120)
    done = ending.done()
    if not done:
        ending.cancel()
    for task in asyncio.all_tasks():
        if task.get_name().startswith("trailing-"):
            task.cancel()
    assert done, "the close path waits forever behind another position's refused write"
    assert app.trailing.state(closing) is None
    assert [
        e
        for e in app.sink.events
        if e.type is EventType.CRITICAL_ERROR and e.correlation_id == poisoned
    ]


class _Outage:
    """A store whose trailing writes raise StoreUnavailable while `down` (a store that does
    not hold writes through an outage, as the resilient one does)."""

    def __init__(self, inner: Store) -> None:
        self._inner = inner
        self.down = False
        self.trailing = self

    def __getattr__(self, name: str) -> object:
        return getattr(self._inner.trailing, name)

    async def save(self, state: TrailingState) -> None:
        if self.down:
            raise StoreUnavailable("the database is down")
        await self._inner.trailing.save(state)


async def test_a_trailing_state_an_outage_holds_back_holds_up_no_close_and_lands_later(
    app: App,
) -> None:
    outage = _Outage(app.store)
    s = app.services
    trailing = TrailingService(
        cast(Store, outage),
        s.keeper,
        s.recorder,
        app.clock,
        SETTINGS.trailing,
        app.venue.engine.markets,
    )
    result = await app.open("BTCUSDT", Side.LONG, "0.004")
    assert result.position is not None
    outage.down = True

    starting = asyncio.create_task(trailing.start(result.position))
    await pass_time(app, 120)
    done = starting.done()
    if not done:
        starting.cancel()
    assert done, "start() waits for the database for as long as it is down"
    assert await app.store.trailing.get(result.position.id) is None

    outage.down = False
    await app.run(trailing.drain())
    assert await app.store.trailing.get(result.position.id) is not None
