"""Mark ticks per second through the trailing-stop transition, and allocations per unchanged tick.

1,000 open positions (half long, half short), entries spread +-2 % around the start price so
the book holds inactive, waiting (breakeven at 0.8 %) and active trailing stops (a second
run opens every position 2 % in profit, so every stop trails from the start); each mark
follows a random walk of 0.05 % per second, rounded to the tick; virtual time moves one
second per round of 1,000 ticks. Positions whose stop triggers are re-opened at the mark
between rounds (outside the timed loop). Run:

    .venv/bin/python benchmarks/trailing.py
"""

import gc
import random
import sys
import time
import tracemalloc
from collections import Counter
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal

from tradecore.domain.model import Side, Venue
from tradecore.domain.trailing import (
    EMPTY,
    TrailingParams,
    TrailingPhase,
    TrailingState,
    on_mark,
    start_trailing,
)

POSITIONS = 1_000
ROUNDS = 600
TICK = Decimal("0.01")
START = Decimal("100.00")
SIGMA = 0.0005  # per-second volatility of the mark
PARAMS = TrailingParams(breakeven_percent=Decimal("0.8"))
T0 = datetime(2026, 11, 21, tzinfo=UTC)


def open_position(
    index: int, mark: Decimal, at: datetime, rng: random.Random, *, in_profit: bool = False
) -> TrailingState:
    side = Side.LONG if index % 2 == 0 else Side.SHORT
    offset = -side.sign * 0.02 if in_profit else rng.uniform(-0.02, 0.02)
    entry = (mark * Decimal(1 + offset)).quantize(TICK)
    stop = entry * (Decimal("0.97") if side is Side.LONG else Decimal("1.03"))
    return start_trailing(
        position_id=f"p{index}",
        venue=Venue.BINANCE,
        symbol="BTCUSDT",
        side=side,
        entry_price=entry,
        quantity=Decimal(1),
        opened_at=at,
        stop_price=stop.quantize(TICK),
        params=PARAMS,
    )


def mark_paths(rng: random.Random) -> list[list[Decimal]]:
    """ROUNDS rows of POSITIONS marks: each position's own random walk, on the tick."""
    walks = [float(START)] * POSITIONS
    rows = []
    for _ in range(ROUNDS):
        walks = [w * (1 + rng.gauss(0, SIGMA)) for w in walks]
        rows.append([Decimal(repr(w)).quantize(TICK, rounding=ROUND_HALF_EVEN) for w in walks])
    return rows


def run(
    states: list[TrailingState], rows: list[list[Decimal]], rng: random.Random, in_profit: bool
) -> None:
    times = [T0 + timedelta(seconds=r) for r in range(ROUNDS)]
    unchanged = commands = reopened = 0
    elapsed = 0.0
    for r, row in enumerate(rows):
        now = times[r]
        began = time.perf_counter()
        for i in range(POSITIONS):
            state = states[i]
            new, out = on_mark(state, row[i], now, PARAMS, TICK)
            if new is state:
                unchanged += 1
            else:
                states[i] = new
            commands += len(out)
        elapsed += time.perf_counter() - began
        for i in range(POSITIONS):
            if states[i].phase is TrailingPhase.TRIGGERED:
                states[i] = open_position(i, row[i], now, rng, in_profit=in_profit)
                reopened += 1
    ticks = ROUNDS * POSITIONS
    print(f"positions: {POSITIONS}, ticks: {ticks:,}, rounds (virtual seconds): {ROUNDS}")
    print(f"ticks per second (one core): {ticks / elapsed:,.0f}")
    print(f"mean time per tick: {elapsed / ticks * 1e6:.2f} us")
    print(f"unchanged ticks: {unchanged / ticks:.1%}, commands+notes: {commands:,}")
    print(f"stops triggered and positions re-opened: {reopened}")
    phases = Counter(s.phase.value for s in states)
    print("phases at the end: " + ", ".join(f"{k} {v}" for k, v in sorted(phases.items())))


def allocations_per_unchanged_tick(states: list[TrailingState], mark_row: list[Decimal]) -> None:
    now = T0 + timedelta(seconds=ROUNDS)
    quiet = []
    for state, mark in zip(states, mark_row, strict=True):
        new, out = on_mark(state, mark, now, PARAMS, TICK)
        if new is state and out is EMPTY:
            quiet.append((state, mark))
    repeats = 200
    gc.collect()
    gc.disable()
    tracemalloc.start()
    tracemalloc.reset_peak()
    base_current, _ = tracemalloc.get_traced_memory()
    blocks_before = sys.getallocatedblocks()
    for _ in range(repeats):
        for state, mark in quiet:
            on_mark(state, mark, now, PARAMS, TICK)
    blocks_after = sys.getallocatedblocks()
    current, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    gc.enable()
    ticks = repeats * len(quiet)
    print(f"unchanged ticks measured: {ticks:,} ({len(quiet)} positions x {repeats})")
    print(f"heap blocks still allocated afterwards: {blocks_after - blocks_before}")
    print(
        f"traced bytes: {current - base_current} kept, "
        f"peak {peak - base_current} over the whole loop "
        f"({(peak - base_current) / ticks:.4f} bytes per tick)"
    )


def main() -> None:
    print(f"python {sys.version.split()[0]}")
    for title, in_profit in (("mixed book", False), ("every position 2 % in profit", True)):
        rng = random.Random(20261121)
        states = [open_position(i, START, T0, rng, in_profit=in_profit) for i in range(POSITIONS)]
        rows = mark_paths(rng)
        print(f"\n== {title}")
        run(states, rows, rng, in_profit)
        allocations_per_unchanged_tick(states, rows[-1])


if __name__ == "__main__":
    main()
