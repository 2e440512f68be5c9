"""Price paths: where the mark goes, and a player that feeds it to the engine on the clock.

A path is a lazy sequence of (time, mark). `ListPath` replays given points; `RandomWalk` is a
seeded walk with occasional jumps (gaps through stops), so every run with the same seed sees
the same prices. `PathPlayer` schedules each point on a clock with `call_at` (the virtual
clock in tests), so advancing the clock delivers the ticks and fires the stops.
"""

import random
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Protocol

from tradecore.adapters.clock import TimerHandle
from tradecore.adapters.paper.engine import VenueEngine


class Scheduler(Protocol):
    def now(self) -> datetime: ...

    def call_at(self, when: datetime, callback: Callable[[], None]) -> TimerHandle: ...


class PricePath(Protocol):
    def points(self, start: datetime) -> Iterator[tuple[datetime, Decimal]]:
        """(time, mark) in time order, beginning at or after `start`."""
        ...


class ListPath:
    """Given points; a time is a datetime or seconds after the start."""

    def __init__(self, points: Iterable[tuple[datetime | float, Decimal | str | int]]) -> None:
        self._points = [(at, Decimal(mark)) for at, mark in points]

    def points(self, start: datetime) -> Iterator[tuple[datetime, Decimal]]:
        resolved = [
            (at if isinstance(at, datetime) else start + timedelta(seconds=at), mark)
            for at, mark in self._points
        ]
        return iter(sorted(resolved, key=lambda point: point[0]))


class RandomWalk:
    """A seeded random walk on the tick grid, one point every `interval` seconds.

    Each step moves by a normal draw of `volatility` (a fraction of the price); with
    probability `jump_probability` it also jumps by `jump_size` up or down.
    """

    def __init__(
        self,
        *,
        start: Decimal | str,
        tick: Decimal | str,
        seed: int,
        interval: float = 1.0,
        volatility: float = 0.001,
        jump_probability: float = 0.0,
        jump_size: float = 0.05,
        steps: int | None = None,
    ) -> None:
        self._start = Decimal(start)
        self._tick = Decimal(tick)
        self._seed = seed
        self._interval = interval
        self._volatility = volatility
        self._jump_probability = jump_probability
        self._jump_size = jump_size
        self._steps = steps

    def points(self, start: datetime) -> Iterator[tuple[datetime, Decimal]]:
        rng = random.Random(self._seed)
        price = self._start
        step = 0
        while self._steps is None or step < self._steps:
            step += 1
            move = rng.gauss(0.0, self._volatility)
            if self._jump_probability and rng.random() < self._jump_probability:
                move += self._jump_size if rng.random() < 0.5 else -self._jump_size
            price = self._on_grid(price * (1 + Decimal(repr(round(move, 12)))))
            yield start + timedelta(seconds=self._interval * step), price

    def _on_grid(self, price: Decimal) -> Decimal:
        units = (price / self._tick).quantize(Decimal(1), rounding=ROUND_HALF_EVEN)
        return max(units, Decimal(1)) * self._tick


class PathPlayer:
    """Feeds paths into an engine on a clock, one scheduled timer per symbol at a time."""

    def __init__(
        self, engine: VenueEngine, clock: Scheduler, paths: Mapping[str, PricePath]
    ) -> None:
        self._engine = engine
        self._clock = clock
        self._paths = dict(paths)
        self._timers: dict[str, TimerHandle] = {}

    def start(self) -> None:
        start = self._clock.now()
        for symbol, path in self._paths.items():
            self._schedule(symbol, path.points(start))

    def stop(self) -> None:
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()

    def _schedule(self, symbol: str, points: Iterator[tuple[datetime, Decimal]]) -> None:
        point = next(points, None)
        if point is None:
            self._timers.pop(symbol, None)
            return
        at, mark = point

        def play() -> None:
            self._engine.set_mark(symbol, mark)
            self._schedule(symbol, points)

        self._timers[symbol] = self._clock.call_at(at, play)
