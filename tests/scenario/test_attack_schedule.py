"""Random interleavings: trailing, the guard, sync, zombie and aged passes, people, faults.

A seeded schedule (one seed fixes every choice; ids aside, a run replays) drives one
position through random marks (the trailing service moving its stop in the background),
protection / sync / zombie / aged passes, a person's hands (remove, tighten or loosen the
stop, add a second one, close part or all of it, open or close another symbol — also while
a stop move is in flight), venue faults (see `_fault`) and, in the `_with_crashes_`
variant, crashes at a random await followed by a kernel recovery. The promises checked:

- after every guard pass no fault touched, every position on the venue has a stop;
- the bot's level (the journaled stop) never loosens while the position lives;
- at quiescence one stop per position for its full quantity, the journal agrees with the
  venue, nothing is in flight and nothing was entered twice.

It found (each fixed, with its own test): extra stops and a wrong quantity left beside a
healthy trailing stop (`test_healthy_trailing_extras`), the synchronizer's quantity
correction racing a stop move (`test_quantity_race`), a position opened by hand left bare
by the guard until the next sync (`test_guard_adopts`). `ATTACK_SEEDS=400` hunts longer.
"""

import asyncio
import contextlib
import itertools
import os
import random
from datetime import datetime, timedelta
from decimal import Decimal
from typing import cast

import attrs
import pytest

from tradecore.app.kernel import Kernel
from tradecore.domain.model import OrderSide, Side
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
    kind = rng.randrange(10)
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
    if kind == 5:  # the venue cannot be read for a while
        read = rng.choice([Op.FETCH_POSITIONS, Op.FETCH_OPEN_ORDERS, Op.FETCH_ORDER])
        return Fault.server_error(read, times=rng.randint(1, 4))
    if kind == 6:  # every protective command refused for a while
        return Fault.server_error(op, times=rng.randint(3, 8), acted=False)
    if kind == 7:
        return Fault.rate_limit(op, times=rng.randint(1, 3))
    if kind == 8:  # a refusal, maybe for a while (the conditional-order cap, …)
        reason = rng.choice(
            [
                RejectReason.WOULD_TRIGGER_IMMEDIATELY,
                RejectReason.TOO_MANY_CONDITIONAL_ORDERS,
                RejectReason.STOP_ALREADY_EXISTS,
                RejectReason.REDUCE_ONLY_WOULD_INCREASE,
                RejectReason.NO_POSITION,
            ]
        )
        return Fault.reject(reason, op, times=rng.randint(1, 4))
    reason = rng.choice([RejectReason.DUPLICATE_CLIENT_ID, RejectReason.NOT_MODIFIED])
    return Fault.reject(reason, op)


def _tighter(side: Side, a: Decimal, b: Decimal) -> bool:
    return a > b if side is Side.LONG else a < b


def _stop_level(venue: FakeVenue, symbol: str) -> Decimal | None:
    held = venue.position(symbol)
    if held is None:
        return None
    if held.stop_price is not None:
        return held.stop_price
    levels = [s.trigger_price for s in venue.stops(symbol) if s.trigger_price is not None]
    if not levels:
        return None
    return max(levels) if held.side is Side.LONG else min(levels)


async def _person(rng: random.Random, app: App, symbol: str) -> str:
    venue, exchange = app.venue, app.venue.exchange
    held = venue.position(symbol)
    if held is None:
        return "flat"
    choice = rng.randrange(7)
    if choice == 4:
        long = held.side is Side.LONG
        level = venue.mark(symbol) * Decimal("0.97" if long else "1.03")
        price = level.quantize(Decimal("0.1"))
        venue.manual_stop(symbol, held.side.exit, held.quantity, price)
        return f"added a second stop at {price}"
    if choice == 5 and rng.random() < 0.3:
        venue.manual_close(symbol)
        return "closed the position by hand"
    if choice == 5:
        if venue.position("ETHUSDT") is None:
            venue.manual_order("ETHUSDT", rng.choice(list(OrderSide)), "0.1")
            return "opened ETH by hand"
        venue.manual_close("ETHUSDT")
        return "closed ETH by hand"
    if choice in (0, 1, 2):  # remove, then maybe place another by hand
        level = _stop_level(venue, symbol)
        for stop in venue.stops(symbol):
            if stop.type is OrderType.POSITION_STOP:
                await app.run(exchange.set_position_stop(symbol, None))
            else:
                await app.run(exchange.cancel_order(symbol, stop.order_id))
        if choice == 0 or level is None:
            return "removed the stop"
        long = held.side is Side.LONG
        mark = venue.mark(symbol)
        step = Decimal("0.003") if choice == 1 else Decimal("-0.01")  # tighter / looser
        price = level * (1 + step if long else 1 - step)
        edge = mark * (Decimal("0.998") if long else Decimal("1.002"))  # never at the mark
        price = (min(price, edge) if long else max(price, edge)).quantize(Decimal("0.1"))
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


@attrs.define
class _Process:
    app: App
    follower: asyncio.Task[None]
    wire: Tripwire | None = None


async def _start(
    venue: FakeVenue, database: Database, rng: random.Random, *, crash: bool
) -> _Process:
    """A process on `venue` and `database`: recovered by the kernel, following the marks;
    with `crash`, it dies at a random await of the exchange or the store."""
    wire = Tripwire(rng.randrange(5, 120), after=rng.random() < 0.5) if crash else None
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
    what = rng.randrange(12)
    if what <= 3:
        held = venue.position(symbol)
        drift = 0.003 if held is None or held.side is Side.LONG else -0.003
        mark = venue.mark(symbol) * Decimal(str(1 + drift + rng.uniform(-0.009, 0.009)))
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
    elif what == 11:
        hours = rng.randint(1, 8)
        await pass_time(app, 3600 * hours)
        await app.run(app.aged.check())
        story.append(f"{step}: {hours} h later, aged pass")
    else:
        fired = len(venue.engine.faults.fired)
        await app.run(app.guard.check())
        story.append(f"{step}: guard")
        quiet = not venue.engine.faults.pending and len(venue.engine.faults.fired) == fired
        bare = [
            name
            for name in venue.engine.markets
            if venue.position(name) is not None and not venue.stops(name)
        ]
        assert not (quiet and bare), "\n".join(story)  # never bare after a quiet pass


async def _schedule(profile: str, seed: int, open_database: Opener, *, crashes: bool) -> None:
    rng = random.Random(f"{profile}-{seed}-{crashes}")
    venue = (FakeVenue.bybit if profile == "bybit" else FakeVenue.binance)(latency=ROUND_TRIP)
    database = await open_database()
    symbol = "BTCUSDT"
    story: list[str] = []
    process = await _start(venue, database, rng, crash=False)
    try:
        side = rng.choice([Side.LONG, Side.SHORT])
        story.append(f"open {side.value}")
        result = await process.app.open(symbol, side, QTY)
        assert result.opened and result.position is not None
        await process.app.trailing.start(result.position)
        if crashes:
            process.follower.cancel()
            process = await _start(venue, database, rng, crash=True)
        levels: list[Decimal] = []
        steps: list[tuple[datetime, datetime, bool]] = []  # (from, to, disturbed)
        for step in range(STEPS):
            began, told, fired = venue.clock.now(), len(story), len(venue.engine.faults.fired)
            with contextlib.suppress(Crash):
                await _step(rng, process.app, step, story)
                await pass_time(process.app, rng.uniform(0, 3))
            if process.wire is not None and process.wire.fired:
                story.append(f"{step}: crash at await {process.wire.at}, restart")
                process.follower.cancel()
                process = await _start(venue, database, rng, crash=rng.random() < 0.5)
            disturbed = len(venue.engine.faults.fired) > fired or any(
                "person" in line or "crash" in line for line in story[told:]
            )
            steps.append((began, venue.clock.now(), disturbed))
            journaled = await database.store.positions.get(result.position.id)
            alive = journaled is not None and journaled.state.is_open_on_venue
            if alive and journaled is not None and journaled.stop_price is not None:
                levels.append(journaled.stop_price)
            if venue.position(symbol) is None:
                story.append(f"{step}: flat")
                break
        # a gap longer than a round trip starts only in a step where a person, a fault or a
        # crash did something: the bot itself never takes a position's stop away
        for gap in venue.unprotected_intervals():
            if gap.seconds(venue.clock.now()) <= ROUND_TRIP + 1e-9:
                continue
            margin = timedelta(seconds=ROUND_TRIP)
            during = [d for a, b, d in steps if a <= gap.start <= b + margin]
            assert any(during), f"bare from {gap.start}\n" + "\n".join(story)
        # the bot's level never loosens while the position lives
        loosened = [(a, b) for a, b in itertools.pairwise(levels) if _tighter(side, a, b)]
        assert not loosened, "\n".join(story)
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
