"""The live monitor read from a database written through the real repositories and journal:
the figures of each snapshot, the anomalies an operator is shown, the JSONL trail and the final
report. Time is a stepping fake clock; nothing waits on the wall clock."""

import io
import json
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from runner.monitor import run_monitor
from tradecore.adapters.database import connect_store, open_journal
from tradecore.domain.events import Event, EventType
from tradecore.domain.model import Side, Venue
from tradecore.domain.positions import Position, PositionState

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)


class StepClock:
    """Time stands still until the monitor sleeps; `on_sleep` runs on each sleep."""

    def __init__(self, start: datetime = NOW, on_sleep: Callable[[], None] | None = None):
        self.at = start
        self._on_sleep = on_sleep

    def now(self) -> datetime:
        return self.at

    async def sleep(self, seconds: float) -> None:
        self.at += timedelta(seconds=seconds)
        if self._on_sleep is not None:
            self._on_sleep()


def ago(seconds: float) -> datetime:
    return NOW - timedelta(seconds=seconds)


def event(kind: EventType, when: datetime, **fields: Any) -> Event:
    return Event(id=uuid.uuid4(), type=kind, created_at=when, **fields)


def position(pid: str, venue: Venue, symbol: str, state: PositionState, **fields: Any):
    return Position(
        id=pid,
        venue=venue,
        symbol=symbol,
        side=Side.LONG,
        state=state,
        requested_quantity=Decimal(1),
        quantity=Decimal(1),
        **fields,
    )


def busy_positions() -> list[Position]:
    return [
        position("P1", Venue.BINANCE, "BTCUSDT", PositionState.ACTIVE, created_at=ago(7200),
                 opened_at=ago(7200), stop_price=Decimal("98"), stop_order_id="s1"),
        position("P2", Venue.BINANCE, "ETHUSDT", PositionState.ACTIVE, created_at=ago(600),
                 opened_at=ago(600)),
        position("P3", Venue.BYBIT, "SOLUSDT", PositionState.PENDING_SL, created_at=ago(5),
                 opened_at=ago(5)),
        position("P4", Venue.BYBIT, "XRPUSDT", PositionState.CLOSED, created_at=ago(7000),
                 closed_at=ago(30)),
    ]  # fmt: skip


def busy_events() -> list[Event]:
    e = EventType
    return [
        event(e.ENTRY_ORDER_FILLED, ago(7200), position_id="P1"),
        event(e.SIGNAL_RECEIVED, ago(45 * 60), symbol="ETHUSDT"),
        event(e.ENTRY_ORDER_FILLED, ago(50), position_id="P2"),
        event(e.ENTRY_ORDER_FILLED, ago(5), position_id="P3"),
        event(e.POSITION_CLOSED, ago(30), position_id="P4"),
        event(e.TRAILING_STOP_ACTIVATED, ago(40), correlation_id="P1"),
        *(event(e.STOP_LOSS_REPLACED, ago(39 - i), position_id="P1") for i in range(3)),
        event(e.AGED_POSITION_DETECTED, ago(20), position_id="P1"),
        event(e.ZOMBIE_ORDERS_DETECTED, ago(20), exchange="bybit"),
        event(e.WEBSOCKET_DISCONNECTED, ago(15)),
        event(e.WEBSOCKET_CONNECTED, ago(14)),
        event(e.HEALTH_CHECK_FAILED, ago(10), exchange="bybit", error_message="timeout"),
        event(e.CRITICAL_ERROR, ago(3), position_id="P2", symbol="ETHUSDT",
              exchange="binance", error_message="rollback and emergency stop failed"),
    ]  # fmt: skip


async def write(url: str, spool: Path, positions: list[Position], events: list[Event]) -> str:
    database = await connect_store(url)
    try:
        for p in positions:
            await database.store.positions.add(p)
        journal = open_journal(database, str(spool))
        journal.start()
        for e in events:
            journal.emit(e)
        await journal.close()
    finally:
        await database.close()
    return url


@pytest.fixture
async def busy(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'busy.db'}"
    return await write(url, tmp_path / "j.spool", busy_positions(), busy_events())


async def monitor(url: str, tmp_path: Path, **options: Any) -> tuple[list[dict], dict, str]:
    out = io.StringIO()
    jsonl = tmp_path / "monitor.jsonl"
    options.setdefault("clock", StepClock())
    code = await run_monitor(url, interval=60, jsonl_path=str(jsonl), out=out, **options)
    assert code == 0
    text = out.getvalue()
    final = json.loads(text[text.index('{\n  "final_report"') :])["final_report"]
    lines = [json.loads(line) for line in jsonl.read_text().splitlines()]
    return lines, final, text


def levels(snapshot: dict) -> set[tuple[str, str]]:
    return {(a["level"], a["code"]) for a in snapshot["anomalies"]}


async def test_a_snapshot_counts_what_happened_in_the_last_interval(busy, tmp_path):
    (snapshot,), _, _ = await monitor(busy, tmp_path, iterations=1)

    assert snapshot["positions"] == 3
    assert snapshot["positions_by_exchange"] == {"binance": 2, "bybit": 1}
    expected = {
        "opened": 2, "closed": 1, "ts_activations": 1, "stop_updates": 3, "aged_detected": 1,
        "zombies_detected": 1, "disconnects": 1, "reconnects": 1, "errors": 1, "criticals": 1,
    }  # fmt: skip
    assert {k: snapshot[k] for k in expected} == expected


async def test_an_unprotected_position_past_the_grace_period_is_critical(busy, tmp_path):
    (snapshot,), _, text = await monitor(busy, tmp_path, iterations=1)

    assert snapshot["unprotected_ids"] == ["P2", "P3"]
    assert ("CRITICAL", "unprotected_position") in levels(snapshot)
    messages = {a["message"][:2]: a["level"] for a in snapshot["anomalies"]}
    assert messages["P2"] == "CRITICAL"  # open 10 minutes without a stop
    assert messages["P3"] == "WARNING"  # still inside its opening round trip
    assert "[CRITICAL] unprotected_position: P2 binance ETHUSDT" in text


async def test_critical_events_errors_and_a_silent_signal_stream_are_flagged(busy, tmp_path):
    (snapshot,), _, _ = await monitor(busy, tmp_path, iterations=1)

    assert {
        ("CRITICAL", "critical_error"),
        ("WARNING", "health_check_failed"),
        ("WARNING", "signal_silence"),
        ("INFO", "reconnects"),
        ("INFO", "aged_detected"),
    } <= levels(snapshot)
    assert snapshot["worst"] == "CRITICAL"


async def test_each_event_is_counted_in_one_window_only(busy, tmp_path):
    lines, final, _ = await monitor(busy, tmp_path, iterations=3)

    assert [line["opened"] for line in lines] == [2, 0, 0]
    assert [line["at"] for line in lines] == [
        NOW.isoformat(), (NOW + timedelta(seconds=60)).isoformat(),
        (NOW + timedelta(seconds=120)).isoformat(),
    ]  # fmt: skip
    assert final["snapshots"] == 3
    assert final["totals"]["opened"] == 2 and final["totals"]["criticals"] == 1
    assert final["worst"] == "CRITICAL"


async def test_a_healthy_bot_shows_no_warnings(tmp_path):
    url = await write(
        f"sqlite:///{tmp_path / 'calm.db'}",
        tmp_path / "c.spool",
        busy_positions()[:1],
        [event(EventType.SIGNAL_RECEIVED, ago(60 * 5)), event(EventType.BOT_STARTED, ago(30))],
    )
    (snapshot,), final, _ = await monitor(url, tmp_path, iterations=1)

    assert snapshot["unprotected"] == 0
    assert snapshot["anomalies"] == []
    assert final["anomalies"] == {"CRITICAL": 0, "WARNING": 0, "INFO": 0}


async def test_a_database_outage_without_restore_is_critical_until_restored(tmp_path):
    down = [event(EventType.DATABASE_UNAVAILABLE, ago(100)), event(EventType.BOT_STARTED, ago(9))]
    url = await write(f"sqlite:///{tmp_path / 'o.db'}", tmp_path / "o.spool", [], down)
    (snapshot,), _, _ = await monitor(url, tmp_path / "down", iterations=1)
    assert ("CRITICAL", "database_outage") in levels(snapshot)

    up = [*down, event(EventType.DATABASE_RESTORED, ago(8))]
    url = await write(f"sqlite:///{tmp_path / 'r.db'}", tmp_path / "r.spool", [], up)
    (snapshot,), _, _ = await monitor(url, tmp_path / "up", iterations=1)
    assert ("CRITICAL", "database_outage") not in levels(snapshot)


async def test_a_growing_spool_is_a_warning(busy, tmp_path):
    spool = tmp_path / "bot.spool"
    spool.write_text("")

    def bot_spools() -> None:
        with spool.open("a") as file:
            file.write('{"event": "spooled while the database is away"}\n')

    lines, _, _ = await monitor(
        busy, tmp_path, iterations=2, spool_path=str(spool), clock=StepClock(on_sleep=bot_spools)
    )

    assert ("WARNING", "spool_growing") not in levels(lines[0])
    assert ("WARNING", "spool_growing") in levels(lines[1])
    assert lines[1]["spool_bytes"] > 0


async def test_bad_arguments_and_an_unopenable_database_exit_2(busy, tmp_path):
    out = io.StringIO()
    assert await run_monitor(busy, interval=0, jsonl_path=None, iterations=1, out=out) == 2
    assert await run_monitor(busy, interval=60, jsonl_path=None, iterations=0, out=out) == 2
    missing = f"sqlite:///{tmp_path / 'no' / 'such.db'}"
    assert await run_monitor(missing, jsonl_path=None, iterations=1, out=out) == 2


async def test_postgresql_gives_the_same_snapshot_as_sqlite(postgres_database, busy, tmp_path):
    url = await write(postgres_database(), tmp_path / "pg.spool", busy_positions(), busy_events())

    (on_postgres,), _, _ = await monitor(url, tmp_path / "pg", iterations=1)
    (on_sqlite,), _, _ = await monitor(busy, tmp_path / "lite", iterations=1)

    assert on_postgres == on_sqlite


async def test_a_position_the_guard_last_found_bare_is_shown_unprotected(tmp_path):
    # Issue 10, story 2/4: the journal still holds the bot's stop level, but the venue had no
    # stop at the guard's last look and nothing has been placed since.
    e = EventType
    positions = [
        position("P1", Venue.BINANCE, "BTCUSDT", PositionState.ACTIVE, created_at=ago(7200),
                 opened_at=ago(7200), stop_price=Decimal("98"), stop_order_id="s1"),
        position("P5", Venue.BINANCE, "ETHUSDT", PositionState.ACTIVE, created_at=ago(7200),
                 opened_at=ago(7200), stop_price=Decimal("97"), stop_order_id="s5"),
    ]  # fmt: skip
    events = [
        event(e.STOP_LOSS_PLACED, ago(7000), position_id="P1"),
        event(e.UNPROTECTED_POSITION_FOUND, ago(600), position_id="P1"),
        event(e.STOP_LOSS_PLACED, ago(599), position_id="P1"),  # put back: protected
        event(e.STOP_LOSS_PLACED, ago(7000), position_id="P5"),
        event(e.UNPROTECTED_POSITION_FOUND, ago(600), position_id="P5"),
        event(e.STOP_LOSS_FAILED, ago(599), position_id="P5"),  # could not put it back
    ]
    url = await write(f"sqlite:///{tmp_path / 'bare.db'}", tmp_path / "b.spool", positions, events)

    (snapshot,), _, _ = await monitor(url, tmp_path, iterations=1)

    assert snapshot["unprotected_ids"] == ["P5"]


async def test_the_monitor_reconnects_once_the_database_is_back(
    postgres_server, postgres_database, tmp_path
):
    # Issue 12, item 6: it kept its one connection and reported the database unreachable
    # long after it was back. Only this session's own throwaway server is stopped.
    url = await write(postgres_database(), tmp_path / "r.spool", busy_positions(), busy_events())
    sleeps = 0

    def outage() -> None:
        nonlocal sleeps
        sleeps += 1
        if sleeps == 1:
            postgres_server.stop()
        elif sleeps == 2:
            postgres_server.restart()

    lines, _, _ = await monitor(url, tmp_path, iterations=3, clock=StepClock(on_sleep=outage))

    codes = [{a["code"] for a in line["anomalies"]} for line in lines]
    assert "database_unreachable" not in codes[0]
    assert "database_unreachable" in codes[1]
    assert "database_unreachable" not in codes[2]
