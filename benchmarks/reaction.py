"""Reaction: a mark tick -> the trailing stop's move handed to the stop keeper, in process.

500 trailing positions over 50 symbols (10 each), every one active. Each tick raises one
symbol's mark so all ten of its stops want to move; the figure is the wall time from the
tick entering `TrailingService.on_tick` until the stop keeper has been asked for the last of
those ten moves. The journal and the venue are in-memory fakes, so this is our own code's
cost, not I/O. Bar: p99 <= 1 ms.

    .venv/bin/python benchmarks/reaction.py
"""

import asyncio
import statistics
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import attrs

from tradecore.app.trailing import TrailingService
from tradecore.domain.model import Side, Venue
from tradecore.domain.orders import MarkTick
from tradecore.domain.positions import Position, PositionState
from tradecore.domain.precision import MarketRules
from tradecore.domain.trailing import TrailingParams

POSITIONS, SYMBOLS, TICKS = 500, 50, 4_000
START = datetime(2026, 1, 1, tzinfo=UTC)


class Memory:
    """In-memory positions and trailing states (the parts of the Store the service uses)."""

    def __init__(self) -> None:
        self.saved: dict[str, Any] = {}
        self.items: dict[str, Position] = {}

    async def save(self, state: Any) -> None:
        self.saved[state.position_id] = state

    async def get(self, position_id: str) -> Position | None:
        return self.items.get(position_id)

    async def all(self) -> list[Any]:
        return list(self.saved.values())


class Store:
    def __init__(self) -> None:
        self.trailing = Memory()
        self.positions = self.trailing


class Keeper:
    """Records when each move reaches it; the venue side is not what is measured here."""

    def __init__(self) -> None:
        self.reached: list[float] = []

    async def apply(self, position: Position, price: Decimal, **_: object) -> Any:
        self.reached.append(time.perf_counter())
        return _Ok(attrs.evolve(position, stop_price=price))  # the stop now stands there


class _Ok:
    ok = True

    def __init__(self, position: Position) -> None:
        self.position = position


class Recorder:
    def record(self, *args: object, **kwargs: object) -> None: ...


class Clock:
    def now(self) -> datetime:
        return START

    async def sleep(self, seconds: float) -> None: ...


async def main() -> None:
    rules = {
        f"S{i:02d}USDT": MarketRules(
            symbol=f"S{i:02d}USDT",
            tick_size="0.01",
            step_size="1",
            min_quantity="1",
            min_notional="5",
            max_leverage="50",
        )
        for i in range(SYMBOLS)
    }
    store, keeper = Store(), Keeper()
    params = TrailingParams(rate_limit_seconds=0, min_improvement_percent=Decimal("0.01"))
    service = TrailingService(store, keeper, Recorder(), Clock(), params, rules)  # type: ignore[arg-type]
    symbols = list(rules)
    for n in range(POSITIONS):
        position = Position(
            id=f"p{n}",
            venue=Venue.BINANCE,
            symbol=symbols[n % SYMBOLS],
            side=Side.LONG,
            state=PositionState.ACTIVE,
            requested_quantity=Decimal(1),
            quantity=Decimal(1),
            entry_price=Decimal(100),
            stop_price=Decimal(97),
            created_at=START,
            opened_at=START,
        )
        store.positions.items[position.id] = position
        await service.start(position)
    marks = {s: Decimal(102) for s in symbols}  # +2 %: every trailing stop is active
    for symbol in symbols:
        await service.on_tick(
            MarkTick(venue=Venue.BINANCE, symbol=symbol, mark=marks[symbol], at=START)
        )
    await asyncio.sleep(0)
    samples: list[float] = []
    for n in range(TICKS):
        symbol = symbols[n % SYMBOLS]
        marks[symbol] += Decimal("0.5")  # each tick improves the stop by ~0.5 %
        tick = MarkTick(
            venue=Venue.BINANCE, symbol=symbol, mark=marks[symbol], at=START + timedelta(seconds=n)
        )
        keeper.reached.clear()
        began = time.perf_counter()
        await service.on_tick(tick)
        while len(keeper.reached) < POSITIONS // SYMBOLS:
            await asyncio.sleep(0)
        samples.append(keeper.reached[-1] - began)
    samples.sort()
    p50 = statistics.median(samples)
    p99 = samples[int(len(samples) * 0.99)]
    print(
        f"{POSITIONS} trailing positions over {SYMBOLS} symbols, {TICKS} ticks, "
        f"each moving {POSITIONS // SYMBOLS} stops"
    )
    print(
        f"tick -> last stop move handed to the keeper: p50 {p50 * 1e6:.0f} us, "
        f"p99 {p99 * 1e6:.0f} us, max {samples[-1] * 1e6:.0f} us "
        f"(bar p99 <= 1000 us: {'met' if p99 <= 1e-3 else 'MISSED'})"
    )


if __name__ == "__main__":
    asyncio.run(main())
