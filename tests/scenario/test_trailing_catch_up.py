"""A restart takes in the marks its trailing states never judged — those of the time the bot
was down, and those whose change a crash took before the journal had it (simulator, binance
seed 2508: an activation lost, the marks never came back to it, the stop stayed at the
initial distance for the rest of the run). The venue keeps them as mark-price klines."""

import asyncio

from tradecore.domain.events import EventType
from tradecore.domain.model import Side
from tradecore.domain.trailing import TrailingPhase
from tradecore.testing import Fault, Op

from .harness import App, build_app, follow_marks, pass_time


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
