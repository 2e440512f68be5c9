"""A restart takes in the marks its trailing states never judged — those of the time the bot
was down, and those whose change a crash took before the journal had it (simulator, binance
seed 2508: an activation lost, the marks never came back to it, the stop stayed at the
initial distance for the rest of the run). The venue keeps them as mark-price klines."""

import asyncio
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import cast

import attrs

from tradecore.domain.events import EventType
from tradecore.domain.model import Side
from tradecore.domain.orders import MarkCandle
from tradecore.domain.trailing import TrailingParams, TrailingPhase
from tradecore.ports.exchange import Exchange
from tradecore.testing import Fault, Op

from .harness import SETTINGS, App, build_app, follow_marks, pass_time


async def opened_and_left(app: App, symbol: str, side: Side, quantity: str) -> str:
    """A position opened and trailed by `app`, which then dies: no later mark is judged."""
    follower = asyncio.create_task(follow_marks(app, [symbol]))
    result = await app.open(symbol, side, quantity)
    assert result.opened and result.position is not None
    await app.run(app.trailing.start(result.position))
    await pass_time(app, 5)
    follower.cancel()
    return result.position.id


async def marks_while_down(app: App, symbol: str, *prices: str) -> None:
    for price in prices:
        await app.venue.set_mark(symbol, price)
        await app.clock.advance(60)


async def restarted(app: App) -> App:
    fresh = build_app(app.venue, app.store)
    await fresh.run(fresh.trailing.restore())
    fresh.trailing.catch_up()
    await pass_time(fresh, 30)
    assert not fresh.trailing.busy
    return fresh


async def test_a_restart_trails_from_the_best_mark_of_the_time_the_bot_was_down(app: App) -> None:
    position_id = await opened_and_left(app, "BTCUSDT", Side.LONG, "0.004")
    await marks_while_down(app, "BTCUSDT", "50900", "51600", "51400")

    fresh = await restarted(app)

    state = fresh.trailing.state(position_id)
    assert state is not None and state.phase is TrailingPhase.ACTIVE
    assert state.best_price == 51600
    [stop] = app.venue.stops("BTCUSDT")
    assert stop.trigger_price == state.stop_price
    assert stop.trigger_price is not None and 51300 < stop.trigger_price < 51400
    [activated] = fresh.sink.of(EventType.TRAILING_STOP_ACTIVATED)
    assert activated.data["mark"] == 51600


async def test_a_short_s_stop_follows_the_lowest_mark_it_missed_and_never_sits_above_it(
    app: App,
) -> None:
    position_id = await opened_and_left(app, "ETHUSDT", Side.SHORT, "0.1")
    entry = app.venue.position("ETHUSDT")
    assert entry is not None
    low, now = entry.entry_price * 97 / 100, entry.entry_price * 9745 / 10000
    await marks_while_down(app, "ETHUSDT", str(low), str(now))

    fresh = await restarted(app)

    state = fresh.trailing.state(position_id)
    assert state is not None and state.phase is TrailingPhase.ACTIVE and state.best_price == low
    [stop] = app.venue.stops("ETHUSDT")
    assert stop.trigger_price == state.stop_price
    # 0.5 % above the low, which the mark now (fallen back 0.45 %) does not reach
    assert stop.trigger_price is not None and now < stop.trigger_price <= low * 1005 / 1000 + 1


async def test_marks_before_the_entry_are_no_profit_to_catch_up_on(app: App) -> None:
    await app.venue.set_mark("BTCUSDT", "51500")  # a spike in the minute the entry is made
    await app.clock.advance(1)
    await app.venue.set_mark("BTCUSDT", "50000")
    position_id = await opened_and_left(app, "BTCUSDT", Side.LONG, "0.004")
    await marks_while_down(app, "BTCUSDT", "50100")

    fresh = await restarted(app)

    state = fresh.trailing.state(position_id)
    assert state is not None and state.phase is TrailingPhase.INACTIVE
    assert not fresh.sink.of(EventType.TRAILING_STOP_ACTIVATED)


async def test_a_venue_that_cannot_answer_the_history_leaves_trailing_to_the_marks_it_sees(
    app: App,
) -> None:
    position_id = await opened_and_left(app, "BTCUSDT", Side.LONG, "0.004")
    await marks_while_down(app, "BTCUSDT", "51600", "50500")
    app.venue.inject(Fault.server_error(Op.FETCH_MARK_CANDLES, times=99))

    fresh = build_app(app.venue, app.store)
    await fresh.run(fresh.trailing.restore())
    fresh.trailing.catch_up()
    await pass_time(fresh, 600)  # five tries, then it gives up

    assert not fresh.trailing.busy
    state = fresh.trailing.state(position_id)
    assert state is not None and state.phase is TrailingPhase.INACTIVE
    follower = asyncio.create_task(follow_marks(fresh, ["BTCUSDT"]))
    await app.venue.set_mark("BTCUSDT", "51000")
    await pass_time(fresh, 5)
    follower.cancel()
    state = fresh.trailing.state(position_id)
    assert state is not None and state.phase is TrailingPhase.ACTIVE


# Review 15: each failed on the first catch-up.


async def test_a_spike_before_the_entry_is_no_best_though_the_state_changed_in_that_minute(
    app: App,
) -> None:
    await app.venue.set_mark("BTCUSDT", "53000")  # a spike before the entry, same minute
    await app.clock.advance(1)
    await app.venue.set_mark("BTCUSDT", "50000")
    follower = asyncio.create_task(follow_marks(app, ["BTCUSDT"]))
    result = await app.open("BTCUSDT", Side.LONG, "0.004")
    assert result.opened and result.position is not None
    await app.run(app.trailing.start(result.position))
    await app.venue.set_mark("BTCUSDT", "50800")  # activated in the entry's minute
    await pass_time(app, 5)
    follower.cancel()
    await app.clock.advance(120)

    fresh = await restarted(app)
    follower = asyncio.create_task(follow_marks(fresh, ["BTCUSDT"]))
    await app.venue.set_mark("BTCUSDT", "52500")
    await pass_time(fresh, 5)
    follower.cancel()

    state = fresh.trailing.state(result.position.id)
    assert state is not None and state.best_price == Decimal("52500")
    [stop] = app.venue.stops("BTCUSDT")  # 0.5 % under 52,500, not held back by 53,000
    assert stop.trigger_price is not None and stop.trigger_price >= Decimal("52237")


class _VenuePort:
    """The venue's own port, but for what a subclass answers otherwise."""

    def __init__(self, app: App) -> None:
        self._exchange = app.venue.exchange

    def __getattr__(self, name: str) -> object:
        return getattr(self._exchange, name)


class _SlowHistory(_VenuePort):
    """The venue's port, its mark history answered and then held until `gate` opens (a
    request that waited its turn at sweep priority)."""

    def __init__(self, app: App) -> None:
        super().__init__(app)
        self.gate = asyncio.Event()
        self.answered = asyncio.Event()

    async def fetch_mark_candles(self, symbol: str, *, since: datetime) -> Sequence[MarkCandle]:
        answer = await self._exchange.fetch_mark_candles(symbol, since=since)
        self.answered.set()
        await self.gate.wait()
        return answer


async def test_the_catch_up_places_no_stop_the_newest_mark_the_bot_holds_crosses(
    app: App,
) -> None:
    await opened_and_left(app, "BTCUSDT", Side.LONG, "0.004")
    await marks_while_down(app, "BTCUSDT", "51600", "51400")
    slow = _SlowHistory(app)
    fresh = build_app(app.venue, app.store, exchange=cast(Exchange, slow))
    await fresh.run(fresh.trailing.restore())
    fresh.trailing.catch_up()
    await fresh.run(slow.answered.wait())  # the venue's last close: 51,400
    await app.venue.set_mark("BTCUSDT", "50700")  # the feed's newer mark, meanwhile
    follower = asyncio.create_task(follow_marks(fresh, ["BTCUSDT"]))
    await pass_time(fresh, 1)
    slow.gate.set()
    await pass_time(fresh, 10)
    follower.cancel()

    assert not fresh.sink.of(EventType.STOP_LOSS_FAILED)  # 51,342 would trigger at 50,700
    [stop] = app.venue.stops("BTCUSDT")
    assert stop.trigger_price is not None and stop.trigger_price < Decimal("50700")


async def test_a_history_asked_again_still_covers_the_time_the_bot_was_down(app: App) -> None:
    position_id = await opened_and_left(app, "BTCUSDT", Side.LONG, "0.004")
    await marks_while_down(app, "BTCUSDT", "51600", "51400")
    app.venue.inject(Fault.server_error(Op.FETCH_MARK_CANDLES, times=1))

    fresh = build_app(app.venue, app.store)
    await fresh.run(fresh.trailing.restore())
    fresh.trailing.catch_up()
    follower = asyncio.create_task(follow_marks(fresh, ["BTCUSDT"]))  # ticks while it waits
    await pass_time(fresh, 120)
    follower.cancel()

    state = fresh.trailing.state(position_id)
    assert state is not None and state.best_price == Decimal("51600")
    [stop] = app.venue.stops("BTCUSDT")
    assert stop.trigger_price is not None and stop.trigger_price >= Decimal("51342")


async def test_marks_before_a_person_added_to_the_position_are_not_judged_by_its_new_entry(
    app: App,
) -> None:
    # a short from 50,000 (activation 49,250): the dip to 49,400 while down activates
    # nothing; after the add the entry is 50,300 (activation 49,545.5), which it would
    position = await opened_and_left(app, "BTCUSDT", Side.SHORT, "0.004")
    await marks_while_down(app, "BTCUSDT", "49400", "50600")

    fresh = build_app(app.venue, app.store)
    await fresh.run(fresh.trailing.restore())
    stored = await app.store.positions.get(position)
    assert stored is not None
    added = attrs.evolve(stored, entry_price=Decimal("50300"), quantity=Decimal("0.008"))
    await fresh.run(fresh.trailing.follow(added))  # as the keeper's recovery does
    fresh.trailing.catch_up()
    await pass_time(fresh, 30)

    state = fresh.trailing.state(position)
    assert state is not None and state.phase is TrailingPhase.INACTIVE


async def test_a_breakeven_touched_while_down_still_moves_the_stop_to_the_entry_later(
    app: App,
) -> None:
    settings = attrs.evolve(SETTINGS, trailing=TrailingParams(breakeven_percent=Decimal("0.5")))
    first = build_app(app.venue, app.store, settings=settings)
    await opened_and_left(first, "BTCUSDT", Side.LONG, "0.004")
    await marks_while_down(app, "BTCUSDT", "50300", "49900")  # breakeven 50,250, entry 50,000

    fresh = build_app(app.venue, app.store, settings=settings)
    await fresh.run(fresh.trailing.restore())
    fresh.trailing.catch_up()
    await pass_time(fresh, 30)
    follower = asyncio.create_task(follow_marks(fresh, ["BTCUSDT"]))
    await app.venue.set_mark("BTCUSDT", "50400")  # past breakeven again
    await pass_time(fresh, 120)
    follower.cancel()

    [stop] = app.venue.stops("BTCUSDT")
    assert stop.trigger_price == Decimal("50000")


# Review 15b: each failed on 03988d5.


async def recovered(app: App) -> App:
    """A restart as recovery runs it: restore, sync, protect (the keeper follows the
    venue's quantity and entry), trail what has no state yet, then the catch-up."""
    fresh = build_app(app.venue, app.store)
    await fresh.run(fresh.trailing.restore())
    await fresh.run(fresh.sync.sync())
    await fresh.run(fresh.guard.check())
    for position in await app.store.positions.open_positions():
        if fresh.trailing.state(position.id) is None:
            await fresh.run(fresh.trailing.start_for(position))
    fresh.trailing.catch_up()
    await pass_time(fresh, 30)
    return fresh


async def test_a_partial_close_by_hand_while_down_keeps_the_marks_the_bot_missed(
    app: App,
) -> None:
    position_id = await opened_and_left(app, "BTCUSDT", Side.LONG, "0.004")
    await marks_while_down(app, "BTCUSDT", "50900", "50700")
    app.venue.partly_close_by_hand("BTCUSDT", "0.002")  # the entry stays 50,000

    fresh = await recovered(app)

    state = fresh.trailing.state(position_id)
    assert state is not None and state.quantity == Decimal("0.002")
    assert state.phase is TrailingPhase.ACTIVE and state.best_price == Decimal("50900")


async def test_a_state_first_made_after_a_person_s_add_judges_no_mark_from_before_it(
    app: App,
) -> None:
    # a short from 50,000 whose trailing state a crash took; while down the mark dips to
    # 49,400 (no activation at 49,250), then a person adds: entry 50,300, activation
    # 49,545.5 — which the dip, from before the add, would reach
    result = await app.open("BTCUSDT", Side.SHORT, "0.004")
    assert result.opened and result.position is not None
    await marks_while_down(app, "BTCUSDT", "49400", "50600")
    app.venue.open_by_hand("BTCUSDT", Side.SHORT, "0.004")
    await app.clock.advance(60)

    fresh = await recovered(app)

    state = fresh.trailing.state(result.position.id)
    assert state is not None and state.entry_price == Decimal("50300")
    assert state.phase is TrailingPhase.INACTIVE


class _BrokenHistory(_VenuePort):
    """The venue's port, its mark history raising what no adapter raises (a bug)."""

    async def fetch_mark_candles(self, symbol: str, *, since: datetime) -> Sequence[MarkCandle]:
        raise RuntimeError("a bug")


async def test_a_catch_up_that_fails_for_a_bug_says_so_for_its_symbol(app: App) -> None:
    # the simulator excuses a critical event with no symbol during any fault on any symbol
    await opened_and_left(app, "BTCUSDT", Side.LONG, "0.004")
    fresh = build_app(app.venue, app.store, exchange=cast(Exchange, _BrokenHistory(app)))
    await fresh.run(fresh.trailing.restore())
    fresh.trailing.catch_up()
    await pass_time(fresh, 5)

    [critical] = fresh.sink.of(EventType.CRITICAL_ERROR)
    assert critical.symbol == "BTCUSDT" and not fresh.trailing.busy
