"""A position below the market's minimum quantity on Binance: no quantity stop can carry it
(-4004), so its stop is a close-all one (`closePosition=true`, no quantity; USDⓈ-M "New
Algo Order"). Binance holds one such stop per direction (-4130): a move of it cannot be
create-then-cancel, and is cancel-then-create with the one round trip of the create as the
only time without a stop (docs/venues.md, "Close-all stops")."""

from decimal import Decimal

import attrs

from tradecore.domain.events import EventType
from tradecore.domain.model import OrderSide
from tradecore.domain.orders import MarkTick
from tradecore.testing import Fault, Op, RejectReason

from .conftest import ROUND_TRIP
from .outside import (
    binance_with_a_minimum_above_the_step,
    mark_moves,
    open_below_minimum,
    running,
)


async def test_a_close_all_stop_is_moved_by_the_trailing_stop_without_a_second_one() -> None:
    venue = binance_with_a_minimum_above_the_step()
    async with running(venue) as app:
        await open_below_minimum(app, venue)
        [first] = venue.stops("BTCUSDT")
        assert first.close_position and first.trigger_price == Decimal("48500")
        [position] = await app.store.positions.open_positions()
        await app.services.trailing.start(position)
        for price in ("50900", "51200", "51500"):  # activation (+1.5 %), then new bests
            await venue.set_mark("BTCUSDT", price)
            tick = MarkTick(
                venue=venue.exchange.venue, symbol="BTCUSDT", mark=Decimal(price), at=venue.now()
            )
            await app.services.trailing.on_tick(tick)
            await app.pass_time(20)

        [stop] = venue.stops("BTCUSDT")
        assert stop.close_position  # still the whole position, one stop
        assert stop.trigger_price is not None and stop.trigger_price > Decimal("50000")
        # promise 1: the cancel-then-create of each move left it bare for one round trip
        assert venue.books.longest_unprotected(venue.now(), "BTCUSDT") <= 2 * ROUND_TRIP
        assert venue.books.max_stops("BTCUSDT") == 1
        reasons = [e.data.get("reason") for e in app.events.of(EventType.STOP_LOSS_CANCELLED)]
        assert "replaced (one close-all stop)" in reasons, reasons
        assert not app.events.of(EventType.CRITICAL_ERROR)


async def test_a_close_all_stop_found_on_restart_is_the_position_s_stop() -> None:
    venue = binance_with_a_minimum_above_the_step()
    async with running(venue) as app:
        await open_below_minimum(app, venue)
        [stop] = venue.stops("BTCUSDT")
        await app.crash()
        # while it is down, a person replaces the bot's close-all stop by a tighter one of theirs
        venue.cancel_stop("BTCUSDT")
        placed = venue.engine.place_stop(
            "BTCUSDT", OrderSide.SELL, "0", "49000", close_position=True, origin="manual"
        )
        await app.restart()
        await app.guard_pass()
        await app.sync_pass()
        await app.zombie_pass()

        held = venue.position("BTCUSDT")
        assert held is not None and held.quantity == Decimal("0.003")
        [standing] = venue.stops("BTCUSDT")  # counted as the full stop: none added, none swept
        assert standing.close_position and standing.trigger_price == Decimal("49000")
        assert standing.order_id != stop.order_id and placed
        assert not app.events.of(EventType.CRITICAL_ERROR)


async def test_a_close_all_move_whose_new_stop_is_refused_puts_the_old_level_back() -> None:
    venue = binance_with_a_minimum_above_the_step()
    async with running(venue) as app:
        await open_below_minimum(app, venue)
        [first] = venue.stops("BTCUSDT")
        [position] = await app.store.positions.open_positions()
        await app.services.trailing.start(position)
        # the move's first create meets -4130; after the old stop is cancelled, the venue
        # refuses the new one (the symbol pauses for a moment)
        venue.inject(Fault.reject(RejectReason.SYMBOL_UNAVAILABLE, Op.STOP_ORDER, skip=1))
        await venue.set_mark("BTCUSDT", "50900")
        tick = MarkTick(
            venue=venue.exchange.venue, symbol="BTCUSDT", mark=Decimal("50900"), at=venue.now()
        )
        await app.services.trailing.on_tick(tick)
        await app.pass_time(1)

        [stop] = venue.stops("BTCUSDT")  # the previous level stands again
        assert stop.close_position and stop.trigger_price == Decimal("48500")
        assert stop.order_id != first.order_id  # cancelled, then placed again
        # bare from the cancel through the refused create and the restoring one
        assert venue.books.longest_unprotected(venue.now(), "BTCUSDT") <= 4 * ROUND_TRIP
        assert app.events.of(EventType.STOP_LOSS_FAILED)  # the move is owed, and said so


async def test_a_close_all_move_whose_restore_is_refused_too_keeps_the_trailed_level() -> None:
    """Story 3's rule on the cancel-then-create path: the old close-all stop is gone, the new
    one and the restoring one are refused. The journal keeps the last level the bot set (the
    trailed one), so the guard puts the stop back there, not at the initial distance."""
    venue = binance_with_a_minimum_above_the_step()
    async with running(venue) as app:
        await open_below_minimum(app, venue)
        [position] = await app.store.positions.open_positions()
        await app.services.trailing.start(position)
        for price in ("50900", "51200"):  # activation (+1.5 %), then a new best: trailed
            await mark_moves(app, venue, price)
        [trailed] = venue.stops("BTCUSDT")
        assert trailed.trigger_price is not None and trailed.trigger_price > Decimal("48500")
        # the next move: -4130, the old stop cancelled, then the symbol pauses: the new stop
        # and the old level's restore are both refused
        venue.inject(Fault.reject(RejectReason.SYMBOL_UNAVAILABLE, Op.STOP_ORDER, skip=1, times=2))
        await mark_moves(app, venue, "51500", then=1)
        [journaled] = await app.store.positions.open_positions()
        assert journaled.stop_price == trailed.trigger_price  # the bot's level (gone order named)

        await app.guard_pass()
        [stop] = venue.stops("BTCUSDT")
        assert stop.trigger_price is not None
        assert stop.trigger_price >= trailed.trigger_price, (stop.trigger_price, trailed)


async def test_a_restore_whose_answer_was_lost_is_named_by_the_guard_and_trailing_goes_on() -> None:
    """(review 14) The move's new stop is refused after the old one was cancelled; the
    restore at the old level reaches the venue but its answer is lost and look-ups fail.
    The close-all stop stands, the journal does not name it: the guard names it, or every
    later move would meet -4130 (one close-all stop per direction) and the stop would stay
    at that level while the mark ran up."""
    venue = binance_with_a_minimum_above_the_step()
    async with running(venue) as app:
        await open_below_minimum(app, venue)
        [position] = await app.store.positions.open_positions()
        await app.services.trailing.start(position)

        for price in ("50900", "51200"):
            await mark_moves(app, venue, price)
        [trailed] = venue.stops("BTCUSDT")
        level = trailed.trigger_price
        assert level is not None and level > Decimal("48500")
        venue.inject(
            Fault.reject(RejectReason.SYMBOL_UNAVAILABLE, Op.STOP_ORDER, skip=1),
            attrs.evolve(Fault.lost_response(Op.STOP_ORDER), skip=2),
            Fault.network_error(Op.FETCH_ORDER, times=30),
        )
        await mark_moves(app, venue, "51500", then=30)
        venue.engine.faults.clear()
        [standing] = venue.stops("BTCUSDT")
        assert standing.trigger_price == level  # the restore stands, unnamed

        await app.guard_pass()
        failed_before = len(app.events.of(EventType.STOP_LOSS_FAILED))
        for price in ("52500", "53500", "54500"):
            await mark_moves(app, venue, price, then=60)
        [stop] = venue.stops("BTCUSDT")
        fails = [e.error_message for e in app.events.of(EventType.STOP_LOSS_FAILED)[failed_before:]]
        assert stop.trigger_price is not None and stop.trigger_price > level, fails
