"""`python -m runner trade` as its own process, on the simulated venue instead of ccxt's.

    python -m tests.scenario.trading_process DATABASE PORT WAVE_IN LATENCY [MARKETS_DOWN]

The real entry point (`runner.__main__.main`: configuration, logging, signal handling, exit
codes) with two seams replaced, as the container's docs allow: the venue is a `FakeVenue`
whose round trips take LATENCY seconds of wall time, and the wall clock is shifted so that a
wave's check falls WAVE_IN seconds after start (with five signals waiting for it), so a test
can signal the process while that wave's opens are in flight. MARKETS_DOWN: the venue
answers that many requests for its markets with a 5xx first (unreachable at start-up).
"""

import json
import sys
from datetime import datetime, timedelta
from pathlib import Path

from dependency_injector import providers

import runner.trade
from runner.__main__ import main
from runner.container import Container, SignalSpec
from tradecore.adapters.clock import SystemClock
from tradecore.domain.waves import next_check_after
from tradecore.testing import FakeVenue, Fault, Op

SYMBOLS = ("BTCUSDT", "ETHUSDT", "SOLUSDT", "1000PEPEUSDT", "BTCUSDT")


class ShiftedClock(SystemClock):
    """The wall clock moved by a fixed offset; sleeps last as long as on the wall."""

    def __init__(self, offset: timedelta) -> None:
        self._offset = offset

    def now(self) -> datetime:
        return super().now() + self._offset


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
    wall = SystemClock().now()
    check = next_check_after(wall)
    clock = ShiftedClock(check - wall - timedelta(seconds=wave_in))
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
