"""`python -m runner venue-check` as a process against loopback exchange processes: every
fact passes on the honest loopback, the one fact a loopback answers differently is flagged
alone (exit 1), SIGINT or SIGTERM mid-run removes what the check opened, and a SIGKILLed
run's orders are removed by the next run (docs/venues.md, "Checking the venue: venue-check")."""

import asyncio
import signal
import sqlite3
import sys
from pathlib import Path
from typing import Any

import pytest

from .processes import Loopback, child_env, runner_config

pytestmark = [pytest.mark.crossprocess, pytest.mark.timeout(600)]
SYMBOLS = ["BTCUSDT", "ETHUSDT"]
PREFIX = "tcvc-"


def _ignore_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _default_sigint() -> None:
    # whatever this test run inherited (a background job ignores SIGINT), the child starts
    # as an interactive command would
    signal.signal(signal.SIGINT, signal.SIG_DFL)


async def _spawn(
    workdir: Path, venue: str, url: str, *extra: str, ignore_sigint: bool = False
) -> asyncio.subprocess.Process:
    config = runner_config(
        workdir, venue=venue, exchange_url=url, signals_url="ws://127.0.0.1:9/signals"
    )
    key = venue.upper()
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "runner",
        "venue-check",
        "--config",
        str(config),
        *extra,
        cwd=workdir,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        preexec_fn=_ignore_sigint if ignore_sigint else _default_sigint,
        env=child_env(
            **{f"TRADECORE_{key}_API_KEY": "dummy-key", f"TRADECORE_{key}_API_SECRET": "x"}
        ),
    )


async def _check(workdir: Path, venue: str, url: str, *extra: str) -> tuple[int, str, str]:
    process = await _spawn(workdir, venue, url, *extra)
    out, err = await asyncio.wait_for(process.communicate(), 300)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


def _rows(table: str) -> dict[str, str]:
    """check name -> pass / FAIL, from the printed table."""
    rows = {}
    for line in table.splitlines()[2:]:
        cells = line.split("  ")
        name = cells[0].strip()
        verdict = next(c.strip() for c in cells[1:] if c.strip())
        rows[name] = verdict
    return rows


def _ours(state: dict[str, Any]) -> list[dict[str, Any]]:
    return [o for o in state["orders"] if (o["client_order_id"] or "").startswith(PREFIX)]


def _journal(workdir: Path) -> list[tuple[str, str]]:
    with sqlite3.connect(workdir / "bot.db") as db:
        return list(
            db.execute("SELECT event_type, severity FROM events WHERE event_type LIKE 'venue_%'")
        )


@pytest.mark.parametrize("venue", ["binance", "bybit"])
async def test_every_fact_passes_on_the_honest_loopback_and_nothing_is_left(
    venue: str, tmp_path: Path
) -> None:
    async with Loopback.running(venue, seed=1, symbols=SYMBOLS) as loopback:
        code, out, err = await _check(tmp_path, venue, loopback.url)
        state = await loopback.state()
    assert code == 0, out + err
    rows = _rows(out)
    assert set(rows.values()) == {"pass"}, out
    assert "stop-loss and take-profit side by side" in rows
    if venue == "binance":
        assert "cancel algo order answer" in rows
    else:
        assert "same trading stop sent twice" in rows
        assert "entry's carried stop set on the position" in rows
    assert state["positions"] == []
    assert _ours(state) and not [o for o in _ours(state) if o["open"]]
    journal = _journal(tmp_path)
    assert ("venue_check_completed", journal[-1][1]) in journal
    assert sum(t == "venue_fact_checked" for t, _ in journal) == len(rows)


async def test_a_fact_answered_differently_is_flagged_alone(tmp_path: Path) -> None:
    async with Loopback.running(
        "bybit", seed=2, symbols=SYMBOLS, alter=["leverage_not_applied"]
    ) as loopback:
        code, out, err = await _check(tmp_path, "bybit", loopback.url)
        state = await loopback.state()
    assert code == 1, out + err
    rows = _rows(out)
    assert [name for name, verdict in rows.items() if verdict == "FAIL"] == [
        "leverage set, read back"
    ], out
    assert state["positions"] == []


async def test_an_entry_stop_the_venue_did_not_set_is_flagged_alone(tmp_path: Path) -> None:
    """Bybit acknowledges an entry's `stopLoss` but the position shows none: the open's
    reliance on the carried stop is wrong there, and venue-check says so."""
    async with Loopback.running(
        "bybit", seed=4, symbols=SYMBOLS, alter=["entry_stop_not_set"]
    ) as loopback:
        code, out, err = await _check(tmp_path, "bybit", loopback.url)
        state = await loopback.state()
    assert code == 1, out + err
    rows = _rows(out)
    assert [name for name, verdict in rows.items() if verdict == "FAIL"] == [
        "entry's carried stop set on the position"
    ], out
    assert state["positions"] == []


@pytest.mark.parametrize(
    ("how", "ignored"),
    [
        (signal.SIGINT, False),
        # started in the background by a non-interactive shell (`cmd &`, nohup, a CI script):
        # SIGINT arrives ignored; the operator's Ctrl-C or `kill -INT` still means stop
        (signal.SIGINT, True),
        (signal.SIGTERM, False),  # `kill`, systemd's stop
        (signal.SIGKILL, False),
    ],
    ids=["SIGINT", "SIGINT-inherited-ignored", "SIGTERM", "SIGKILL"],
)
async def test_an_interrupted_run_leaves_nothing_open(
    how: signal.Signals, ignored: bool, tmp_path: Path
) -> None:
    """SIGINT / SIGTERM: the run removes what it opened before it exits. SIGKILL: the next
    run does."""
    async with Loopback.running("binance", seed=3, symbols=SYMBOLS) as loopback:
        process = await _spawn(
            tmp_path, "binance", loopback.url, "--hold", "120", ignore_sigint=ignored
        )
        assert process.stderr is not None
        async for raw in process.stderr:
            if b"holding the check's orders" in raw:
                break
        else:
            raise AssertionError("the check never held its orders")
        held = await loopback.state()
        assert [o for o in _ours(held) if o["open"]] and held["positions"]
        process.send_signal(how)
        await asyncio.wait_for(process.communicate(), 120)
        after = await loopback.state()
        if how is not signal.SIGKILL:
            assert process.returncode == 1
            assert after["positions"] == [] and not [o for o in _ours(after) if o["open"]]
            return
        assert after["positions"] and [o for o in _ours(after) if o["open"]]
        code, out, err = await _check(tmp_path, "binance", loopback.url)
        final = await loopback.state()
    assert code == 0, out + err
    assert "removed" in err
    assert final["positions"] == [] and not [o for o in _ours(final) if o["open"]]
