"""The whole kernel: start, recover, trade a replayed session with its loops, stop.

The invariant checker runs after every minute of virtual time: each open position on the
venue has exactly one stop for its full quantity, no interval without a stop is longer
than one round trip, and after the kernel's sync the journal agrees with the venue.
"""

import json
from pathlib import Path

import attrs

from tradecore.adapters.clock import RandomIds
from tradecore.adapters.database import open_journal
from tradecore.adapters.paper import RandomWalk
from tradecore.adapters.signals.replay import ReplaySignalSource
from tradecore.adapters.virtual_time import AroundPort, run_driven
from tradecore.app.kernel import Kernel
from tradecore.domain.events import EventType
from tradecore.testing import FakeVenue

from .conftest import ROUND_TRIP, Database
from .harness import RecordingSink, build_app, pass_time
from .invariants import gap_problems, journal_problems, stop_problems

SYMBOLS = ("BTCUSDT", "ETHUSDT", "SOLUSDT")


def write_signals(path: Path, venue: str) -> None:
    """Two waves of signals for three symbols, and a few lines no signal service should send."""
    lines = []
    for wave, minute in (("00:00", 1), ("00:15", 16)):
        for i, symbol in enumerate(SYMBOLS):
            lines.append(
                json.dumps(
                    {
                        "id": f"{wave}-{symbol}",
                        "symbol": symbol,
                        "exchange": venue,
                        "action": "BUY" if i % 2 == 0 else "SELL",
                        "score_week": 80 - i,
                        "score_month": 70,
                        "timestamp": f"2026-01-01T{wave}:00Z",
                        "created_at": f"2026-01-01T00:{minute:02d}:00Z",
                    }
                )
            )
    lines += ['{"id": "broken", "symbol":', '{"id": "nan", "score_week": NaN}', "[]"]
    path.write_text("\n".join(lines) + "\n")


async def test_the_kernel_trades_a_session_keeps_every_position_protected_and_stops_cleanly(
    venue: FakeVenue, database: Database, tmp_path: Path
) -> None:
    app = build_app(venue, database.store)
    journal = open_journal(database, str(tmp_path / "events.spool"))
    journal.start()
    sink = RecordingSink(journal)
    signals_file = tmp_path / "signals.jsonl"
    write_signals(signals_file, venue.exchange.venue.value)
    source = ReplaySignalSource(
        signals_file, events=sink, clock=venue.clock, ids=RandomIds(), pace=True
    )
    venue.play(
        {
            symbol: RandomWalk(
                start=str(venue.mark(symbol)),
                tick=venue.rules(symbol).tick_size,
                seed=i,
                interval=5,
                volatility=0.002,
            )
            for i, symbol in enumerate(SYMBOLS)
        }
    )
    parts = attrs.evolve(
        app.parts,
        events=sink,
        signals=source,
        # the lock and the migrations answer from aiosqlite's own thread, which the virtual
        # clock cannot see: counted as work in flight, the market does not walk on meanwhile
        lock=AroundPort(database.instance_lock(), app.work.around),
        account=f"scenario-{venue.exchange.venue.value}",
        migrate=lambda: app.work.counted(database.migrate()),
    )
    kernel = Kernel(parts)
    started = venue.clock.now()
    report = await run_driven(venue.clock, app.work, kernel.start())
    assert (venue.clock.now() - started).total_seconds() < 60  # start-up is round trips
    assert report.unprotected == 0

    for _minute in range(50):
        await pass_time(app, 60)
        assert stop_problems(venue) == []
        assert gap_problems(venue, round_trip=ROUND_TRIP) == []

    opened = [e for e in sink.events if e.type is EventType.SIGNAL_EXECUTED]
    assert len(opened) >= 3
    await run_driven(venue.clock, app.work, kernel.services.sync.sync())
    assert await journal_problems(venue, database.store) == []

    await run_driven(venue.clock, app.work, kernel.stop("test over"))

    types = {e.type for e in sink.events}
    assert {
        EventType.BOT_STARTED,
        EventType.POSITION_RECOVERY_COMPLETED,
        EventType.BOT_STOPPED,
        EventType.SIGNAL_RECEIVED,
        EventType.SIGNAL_REJECTED,
        EventType.WAVE_COMPLETED,
    } <= types
    assert stop_problems(venue) == []  # positions stay open, protected by their stops
    second = database.instance_lock()
    await second.acquire(parts.account)  # the lock was released
    await second.release()
    await journal.close()
