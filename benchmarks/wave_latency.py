"""Wave latency: 100 signals -> 5 protected positions, with a venue round trip of 50 ms.

Virtual time from the start of the wave's processing (its signals already in) until the
wave's five positions are open and protected by their stops, on the simulated Binance venue
with 50 ms of virtual latency per request, against an in-memory SQLite journal. Side by side:
the same five opens one after another, as the earlier bot did. Bar: <= 3 round trips + 50 ms.

    .venv/bin/python benchmarks/wave_latency.py
"""

import asyncio
import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from tradecore.adapters.clock import RandomIds, VirtualClock
from tradecore.adapters.sqlite.database import SqliteDatabase
from tradecore.adapters.virtual_time import CountedStore, ThreadWork, run_driven
from tradecore.app.kernel import KernelParts, build_services
from tradecore.app.open_position import OpenRequest
from tradecore.domain.model import Side, Venue
from tradecore.domain.positions import PositionState
from tradecore.domain.precision import MarketRules
from tradecore.domain.signals import Signal
from tradecore.testing import EventLog, FakeVenue, FreeLock

ROUND_TRIP = 0.05
WAVE = datetime(2026, 1, 1, 8, 45, tzinfo=UTC)
SYMBOLS = [f"S{i:02d}USDT" for i in range(30)]


def markets() -> list[MarketRules]:
    return [
        MarketRules(
            symbol=s,
            tick_size="0.01",
            step_size="0.1",
            min_quantity="0.1",
            min_notional="5",
            max_leverage="50",
        )
        for s in SYMBOLS
    ]


def signals(count: int = 100) -> list[Signal]:
    rng = random.Random(3)
    return [
        Signal(
            id=f"s{i}",
            symbol=rng.choice(SYMBOLS),
            venue=Venue.BINANCE,
            side=Side.LONG if i % 2 else Side.SHORT,
            score_week=Decimal(rng.randrange(100)),
            score_month=Decimal(rng.randrange(100)),
            wave=WAVE,
            created_at=WAVE + timedelta(seconds=i),
        )
        for i in range(count)
    ]


async def setup() -> tuple[FakeVenue, ThreadWork, KernelParts, SqliteDatabase]:
    clock = VirtualClock(WAVE + timedelta(minutes=20))
    venue = FakeVenue.binance(
        markets=markets(),
        marks={s: "100" for s in SYMBOLS},
        latency=ROUND_TRIP,
        balance="100000",
        clock=clock,
    )
    database = await SqliteDatabase.connect(":memory:")
    work = ThreadWork()
    parts = KernelParts(
        exchange=venue.exchange,
        store=CountedStore(database.store, work),
        events=EventLog(),
        clock=clock,
        ids=RandomIds(),
        lock=FreeLock(),
        account="bench",
    )
    return venue, work, parts, database


async def concurrent() -> float:
    venue, work, parts, database = await setup()
    services = build_services(parts, venue.engine.markets)
    for signal in signals():
        services.inbox.put(signal, at=venue.clock.now())
    start = venue.clock.now()
    report = await run_driven(venue.clock, work, services.waves.process(WAVE))
    elapsed = (venue.clock.now() - start).total_seconds()
    protected = [
        p
        for p in await database.store.positions.open_positions()
        if p.state is PositionState.ACTIVE and p.stop_price is not None
    ]
    assert report.opened == 5 and len(protected) == 5, (report, len(protected))
    await database.close()
    return elapsed


async def one_after_another() -> float:
    venue, work, parts, database = await setup()
    services = build_services(parts, venue.engine.markets)
    chosen = sorted({s.symbol for s in signals()})[:5]
    start = venue.clock.now()
    for symbol in chosen:
        request = OpenRequest(
            symbol=symbol, side=Side.LONG, quantity=Decimal(2), rules=venue.rules(symbol)
        )
        result = await run_driven(venue.clock, work, services.opener.open(request))
        assert result.opened
    elapsed = (venue.clock.now() - start).total_seconds()
    await database.close()
    return elapsed


async def main() -> None:
    ours = await concurrent()
    serial = await one_after_another()
    bar = 3 * ROUND_TRIP + 0.05
    print(f"venue round trip: {ROUND_TRIP * 1000:.0f} ms (virtual)")
    print(
        f"wave of 100 signals -> 5 protected positions: {ours * 1000:.0f} ms "
        f"({ours / ROUND_TRIP:.1f} round trips; bar {bar * 1000:.0f} ms: "
        f"{'met' if ours <= bar else 'MISSED'})"
    )
    print(
        f"the same 5 opens one after another:           {serial * 1000:.0f} ms "
        f"({serial / ROUND_TRIP:.1f} round trips)"
    )


if __name__ == "__main__":
    asyncio.run(main())
