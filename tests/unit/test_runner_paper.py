"""The paper session: the real kernel on the simulated venue, in virtual time, to its summary.

The figures are checked against what the venue's books and the database say, not against
numbers copied from a previous run.
"""

import asyncio
import hashlib
import io
import json
import logging
import os
import sqlite3
import subprocess
import sys
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from loguru import logger

from runner.__main__ import main
from runner.report import run_report
from tradecore.adapters.paper.sample import AGED_SYMBOL, generate, read_prices

ROUND_TRIP = 0.05  # paper.latency_seconds


@pytest.fixture(autouse=True)
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.chdir(tmp_path)
    yield tmp_path
    logger.remove()
    logger.add(sys.stderr)
    logging.basicConfig(handlers=[logging.StreamHandler()], force=True)


def session(capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, Any]:
    code = main([*args, "--no-progress", "--json"], env={})
    out = capsys.readouterr().out
    assert code == 0, out
    summary: dict[str, Any] = json.loads(out)
    return summary


def events_in(url: str) -> list[tuple[str, str | None]]:
    path = url.removeprefix("sqlite:///")
    with sqlite3.connect(path) as db:
        return list(db.execute("SELECT event_type, position_id FROM events ORDER BY seq"))


def test_a_short_sample_runs_to_its_summary_with_every_position_protected(
    capsys: pytest.CaptureFixture[str],
) -> None:
    summary = session(capsys, "--hours", "1", "--symbols", "10")
    assert summary["waves"] == 4
    assert summary["opened"] > 0
    assert summary["positions"] == summary["opened"]
    # promise 1, from the venue's own books: never without a stop beyond one round trip
    assert 0 < summary["longest_unprotected_seconds"] <= ROUND_TRIP
    assert summary["critical_errors"] == 0
    types = [kind for kind, _ in events_in(summary["database"])]
    assert types[0] == "bot_started" and types[-1] == "bot_stopped"
    assert types.count("signal_executed") == summary["opened"]


def test_the_default_sample_has_a_flash_crash_trailing_and_an_aged_exit(
    capsys: pytest.CaptureFixture[str],
) -> None:
    summary = session(capsys)
    assert summary["waves"] == 16
    assert summary["closed_by"].get("stop", 0) > 0
    assert summary["trailing_activations"] > 0
    assert summary["aged_positions"] >= 1 and summary["aged_exits"] >= 1
    assert summary["longest_unprotected_seconds"] <= ROUND_TRIP
    assert summary["rejected"]["market_missing"] > 0
    assert summary["malformed"] == 1


def test_the_same_seed_gives_the_same_session_and_another_seed_another(
    capsys: pytest.CaptureFixture[str],
) -> None:
    def run(seed: str) -> dict[str, Any]:
        summary = session(capsys, "--hours", "1", "--symbols", "8", "--seed", seed)
        summary.pop("database")
        return summary

    assert run("11") == run("11")
    assert generate(seed=11).signal_lines != generate(seed=12).signal_lines


def journal_digest(url: str) -> str:
    """SHA-256 of the events table: every column (ids, times, data), in insertion order."""
    path = url.removeprefix("sqlite:///")
    digest = hashlib.sha256()
    with sqlite3.connect(path) as db:
        for row in db.execute("SELECT * FROM events ORDER BY seq"):
            digest.update(repr(row).encode())
    return digest.hexdigest()


CONCURRENT = """
[paper]
balance = 100000

[trading.sizing]
position_size_usd = 100
max_open_positions = 40
max_exposure_usd = 100000

[trading.waves]
max_trades_per_wave = 12
"""


def test_the_same_inputs_and_seed_give_the_same_journal_byte_for_byte(workdir: Path) -> None:
    # Twelve opens at once per wave, each with its database writes, trailing on every mark:
    # the order of what happens at one instant must not depend on threads, on chance or on
    # the process (each run is its own interpreter, with its own string-hash seed).
    config = workdir / "concurrent.toml"
    config.write_text(CONCURRENT, encoding="utf-8")

    def run(number: int) -> tuple[bytes, str, int]:
        database = workdir / f"run{number}.db"
        command = [
            sys.executable, "-m", "runner", "paper", "--config", str(config), "--hours", "2",
            "--seed", "5", "--database-url", f"sqlite:///{database}", "--no-progress", "--json",
        ]  # fmt: skip
        env = {"PATH": os.environ.get("PATH", ""), "PYTHONHASHSEED": str(number)}
        done = subprocess.run(command, cwd=workdir, env=env, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr[-2000:]
        summary = json.loads(done.stdout)
        return database.read_bytes(), journal_digest(f"sqlite:///{database}"), summary["positions"]

    first_file, first, positions = run(1)
    second_file, second, again = run(2)
    assert positions >= 30
    assert (second, again) == (first, positions)
    assert second_file == first_file  # the whole SQLite file, not only the events


def test_a_second_session_on_the_same_database_loses_none_of_its_events(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Ids from the seed repeat with the seed; the journal skips an id it already holds, so a
    # session on a database that already has one must not draw the same ids again.
    url = f"sqlite:///{workdir / 'kept.db'}"
    for _ in range(2):
        session(capsys, "--hours", "1", "--symbols", "5", "--database-url", url)
    kinds = [kind for kind, _ in events_in(url)]
    assert kinds.count("bot_started") == 2 and kinds.count("bot_stopped") == 2


def test_every_signal_has_one_fate_in_the_summary_and_a_rerun_says_its_waves_were_done(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite:///{workdir / 'rerun.db'}"
    first = session(capsys, "--hours", "1", "--symbols", "10", "--database-url", url)
    assert first["fates"]["opened"] == first["opened"] > 0
    assert sum(first["fates"].values()) == first["signals"] + first["malformed"]

    again = session(capsys, "--hours", "1", "--symbols", "10", "--database-url", url)

    assert (again["waves"], again["waves_duplicate"]) == (0, first["waves"])
    assert sum(again["fates"].values()) == again["signals"] + again["malformed"]
    assert again["fates"]["duplicate"] > 0 and "opened" not in again["fates"]


def test_the_sample_is_a_few_hours_of_waves_for_thirty_symbols() -> None:
    sample = generate()
    assert len(sample.market.rules) == 30
    first = sample.market.start
    assert sample.market.end - first == timedelta(hours=4)
    signals = [json.loads(line) for line in sample.signal_lines if line.endswith("}")]
    assert len({signal["timestamp"] for signal in signals}) == 15
    aged = [signal for signal in signals if signal["symbol"] == AGED_SYMBOL]
    assert len(aged) == 1 and aged[0]["timestamp"] == signals[0]["timestamp"]  # first wave
    assert aged[0]["score_week"] == max(signal["score_week"] for signal in signals)
    for wave in {signal["timestamp"] for signal in signals}:  # sent as they are produced
        created = [signal["created_at"] for signal in signals if signal["timestamp"] == wave]
        assert created == sorted(created)
    assert sample.flash_crash_at is not None and first < sample.flash_crash_at < sample.market.end


def test_a_session_replays_the_users_own_signals_and_prices(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    start = datetime(2026, 5, 4, 9, 0, tzinfo=UTC)
    prices = workdir / "prices.csv"
    rows = ["timestamp,symbol,mark"]
    for minute in range(90):
        at = (start + timedelta(minutes=minute)).isoformat()
        rows += [f"{at},XYZUSDT,{10 + minute * 0.01:.2f}", f"{at},ABCUSDT,{200 - minute * 0.1:.1f}"]
    prices.write_text("\n".join(rows) + "\n")
    signals = workdir / "signals.jsonl"
    lines = [
        {"id": 1, "symbol": "XYZUSDT", "action": "BUY", "exchange": "binance"},
        {"id": 2, "symbol": "ABCUSDT", "action": "SELL", "exchange": "binance"},
    ]
    signals.write_text(
        "".join(
            json.dumps(
                {
                    **line,
                    "score_week": 50,
                    "score_month": 50,
                    "timestamp": "2026-05-04T09:00:00Z",
                    "created_at": "2026-05-04T09:03:00Z",
                }
            )
            + "\n"
            for line in lines
        )
    )
    summary = session(capsys, "--signals", str(signals), "--prices", str(prices))
    assert summary["signals"] == 2 and summary["opened"] == 2
    assert summary["open_at_end"] == 2  # a gentle drift in the position's favour: no stop hit
    market = read_prices(prices)
    assert sorted(market.marks) == ["ABCUSDT", "XYZUSDT"]


def test_a_prices_file_with_a_bad_row_is_refused_naming_the_line(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    prices = workdir / "prices.csv"
    prices.write_text("timestamp,symbol,mark\n2026-05-04T09:00:00Z,XYZUSDT,abc\n")
    assert main(["--prices", str(prices), "--no-progress"], env={}) == 2
    err = capsys.readouterr().err
    assert "prices.csv:2" in err and "Traceback" not in err


def test_a_session_on_postgresql_trades_exactly_as_on_sqlite(
    postgres_database: Callable[[], str], capsys: pytest.CaptureFixture[str]
) -> None:
    args = ("--hours", "1", "--symbols", "8")
    on_postgres = session(capsys, *args, "--database-url", postgres_database())
    on_sqlite = session(capsys, *args)
    postgres_url = on_postgres.pop("database")
    assert postgres_url.startswith("postgresql://")
    sqlite_url = on_sqlite.pop("database")
    assert on_postgres == on_sqlite
    # the same events, in the same order, at the same instants, with the same ids: the order
    # of one instant's work does not depend on which database answers, nor how fast
    assert journal_on_postgres(postgres_url) == journal_on_sqlite(sqlite_url)
    assert on_sqlite["longest_unprotected_seconds"] == ROUND_TRIP  # a stop a round trip on


Journal = list[tuple[str, datetime, str | None, str | None, str | None]]
JOURNAL = "SELECT id, event_type, created_at, position_id, symbol FROM events ORDER BY seq"


def journal_on_sqlite(url: str) -> Journal:
    with sqlite3.connect(url.removeprefix("sqlite:///")) as db:
        rows = db.execute(JOURNAL).fetchall()
    return [(i, kind, _utc(datetime.fromisoformat(at)), p, s) for i, kind, at, p, s in rows]


def journal_on_postgres(url: str) -> Journal:
    async def read() -> Journal:
        connection = await asyncpg.connect(url)
        try:
            rows = await connection.fetch(JOURNAL)
        finally:
            await connection.close()
        return [(str(r[0]), r[1], r[2], r[3], r[4]) for r in rows]

    return asyncio.run(read())


def _utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def test_a_realtime_session_runs_on_the_wall_clock_until_its_end(
    capsys: pytest.CaptureFixture[str],
) -> None:
    began = datetime.now(UTC)
    summary = session(capsys, "--realtime", "--hours", "0.0005", "--symbols", "3")  # 1.8 s
    ended = datetime.now(UTC)
    with sqlite3.connect(summary["database"].removeprefix("sqlite:///")) as db:
        rows = db.execute(
            "SELECT created_at FROM events WHERE event_type IN ('bot_started', 'bot_stopped') "
            "ORDER BY seq"
        ).fetchall()
    started, stopped = (datetime.fromisoformat(row[0]) for row in rows)
    assert began <= started < stopped <= ended  # stamped by the wall clock, not a sample's
    assert (stopped - started).total_seconds() >= 0.5


def closed_positions(url: str) -> list[dict[str, Any]]:
    path = url.removeprefix("sqlite:///")
    with sqlite3.connect(path) as db:
        db.row_factory = sqlite3.Row
        rows = db.execute(
            "SELECT * FROM positions WHERE closed_at IS NOT NULL AND CAST(quantity AS REAL) > 0"
        )
        return [dict(row) for row in rows]


def test_every_closed_position_has_its_exit_price_fees_and_pnl_and_report_equals_summary(
    capsys: pytest.CaptureFixture[str],
) -> None:
    summary = session(capsys, "--hours", "2", "--symbols", "10")
    closed = closed_positions(summary["database"])
    assert closed, "the session closed no position: nothing shown"
    missing = [
        p["id"]
        for p in closed
        if p["exit_price"] is None or p.get("fees") is None or p["realized_pnl"] is None
    ]
    assert missing == [], f"{len(missing)} of {len(closed)} closed positions lack exit/fees/PnL"
    printed = io.StringIO()
    assert asyncio.run(run_report(summary["database"], fmt="json", out=printed)) == 0
    report = json.loads(printed.getvalue())
    assert report["pnl"]["unknown"] == 0
    assert Decimal(report["pnl"]["total"]) != 0
    assert Decimal(summary["realized_pnl"]) == Decimal(report["pnl"]["total"]).quantize(
        Decimal("0.01")
    )


def test_a_realtime_session_shows_progress_every_minute_and_each_new_wave() -> None:
    """A --realtime session of 4 hours moves 1 % every 2.4 minutes: the line must still say
    something each minute (and at once when a wave completes), not stay at 0 % for 20."""
    from datetime import UTC, datetime, timedelta
    from io import StringIO

    from tradecore.wiring.paper import Progress

    out = StringIO()
    start = datetime(2026, 1, 1, tzinfo=UTC)
    progress = Progress(out, start, start + timedelta(hours=4), True, realtime=True)
    for second in range(0, 5 * 60 + 1, 5):
        waves = 1 if second >= 125 else 0
        progress.update(start + timedelta(seconds=second), f"waves {waves}  opened 0")
    lines = out.getvalue().splitlines()
    assert len(lines) >= 6  # one a minute over five minutes, and the wave
    assert any("waves 1" in line and "00:02" in line for line in lines)


def test_a_virtual_session_written_to_a_file_stays_short() -> None:
    from datetime import UTC, datetime, timedelta
    from io import StringIO

    from tradecore.wiring.paper import Progress

    out = StringIO()
    start = datetime(2026, 1, 1, tzinfo=UTC)
    progress = Progress(out, start, start + timedelta(hours=4), True)
    for second in range(0, 4 * 3600 + 1, 5):
        progress.update(start + timedelta(seconds=second), "waves 0  opened 0")
    assert len(out.getvalue().splitlines()) == 11  # 0 %, 10 %, …, 100 %
