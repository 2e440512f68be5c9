"""Simulated venue tick throughput: 100 symbols, 1,000 resting stops (bar: >= 100,000 ticks/s).

Prints ticks per second for the engine's tick path (`VenueEngine.set_mark`) with stops resting
on both sides of every symbol, the same with 100x more stops (a tick is O(log n) in the stops,
so the rate should barely move), with a mark-price subscriber attached, and end to end through
the virtual clock and a price-path player.

    .venv/bin/python benchmarks/venue.py
"""

import asyncio
import random
import time
from decimal import Decimal

import attrs

from tradecore.adapters.clock import VirtualClock
from tradecore.adapters.paper import BINANCE, ListPath, PathPlayer, VenueEngine
from tradecore.domain.model import OrderSide
from tradecore.domain.precision import MarketRules

SYMBOLS = 100
TICKS = 300_000
START = Decimal("100.00")


def build(stops: int) -> tuple[VenueEngine, VirtualClock, list[str]]:
    clock = VirtualClock()
    symbols = [f"S{n:03d}USDT" for n in range(SYMBOLS)]
    rules = [
        MarketRules(
            symbol=s,
            tick_size=Decimal("0.01"),
            step_size=Decimal("0.001"),
            min_quantity=Decimal("0.001"),
            min_notional=Decimal(5),
            max_leverage=Decimal(20),
        )
        for s in symbols
    ]
    # the cap is not what is measured
    profile = attrs.evolve(
        BINANCE, capabilities=attrs.evolve(BINANCE.capabilities, max_conditional_orders=None)
    )
    engine = VenueEngine(
        profile,
        now=clock.now,
        markets=rules,
        marks=dict.fromkeys(symbols, START),
        balance=Decimal(10**9),
        liquidations=False,
    )
    per_symbol = stops // SYMBOLS
    for symbol in symbols:
        for k in range(per_symbol):
            # half below the mark (sell stops), half above (buy stops), never crossed
            offset = Decimal(10 + k % 40) + Decimal(k) / 100
            if k % 2:
                engine.place_stop(symbol, OrderSide.SELL, Decimal("0.01"), START - offset)
            else:
                engine.place_stop(symbol, OrderSide.BUY, Decimal("0.01"), START + offset)
    return engine, clock, symbols


def ticks(symbols: list[str], count: int) -> list[tuple[str, Decimal]]:
    rng = random.Random(42)
    marks = [START + Decimal(rng.randint(-500, 500)) / 100 for _ in range(1000)]
    return [(symbols[i % len(symbols)], marks[i % len(marks)]) for i in range(count)]


def engine_rate(stops: int, *, subscriber: bool = False) -> float:
    engine, _, symbols = build(stops)
    if subscriber:
        received: list[object] = []
        engine.subscribe(symbols, lambda s, m, t: received.append(m))
    feed = ticks(symbols, TICKS)
    set_mark = engine.set_mark
    began = time.perf_counter()
    for symbol, mark in feed:
        set_mark(symbol, mark)
    elapsed = time.perf_counter() - began
    assert engine.books.orders and sum(1 for _ in engine.open_orders()) == stops
    return TICKS / elapsed


def fired_rate(count: int) -> float:
    """Stops fired and filled per second: one tick gaps through `count` stops of a long."""
    engine, _, symbols = build(0)
    symbol = symbols[0]
    engine.place_market(symbol, OrderSide.BUY, Decimal(count) / 100)
    for k in range(count):
        engine.place_stop(symbol, OrderSide.SELL, Decimal("0.01"), START - 1 - Decimal(k) / 100)
    began = time.perf_counter()
    engine.set_mark(symbol, START / 4)
    elapsed = time.perf_counter() - began
    assert engine.position(symbol) is None
    return count / elapsed


async def clock_rate(stops: int) -> float:
    engine, clock, symbols = build(stops)
    count = TICKS // 3
    per_symbol = count // SYMBOLS
    feed = ticks(symbols, count)
    paths = {
        s: ListPath([(i + 1, feed[i * SYMBOLS + n][1]) for i in range(per_symbol)])
        for n, s in enumerate(symbols)
    }
    player = PathPlayer(engine, clock, paths)
    player.start()
    began = time.perf_counter()
    await clock.advance(per_symbol + 1)
    elapsed = time.perf_counter() - began
    return per_symbol * SYMBOLS / elapsed


def main() -> None:
    print(f"symbols={SYMBOLS} ticks={TICKS}")
    print(f"engine tick path, 1,000 resting stops:        {engine_rate(1_000):>10,.0f} ticks/s")
    print(f"engine tick path, 100,000 resting stops:      {engine_rate(100_000):>10,.0f} ticks/s")
    print(
        "engine tick path, 1,000 stops + subscriber:   "
        f"{engine_rate(1_000, subscriber=True):>10,.0f} ticks/s"
    )
    print(f"stops fired and filled (one gap through 5,000): {fired_rate(5_000):>8,.0f} stops/s")
    clocked = asyncio.run(clock_rate(1_000))
    print(f"virtual clock + path player, 1,000 stops:     {clocked:>10,.0f} ticks/s")


if __name__ == "__main__":
    main()
