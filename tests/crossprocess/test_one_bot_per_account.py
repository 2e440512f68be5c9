"""One bot per account: two real runner processes on the same loopback exchange account, each
with its own SQLite database, and the second is refused at start (exit 3, one clear line that
names the lock), before it binds the health port the first one serves."""

import asyncio
from pathlib import Path

import pytest

from .processes import Loopback, Runner, SignalService, free_port, runner_config
from .test_kill_runner import SCHEDULE, SETTINGS, SYMBOLS

pytestmark = [pytest.mark.crossprocess, pytest.mark.timeout(180)]


def config_in(workdir: Path, *, venue: str, exchange_url: str, signals_url: str, port: int) -> Path:
    workdir.mkdir()
    path = runner_config(
        workdir, venue=venue, exchange_url=exchange_url, signals_url=signals_url, extra=SETTINGS
    )
    text = path.read_text(encoding="utf-8").replace(
        "[health]\nport = 0", f"[health]\nport = {port}"
    )
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize("venue", ["binance", "bybit"])
async def test_a_second_runner_on_the_same_account_with_another_database_exits_3(
    venue: str, tmp_path: Path
) -> None:
    signals = SignalService(SCHEDULE, SYMBOLS, venue, seed=1)
    await signals.start()
    port = free_port()  # both ask for the same health port: the refusal must name the lock
    first: Runner | None = None
    second: Runner | None = None
    try:
        async with Loopback.running(venue, seed=1, symbols=SYMBOLS) as loopback:
            urls = {"exchange_url": loopback.url, "signals_url": signals.url}
            config_a = config_in(tmp_path / "a", venue=venue, port=port, **urls)
            config_b = config_in(tmp_path / "b", venue=venue, port=port, **urls)
            first = Runner(tmp_path / "a", config_a, venue)
            await first.spawn()
            assert await first.recovered(within=180), first.lines[-5:]

            second = Runner(tmp_path / "b", config_b, venue)
            await second.spawn()
            assert second.process is not None
            code = await asyncio.wait_for(second.process.wait(), 180)
            await second.kill()  # reaps the reader
            errors = [line for line in second.lines if line.startswith("tradecore: error:")]
            print(f"\n{venue}: exit {code}: {errors}")
            assert code == 3, second.lines[-5:]
            assert len(errors) == 1, second.lines[-5:]
            assert "already running" in errors[0] and "lock" in errors[0], errors
            assert "dummy-key" not in "\n".join(second.lines)  # a fingerprint, never the key
            assert first.alive  # the first trades on, untouched
            assert await first.stop() == 0
    finally:
        for runner in (first, second):
            if runner is not None and runner.alive:
                await runner.kill()
        await signals.close()
