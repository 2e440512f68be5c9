"""Reaction: a batch of marks -> each trailing stop's move handed to the stop keeper, with the
real stores (issue 12, item 8).

500 active trailing positions, one per symbol (the keeper's rule), journaled in a real
database: a SQLite file (WAL, synchronous=FULL, as the bot runs it) and a throwaway PostgreSQL
server started from the machine's binaries with its durable settings (fsync on). Each mark
batch raises every symbol's mark, as Binance's all-market mark stream does once a second, so
all 500 stops want to move. The figure is the wall time from the batch's arrival (before its
first tick enters `TrailingService.on_tick`) to each resulting stop command reaching the stop
keeper (`move_trailing`): 500 samples per batch. The trailing service and the store stack
are the kernel's own (`ResilientStore` over the database's store, the real `Recorder`); the
keeper is a stand-in that notes the moment each command reaches it, so the venue's side is
not what is measured. Between batches the journal is let catch up (a second passes between
two batches on the venue). Bar: p99 <= 1 ms.

    .venv/bin/python benchmarks/reaction.py [--batches 40] [--positions 500] [--only sqlite]
"""

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import attrs

from tradecore.adapters.clock import SequentialIds
from tradecore.adapters.database import Database, connect_store
from tradecore.app.recorder import Recorder
from tradecore.app.resilient_store import ResilientStore
from tradecore.app.stop_keeper import StopResult
from tradecore.app.trailing import TrailingService
from tradecore.domain.events import Event
from tradecore.domain.model import Side, Venue
from tradecore.domain.orders import MarkTick
from tradecore.domain.positions import Position, PositionState, StopOwner
from tradecore.domain.precision import MarketRules
from tradecore.domain.trailing import TrailingParams

START = datetime(2026, 1, 1, tzinfo=UTC)


class Keeper:
    """Notes when each stop command reaches it; the stop then stands where it was asked."""

    def __init__(self, positions: dict[str, Position]) -> None:
        self.positions = positions
        self.reached: list[float] = []

    async def move_trailing(
        self, position_id: str, symbol: str, price: Decimal, *, reason: str
    ) -> StopResult:
        self.reached.append(time.perf_counter())
        moved = attrs.evolve(self.positions[position_id], stop_price=price)
        self.positions[position_id] = moved
        return StopResult(ok=True, position=moved)


class Dropped:
    """The event sink: the journal's `emit` (0.2 µs, docs/performance.md) is not measured."""

    def emit(self, event: Event) -> None: ...

    async def flush(self) -> None: ...

    async def close(self) -> None: ...


class Clock:
    def __init__(self) -> None:
        self.at = START

    def now(self) -> datetime:
        return self.at

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


def rules_for(count: int) -> dict[str, MarketRules]:
    return {
        f"S{i:03d}USDT": MarketRules(
            symbol=f"S{i:03d}USDT",
            tick_size="0.01",
            step_size="1",
            min_quantity="1",
            min_notional="5",
            max_leverage="50",
        )
        for i in range(count)
    }


async def run(database: Database, *, positions: int, batches: int) -> list[float]:
    rules = rules_for(positions)
    store = ResilientStore(database.store)  # as the kernel wires it
    clock = Clock()
    book: dict[str, Position] = {}
    for n, symbol in enumerate(rules):
        position = Position(
            id=f"00000000-0000-4000-8000-{n:012d}",
            venue=Venue.BINANCE,
            symbol=symbol,
            side=Side.LONG,
            state=PositionState.ACTIVE,
            requested_quantity=Decimal(1),
            quantity=Decimal(1),
            entry_price=Decimal(100),
            stop_price=Decimal(97),
            stop_owner=StopOwner.PROTECTION,
            created_at=START,
            opened_at=START,
        )
        await store.positions.add(position)
        book[position.id] = position
    keeper = Keeper(book)
    recorder = Recorder(Dropped(), clock, SequentialIds("bench"))
    params = TrailingParams(rate_limit_seconds=0, min_improvement_percent=Decimal("0.01"))
    service = TrailingService(store, keeper, recorder, clock, params, rules)  # type: ignore[arg-type]
    for position in book.values():
        await service.start(position)
    marks = {symbol: Decimal(102) for symbol in rules}  # +2 %: every trailing stop is active
    samples: list[float] = []
    ticks_took: list[float] = []  # the batch through on_tick, before any mover ran
    for batch in range(batches + 1):
        clock.at = START + timedelta(seconds=batch + 1)
        ticks = [
            MarkTick(venue=Venue.BINANCE, symbol=symbol, mark=mark, at=clock.at)
            for symbol, mark in marks.items()
        ]
        keeper.reached.clear()
        arrived = time.perf_counter()
        for tick in ticks:  # what the kernel's mark loop does with a batch
            await service.on_tick(tick)
        ticked = time.perf_counter()
        while len(keeper.reached) < positions:
            await asyncio.sleep(0)
        if batch:  # the first batch activates every stop: a warm-up
            ticks_took.append(ticked - arrived)
        if batch:  # the first batch activates every stop: a warm-up
            samples.extend(at - arrived for at in keeper.reached)
        await service.flush()  # the journal catches up before the next second's batch
        for symbol in marks:
            marks[symbol] += Decimal("0.5")  # each batch improves every stop by ~0.5 %
    saved = await database.store.trailing.all()
    assert len(saved) == positions
    assert all(s.stop_price == book[s.position_id].stop_price for s in saved)
    per_tick = statistics.median(ticks_took) / positions
    print(f"  on_tick: {per_tick * 1e6:.1f} µs per mark (median batch), the domain's step included")
    return samples


def report(name: str, samples: list[float], *, positions: int, batches: int) -> None:
    samples.sort()
    p50 = statistics.median(samples)
    p99 = samples[int(len(samples) * 0.99)]
    verdict = "met" if p99 <= 1e-3 else "MISSED"
    print(
        f"{name}: {positions} positions, {batches} batches of {positions} marks, "
        f"{len(samples)} stop commands: batch -> stop command p50 {p50 * 1e3:.2f} ms, "
        f"p99 {p99 * 1e3:.2f} ms, max {samples[-1] * 1e3:.2f} ms (bar p99 <= 1 ms: {verdict})"
    )


async def sqlite(positions: int, batches: int) -> None:
    with tempfile.TemporaryDirectory() as directory:
        database = await connect_store(f"sqlite:///{Path(directory) / 'reaction.db'}")
        try:
            samples = await run(database, positions=positions, batches=batches)
        finally:
            await database.close()
    report("SQLite (file, WAL, synchronous=FULL)", samples, positions=positions, batches=batches)


async def postgres(positions: int, batches: int) -> None:
    from tradecore.testing.pgserver import PostgresServer, PostgresUnavailable

    try:
        server = PostgresServer.start(durable=True)
    except PostgresUnavailable as exc:
        print(f"PostgreSQL: skipped ({exc})")
        return
    try:
        database = await connect_store(server.create_database("reaction"))
        try:
            samples = await run(database, positions=positions, batches=batches)
        finally:
            await database.close()
    finally:
        server.close()
    report("PostgreSQL (throwaway, fsync on)", samples, positions=positions, batches=batches)


async def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--positions", type=int, default=500)
    parser.add_argument("--batches", type=int, default=40)
    parser.add_argument("--only", choices=("sqlite", "postgres"))
    args = parser.parse_args(argv)
    if args.only in (None, "sqlite"):
        await sqlite(args.positions, args.batches)
    if args.only in (None, "postgres"):
        await postgres(args.positions, args.batches)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
