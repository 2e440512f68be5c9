"""`python -m runner trade` as its own process, on the simulated venue instead of ccxt's.

    python -m tests.scenario.trading_process DATABASE PORT WAVE_IN LATENCY [MARKETS_DOWN]

The real entry point (`runner.__main__.main`: configuration, logging, signal handling, exit
codes) with two seams replaced, as the container's docs allow: the venue is a `FakeVenue`
whose round trips take LATENCY seconds of wall time, and the wall clock is shifted so that a
wave's check falls WAVE_IN seconds after start (with five signals waiting for it), so a test
can signal the process while that wave's opens are in flight. A start-up slower than that
does not miss the check: the clock waits a second before it for the bot (`ShiftedClock`).
MARKETS_DOWN: the venue answers that many requests for its markets with a 5xx first
(unreachable at start-up).
"""

import json
import sys
from datetime import datetime, timedelta
from pathlib import Path

from dependency_injector import providers

import runner.trade
from runner.__main__ import main
from tradecore.adapters.clock import SystemClock
from tradecore.domain.waves import next_check_after
from tradecore.testing import FakeVenue, Fault, Op
from tradecore.wiring.container import Container, SignalSpec

HOLD = timedelta(seconds=1)
SYMBOLS = ("BTCUSDT", "ETHUSDT", "SOLUSDT", "1000PEPEUSDT", "BTCUSDT")


class ShiftedClock(SystemClock):
    """The wall clock moved by an offset so that `check` comes `wave_in` seconds after start;
    sleeps last as long as on the wall.

    However long start-up takes (many seconds on a loaded machine), the check is not missed:
    should the clock reach one second before it while the bot is still starting, it stands
    still there until the wave loop sleeps towards the check (the bot is up), and moves with
    the wall from then on."""

    def __init__(self, check: datetime, wave_in: timedelta) -> None:
        self._check = check
        self._hold: datetime | None = check - min(wave_in, HOLD)
        self._offset = check - wave_in - super().now()

    def now(self) -> datetime:
        shifted = super().now() + self._offset
        return shifted if self._hold is None else min(shifted, self._hold)

    async def sleep(self, seconds: float) -> None:
        until = self.now() + timedelta(seconds=seconds)
        if self._hold is not None and abs(until - self._check) < timedelta(milliseconds=1):
            self._offset = self.now() - super().now()  # the wave loop waits: time moves on
            self._hold = None
        await super().sleep(seconds)


def write_signals(path: Path, wave: datetime) -> None:
    lines = [
        {
            "id": f"lifecycle-{number}",
            "symbol": symbol,
            "action": "BUY" if number % 2 else "SELL",
            "exchange": "binance",
            "score_week": 50,
            "score_month": 50,
            "timestamp": wave.isoformat(),
            "created_at": (wave + timedelta(minutes=3, seconds=number)).isoformat(),
        }
        for number, symbol in enumerate(SYMBOLS)
    ]
    path.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")


def run(database: Path, port: int, wave_in: float, latency: float, markets_down: int = 0) -> int:
    check = next_check_after(SystemClock().now())
    clock = ShiftedClock(check, timedelta(seconds=wave_in))
    write_signals(database.with_suffix(".signals.jsonl"), check - timedelta(minutes=20))
    venue = FakeVenue.binance(clock=clock, latency=latency)  # type: ignore[arg-type]
    if markets_down:
        venue.inject(Fault.server_error(Op.FETCH_MARKETS, times=markets_down))
    container = Container()
    container.venue.override(providers.Object(venue.exchange))
    container.signal_spec.override(
        SignalSpec(kind="replay", path=database.with_suffix(".signals.jsonl"))
    )
    runner.trade.Container = lambda: container  # type: ignore[assignment,misc]
    runner.trade.SystemClock = lambda: clock  # type: ignore[assignment,misc]
    env = {
        "TRADECORE_BINANCE_API_KEY": "test",
        "TRADECORE_BINANCE_API_SECRET": "test",
        "TRADECORE_LOGGING__FILE": "",
        "TRADECORE_LOCK_DIR": str(database.parent / "locks"),
    }
    return main(
        ["trade", "--database-url", f"sqlite:///{database}", "--health-port", str(port)], env=env
    )


if __name__ == "__main__":
    database, port, wave_in, latency, *down = sys.argv[1:]
    sys.exit(run(Path(database), int(port), float(wave_in), float(latency), int(*down or [0])))
