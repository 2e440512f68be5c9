"""Issue 10, story 5 found again by the simulator (`trailing_stuck`): a trailing move that
never reached the venue — refused, or cut off by a crash — must be tried again on the next
mark, not wait for a new best price that may never come."""

import asyncio
from decimal import Decimal

from tradecore.domain.model import Side
from tradecore.domain.orders import MarkTick
from tradecore.testing import Fault, Op, RejectReason

from .harness import App, build_app, pass_time


def tick(app: App, symbol: str, price: str) -> MarkTick:
    return MarkTick(
        venue=app.venue.exchange.venue, symbol=symbol, mark=Decimal(price), at=app.clock.now()
    )


async def mark(app: App, symbol: str, price: str, then: float = 20) -> None:
    await app.venue.set_mark(symbol, price)
    await app.trailing.on_tick(tick(app, symbol, price))
    await pass_time(app, then)


def venue_stop(app: App, symbol: str) -> Decimal | None:
    held = app.venue.position(symbol)
    if held is not None and held.stop_price is not None:
        return held.stop_price
    [stop] = app.venue.stops(symbol)
    return stop.trigger_price


async def test_a_refused_trailing_move_is_tried_again_on_the_next_mark(app: App) -> None:
    result = await app.open("BTCUSDT", Side.LONG, "0.004")
    assert result.position is not None
    await app.trailing.start(result.position)
    stop_op = Op.POSITION_STOP if app.venue.exchange.capabilities.position_stop else Op.STOP_ORDER
    # The symbol stops trading for a moment: the activation's stop is refused.
    app.venue.inject(Fault.reject(RejectReason.SYMBOL_UNAVAILABLE, stop_op, times=3))
    await mark(app, "BTCUSDT", "50900")  # activation (+1.8 %): wants 50645
    assert venue_stop(app, "BTCUSDT") == Decimal("48500")

    # The fault is over; the mark wanders below its best: no new best price, but the
    # activation's stop is still owed.
    for price in ("50850", "50870", "50860", "50880"):
        await mark(app, "BTCUSDT", price)

    stop = venue_stop(app, "BTCUSDT")
    assert stop is not None and stop >= Decimal("50600"), stop


async def test_a_trailing_move_a_crash_cut_off_is_made_after_the_restart(app: App) -> None:
    result = await app.open("BTCUSDT", Side.LONG, "0.004")
    assert result.position is not None
    await app.trailing.start(result.position)
    # The tick is judged and its state saved, then the process dies before the stop moves.
    await app.venue.set_mark("BTCUSDT", "50900")
    await app.trailing.on_tick(tick(app, "BTCUSDT", "50900"))
    for mover in list(app.trailing._movers.values()):
        mover.cancel()
    assert venue_stop(app, "BTCUSDT") == Decimal("48500")

    fresh = build_app(app.venue, app.store)
    await fresh.run(fresh.trailing.restore())
    for price in ("50850", "50870", "50860", "50880"):
        await fresh.venue.set_mark("BTCUSDT", price)
        await fresh.trailing.on_tick(tick(fresh, "BTCUSDT", price))
        await pass_time(fresh, 20)

    stop = venue_stop(fresh, "BTCUSDT")
    assert stop is not None and stop >= Decimal("50600"), stop


async def test_a_small_move_a_crash_cut_off_is_not_held_back_by_the_rate_limit(app: App) -> None:
    """Simulator, bybit seed 188 (trailing_stuck): a move of 0.4 % (under the 1 % that
    overrides the rate limit) is judged and saved, and the process dies before it reaches
    the venue. The restored state took the cut-off move's moment for the last move the venue
    took, so the restarted bot held the move back for a whole rate-limit period (60 s) after
    the restart although the venue's stop had last moved minutes before."""
    result = await app.open("BTCUSDT", Side.LONG, "0.004")
    assert result.position is not None
    await app.trailing.start(result.position)
    await mark(app, "BTCUSDT", "50900", then=61)  # activation: the stop goes to 50645
    assert venue_stop(app, "BTCUSDT") == Decimal("50645.5")
    await pass_time(app, 120)  # the venue's stop stands for minutes
    await app.venue.set_mark("BTCUSDT", "51100")  # wants 50844.5: +0.39 %
    await app.trailing.on_tick(tick(app, "BTCUSDT", "51100"))
    for mover in list(app.trailing._movers.values()):  # dies before the stop moves
        mover.cancel()
    assert venue_stop(app, "BTCUSDT") == Decimal("50645.5")

    fresh = build_app(app.venue, app.store)
    await fresh.run(fresh.trailing.restore())
    await pass_time(fresh, 5)  # the restart
    await fresh.venue.set_mark("BTCUSDT", "51110")
    await fresh.trailing.on_tick(tick(fresh, "BTCUSDT", "51110"))
    await pass_time(fresh, 5)

    stop = venue_stop(fresh, "BTCUSDT")
    assert stop is not None and stop >= Decimal("50800"), stop


async def test_a_move_the_rate_limit_held_back_is_made_when_it_is_due_with_no_new_mark(
    app: App,
) -> None:
    """Simulator beyond the CI seeds, binance seed 614 (`trailing_stuck`): the mark made a
    new best 17 s after the last move, a gain of 0.25 % (under the 1 % that overrides the
    rate limit), so the move waited for the limit (60 s) — and the mark then stood still for
    minutes. Nothing judged the position again until the next mark: the stop stayed behind."""
    result = await app.open("BTCUSDT", Side.LONG, "0.004")
    assert result.position is not None
    await app.trailing.start(result.position)
    await mark(app, "BTCUSDT", "50900", then=61)  # activation: the stop goes to 50645.5
    assert venue_stop(app, "BTCUSDT") == Decimal("50645.5")
    await mark(app, "BTCUSDT", "51000", then=17)  # the stop goes to 50745
    assert venue_stop(app, "BTCUSDT") == Decimal("50745.0")
    await app.venue.set_mark("BTCUSDT", "51100")  # a new best 17 s after that move: wants
    await app.trailing.on_tick(tick(app, "BTCUSDT", "51100"))  # 50844.5, +0.2 %: held back
    await pass_time(app, 60)  # ...and then not one mark for a minute

    stop = venue_stop(app, "BTCUSDT")
    assert stop is not None and stop >= Decimal("50840"), stop


async def test_trailing_activates_from_the_entry_the_venue_shows_after_a_person_added(
    app: App,
) -> None:
    """A person adds to the position lower down: the venue's entry is now the average, and
    the trailing stop activates 1.5 % above that, not above the bot's own fill."""
    result = await app.open("BTCUSDT", Side.LONG, "0.004")
    assert result.position is not None
    await app.trailing.start(result.position)
    await app.venue.set_mark("BTCUSDT", "49000")
    app.venue.open_by_hand("BTCUSDT", Side.LONG, "0.004")  # the entry is now 49500
    await app.run(app.sync.sync())
    await app.run(app.guard.check())

    for price in ("50300", "50310", "50320"):  # +1.6 % over 49500, +0.6 % over 50000
        await mark(app, "BTCUSDT", price, then=61)

    stops = [s.trigger_price for s in app.venue.stops("BTCUSDT") if s.trigger_price]
    held = app.venue.position("BTCUSDT")
    if held is not None and held.stop_price is not None:
        stops.append(held.stop_price)
    assert max(stops) >= Decimal("50000"), stops


async def test_trailing_resumes_after_the_guard_put_back_a_stop_the_mark_crossed_while_bare(
    app: App,
) -> None:
    """A person removes the trailing stop; the mark crosses its level while the position is
    bare (nothing fires); the guard puts the stop back. The trailing stop is no longer
    'triggered': it trails the mark on."""
    app.gaps_allowed = 1  # the person's removal, until the guard's pass
    result = await app.open("BTCUSDT", Side.LONG, "0.004")
    assert result.position is not None
    await app.trailing.start(result.position)
    await mark(app, "BTCUSDT", "50900", then=61)  # activation: the stop goes to 50645
    app.venue.cancel_stop("BTCUSDT")
    await mark(app, "BTCUSDT", "50600")  # through 50645 while bare: nothing fires
    await mark(app, "BTCUSDT", "50700")
    await app.run(app.guard.check())  # the stop is back at 50645
    for price in ("51500", "52000", "52500"):
        await mark(app, "BTCUSDT", price, then=61)

    stop = venue_stop(app, "BTCUSDT")
    assert stop is not None and stop >= Decimal("52000"), stop


RETRY_WITHIN = 30  # seconds: a refused move is tried again this soon with no new mark


async def test_a_refused_trailing_move_is_tried_again_while_no_mark_comes(app: App) -> None:
    """Simulator binance 27, bybit 1 (trailing_stuck): the move is refused, then the marks
    stay flat for twenty minutes. Waiting for the next mark leaves the stop behind all that
    time; the move is tried again on a timer."""
    result = await app.open("BTCUSDT", Side.LONG, "0.004")
    assert result.position is not None
    await app.trailing.start(result.position)
    stop_op = Op.POSITION_STOP if app.venue.exchange.capabilities.position_stop else Op.STOP_ORDER
    app.venue.inject(Fault.reject(RejectReason.SYMBOL_UNAVAILABLE, stop_op))
    await mark(app, "BTCUSDT", "50900", then=0)  # activation (+1.8 %): wants 50645, refused
    assert venue_stop(app, "BTCUSDT") == Decimal("48500")

    await pass_time(app, RETRY_WITHIN)  # not one mark

    stop = venue_stop(app, "BTCUSDT")
    assert stop is not None and stop >= Decimal("50600"), stop


async def test_a_move_the_venue_rate_limits_is_tried_again_once_the_limit_is_over(
    app: App,
) -> None:
    """While the venue answers 429/418 the move backs off longer, but it is still made
    within the longest back-off once the venue answers again, with no new mark."""
    result = await app.open("BTCUSDT", Side.LONG, "0.004")
    assert result.position is not None
    await app.trailing.start(result.position)
    app.venue.inject(Fault.rate_limit(Op.FETCH_OPEN_ORDERS, symbol="BTCUSDT", times=4))
    await mark(app, "BTCUSDT", "50900", then=0)
    await pass_time(app, 240)  # the limit runs out somewhere in here

    stop = venue_stop(app, "BTCUSDT")
    assert stop is not None and stop >= Decimal("50600"), stop


async def test_a_move_refused_while_draining_leaves_no_retry_behind(app: App) -> None:
    """Shutdown: drain() waits for the move in flight; the venue refuses it. Nothing of the
    trailing service may run on after drain (the account lock is released next): no retry
    timer is left to write a stop later."""
    result = await app.open("BTCUSDT", Side.LONG, "0.004")
    assert result.position is not None
    await app.run(app.trailing.start(result.position))
    stop_op = Op.POSITION_STOP if app.venue.exchange.capabilities.position_stop else Op.STOP_ORDER
    app.venue.inject(Fault.reject(RejectReason.SYMBOL_UNAVAILABLE, stop_op, times=3))
    await mark(app, "BTCUSDT", "50900", then=0)  # activation: the move leaves, to be refused

    await app.run(app.trailing.drain())

    left = [
        task.get_name()
        for task in asyncio.all_tasks()
        if task.get_name().startswith("trailing-") and not task.done()
    ]
    for task in asyncio.all_tasks():
        if task.get_name().startswith("trailing-"):
            task.cancel()
    assert left == []
