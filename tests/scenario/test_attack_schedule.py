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
import contextlib
import os
import random
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any, cast

import attrs
import pytest

from tradecore.app.kernel import Kernel
from tradecore.domain.model import Side
from tradecore.domain.orders import OrderType
from tradecore.domain.trailing import TrailingParams
from tradecore.ports.exchange import Exchange
from tradecore.ports.repositories import Store
from tradecore.testing import FakeVenue, Fault, Op, RejectReason

from .conftest import ROUND_TRIP, Database, Opener
from .crash import Crash, Tripwire, tripped_exchange, tripped_store
from .harness import SETTINGS, App, build_app, follow_marks, pass_time
from .invariants import entries_sent, journal_problems, stop_problems

SEEDS = int(os.environ.get("ATTACK_SEEDS", "12"))
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


class _Dies(Tripwire):
    """Crashes at await `at` and at every await after it: the process is dead."""

    async def around(self, call: Callable[[], Awaitable[Any]]) -> Any:
        if self.fired:
            raise Crash("dead")
        return await super().around(call)


@attrs.define
class _Process:
    app: App
    follower: asyncio.Task[None]
    wire: _Dies | None = None


async def _start(
    venue: FakeVenue, database: Database, rng: random.Random, *, crash: bool
) -> _Process:
    """A process on `venue` and `database`: recovered by the kernel, following the marks;
    with `crash`, it dies at a random await of the exchange or the store."""
    wire = _Dies(rng.randrange(5, 120), after=rng.random() < 0.5) if crash else None
    store = database.store if wire is None else cast(Store, tripped_store(database.store, wire))
    exchange = None if wire is None else cast(Exchange, tripped_exchange(venue.exchange, wire))
    app = build_app(venue, store, settings=SETTINGS_FAST, exchange=exchange)
    kernel = Kernel(app.parts)
    with contextlib.suppress(Crash):
        await app.run(kernel.start(loops=False))
    if kernel._services is not None:
        app = attrs.evolve(app, services=kernel.services)
    follower = asyncio.create_task(follow_marks(app, ["BTCUSDT"]))
    return _Process(app=app, follower=follower, wire=wire)


async def _step(rng: random.Random, app: App, step: int, story: list[str]) -> None:
    venue, symbol = app.venue, "BTCUSDT"
    what = rng.randrange(11)
    if what <= 3:
        mark = venue.mark(symbol) * Decimal(str(1 + rng.uniform(-0.006, 0.012)))
        await venue.set_mark(symbol, mark.quantize(Decimal("0.1")))
        story.append(f"{step}: mark {mark:.1f}")
        if rng.random() < 0.3:  # a person acts while the move it caused is in flight
            await pass_time(app, rng.uniform(0, 0.2))
            story.append(f"{step}: meanwhile, person {await _person(rng, app, symbol)}")
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
        fired = len(venue.engine.faults.fired)
        await app.run(app.guard.check())
        story.append(f"{step}: guard")
        quiet = not venue.engine.faults.pending and len(venue.engine.faults.fired) == fired
        if quiet and venue.position(symbol) is not None:
            assert venue.stops(symbol), "\n".join(story)  # never bare after a pass


async def _schedule(profile: str, seed: int, open_database: Opener, *, crashes: bool) -> None:
    rng = random.Random(f"{profile}-{seed}-{crashes}")
    venue = (FakeVenue.bybit if profile == "bybit" else FakeVenue.binance)(latency=ROUND_TRIP)
    database = await open_database()
    symbol = "BTCUSDT"
    story: list[str] = []
    process = await _start(venue, database, rng, crash=False)
    try:
        result = await process.app.open(symbol, Side.LONG, QTY)
        assert result.opened and result.position is not None
        await process.app.trailing.start(result.position)
        if crashes:
            process.follower.cancel()
            process = await _start(venue, database, rng, crash=True)
        levels: list[Decimal] = []
        for step in range(STEPS):
            with contextlib.suppress(Crash):
                await _step(rng, process.app, step, story)
                await pass_time(process.app, rng.uniform(0, 3))
            if process.wire is not None and process.wire.fired:
                story.append(f"{step}: crash at await {process.wire.at}, restart")
                process.follower.cancel()
                process = await _start(venue, database, rng, crash=rng.random() < 0.5)
            journaled = await database.store.positions.get(result.position.id)
            alive = journaled is not None and journaled.state.is_open_on_venue
            if alive and journaled is not None and journaled.stop_price is not None:
                levels.append(journaled.stop_price)
            if venue.position(symbol) is None:
                story.append(f"{step}: flat")
                break
        # the bot's level never loosens while the position lives (a long: never lower)
        assert levels == sorted(levels), "\n".join(story)
        venue.engine.faults.clear()
        process.follower.cancel()
        with contextlib.suppress(Crash):  # one instance at a time: the old one stops first
            await process.app.run(process.app.trailing.drain())
        process = await _start(venue, database, rng, crash=False)  # a clean restart
        app = process.app
        await pass_time(app, 5)
        await app.run(app.sync.sync())
        await app.run(app.guard.check())
        await app.run(app.zombies.sweep())
        await app.run(app.sync.sync())
        assert stop_problems(venue) == [], "\n".join(story)
        assert await journal_problems(venue, database.store) == [], "\n".join(story)
        assert await database.store.operations.in_flight() == [], "\n".join(story)
        assert entries_sent(venue, symbol) <= Decimal(QTY), "\n".join(story)
    finally:
        process.follower.cancel()
        await database.close()


@pytest.mark.parametrize("seed", range(SEEDS))
@pytest.mark.parametrize("profile", ["binance", "bybit"])
async def test_random_interleavings_keep_the_position_protected(
    profile: str, seed: int, open_database: Opener
) -> None:
    await _schedule(profile, seed, open_database, crashes=False)


@pytest.mark.parametrize("seed", range(SEEDS))
@pytest.mark.parametrize("profile", ["binance", "bybit"])
async def test_random_interleavings_with_crashes_recover_protected(
    profile: str, seed: int, open_database: Opener
) -> None:
    await _schedule(profile, seed, open_database, crashes=True)
