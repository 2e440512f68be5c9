"""Random interleavings: trailing, the guard, sync and zombie passes, a person, and faults.

A seeded schedule (one seed fixes every choice) drives one position through random marks
(the trailing service moving its stop in the background), protection / sync / zombie
passes, a person's hands (remove, tighten or loosen the stop, close part of the position)
and venue faults on the next command (a lost answer, a 5xx that did or did not act, a
timeout, an "already done" answer). After every guard pass with no fault pending, and at the
end once the venue is quiet, the promises must hold:

- the venue holds a stop for the position's full quantity (never none after a guard pass);
- the bot's level (the journaled stop) never loosens while the position lives;
- at quiescence the journal agrees with the venue and nothing is left in flight.
"""

import asyncio
import random
from decimal import Decimal

import attrs
import pytest

from tradecore.domain.model import Side
from tradecore.domain.orders import OrderType
from tradecore.domain.trailing import TrailingParams
from tradecore.testing import Accepted, FakeVenue, Fault, Op, RejectReason

from .conftest import ROUND_TRIP, Opener
from .harness import SETTINGS, App, build_app, follow_marks, pass_time
from .invariants import journal_problems, stop_problems

SEEDS = 12
STEPS = 60
QTY = "0.008"
SETTINGS_FAST = attrs.evolve(
    SETTINGS, trailing=TrailingParams(rate_limit_seconds=1, activation_percent=Decimal("0.5"))
)


def _command_ops(venue: FakeVenue) -> list[Op]:
    if venue.exchange.capabilities.position_stop:
        return [Op.POSITION_STOP, Op.MARKET_ORDER]
    return [Op.STOP_ORDER, Op.CANCEL, Op.MARKET_ORDER]


def _fault(rng: random.Random, venue: FakeVenue) -> Fault:
    op = rng.choice(_command_ops(venue))
    kind = rng.randrange(6)
    if kind == 0:
        return Fault.lost_response(op)
    if kind == 1:
        return Fault.server_error(op, acted=True)
    if kind == 2:
        return Fault.server_error(op, acted=False)
    if kind == 3:
        return Fault.timeout(op)
    if kind == 4:
        return Fault.lost_response(Op.FETCH_ORDER)
    reason = rng.choice([RejectReason.DUPLICATE_CLIENT_ID, RejectReason.NOT_MODIFIED])
    return Fault.reject(reason, op)


def _stop_level(venue: FakeVenue, symbol: str) -> Decimal | None:
    held = venue.position(symbol)
    if held is not None and held.stop_price is not None:
        return held.stop_price
    levels = [s.trigger_price for s in venue.stops(symbol) if s.trigger_price is not None]
    return max(levels) if levels else None


async def _person(rng: random.Random, app: App, symbol: str) -> str:
    venue, exchange = app.venue, app.venue.exchange
    held = venue.position(symbol)
    if held is None:
        return "flat"
    choice = rng.randrange(4)
    if choice == 0 or choice in (1, 2):  # remove, then maybe place another by hand
        level = _stop_level(venue, symbol)
        for stop in venue.stops(symbol):
            if stop.type is OrderType.POSITION_STOP:
                await app.run(exchange.set_position_stop(symbol, None))
            else:
                await app.run(exchange.cancel_order(symbol, stop.order_id))
        if choice == 0 or level is None:
            return "removed the stop"
        mark = venue.mark(symbol)
        factor = Decimal("1.003") if choice == 1 else Decimal("0.99")  # tighter / looser
        price = min((level * factor).quantize(Decimal("0.1")), mark * Decimal("0.998"))
        price = price.quantize(Decimal("0.1"))
        if exchange.capabilities.position_stop:
            await app.run(exchange.set_position_stop(symbol, price))
        else:
            venue.manual_stop(symbol, held.side.exit, held.quantity, price)
        return f"moved the stop to {price}"
    half = (held.quantity / 2).quantize(Decimal("0.001"))
    if half <= 0:
        return "left the last lot alone"
    venue.manual_order(symbol, held.side.exit, half, reduce_only=True)
    return f"closed {half} by hand"


@pytest.mark.parametrize("seed", range(SEEDS))
@pytest.mark.parametrize("profile", ["binance", "bybit"])
async def test_random_interleavings_keep_the_position_protected(
    profile: str, seed: int, open_database: Opener
) -> None:
    rng = random.Random(f"{profile}-{seed}")
    venue = (FakeVenue.bybit if profile == "bybit" else FakeVenue.binance)(latency=ROUND_TRIP)
    database = await open_database()
    app = build_app(venue, database.store, settings=SETTINGS_FAST)
    symbol = "BTCUSDT"
    follower = asyncio.create_task(follow_marks(app, [symbol]))
    story: list[str] = []
    try:
        result = await app.open(symbol, Side.LONG, QTY)
        assert result.opened and result.position is not None
        await app.trailing.start(result.position)
        levels: list[Decimal] = []
        for step in range(STEPS):
            what = rng.randrange(10)
            if what <= 3:
                mark = venue.mark(symbol) * Decimal(str(1 + rng.uniform(-0.006, 0.012)))
                await venue.set_mark(symbol, mark.quantize(Decimal("0.1")))
                story.append(f"{step}: mark {mark:.1f}")
            elif what == 4:
                story.append(f"{step}: person {await _person(rng, app, symbol)}")
            elif what == 5:
                fault = _fault(rng, venue)
                venue.inject(fault)
                story.append(f"{step}: fault {fault.kind} {fault.op} {fault.reason}")
            elif what == 6:
                await app.run(app.sync.sync())
                story.append(f"{step}: sync")
            elif what == 7:
                await app.run(app.zombies.sweep())
                story.append(f"{step}: zombies")
            else:
                await app.run(app.guard.check())
                story.append(f"{step}: guard")
                if not venue.engine.faults.pending and venue.position(symbol) is not None:
                    assert venue.stops(symbol), "\n".join(story)  # never bare after a pass
            await pass_time(app, rng.uniform(0, 3))
            journaled = await database.store.positions.get(result.position.id)
            if journaled is not None and journaled.state.is_open_on_venue:
                if journaled.stop_price is not None:
                    levels.append(journaled.stop_price)
            if venue.position(symbol) is None:
                story.append(f"{step}: flat")
                break
        # the bot's level never loosens while the position lives (a long: never lower)
        assert levels == sorted(levels), "\n".join(story)
        venue.engine.faults.clear()
        await app.trailing.drain()
        await pass_time(app, 5)
        await app.run(app.sync.sync())
        await app.run(app.guard.check())
        await app.run(app.zombies.sweep())
        await app.run(app.sync.sync())
        assert stop_problems(venue) == [], "\n".join(story)
        assert await journal_problems(venue, database.store) == [], "\n".join(story)
        assert await database.store.operations.in_flight() == [], "\n".join(story)
    finally:
        follower.cancel()
        await database.close()
