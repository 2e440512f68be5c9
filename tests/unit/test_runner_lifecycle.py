"""Coming back after a crash (issue 10, story 11): what can heal is waited for inside the
process, what cannot exits with a code the supervisor understands (2 the configuration, 3 the
account's instance lock), and the runbook's unit restarts on everything else."""

import asyncio
import re
import socket
import sqlite3
from pathlib import Path

import aiohttp
import pytest
from dependency_injector import providers

from runner.__main__ import main
from runner.trade import run_trade
from tradecore.adapters.clock import SystemClock
from tradecore.adapters.database import connect_store
from tradecore.adapters.reporting.telemetry import Telemetry
from tradecore.adapters.sqlite.database import SqliteDatabase
from tradecore.adapters.sqlite.lock import FileInstanceLock
from tradecore.domain.model import Venue
from tradecore.ports.repositories import StoreUnavailable
from tradecore.testing import FakeVenue, Fault, Op
from tradecore.wiring.config import Config, HealthSettings, LoggingSettings, Mode, Secrets
from tradecore.wiring.container import Container, SignalSpec
from tradecore.wiring.health import Health, HealthServer, HealthSources

DOCS = Path(__file__).resolve().parents[2] / "docs"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def health_server(port: int, **options: float) -> HealthServer:
    async def no_positions() -> int:
        return 0

    sources = HealthSources(
        telemetry=Telemetry(),
        clock=SystemClock(),
        venue="binance",
        mode="demo",
        stream="none",
        running=lambda: True,
        started_at=lambda: None,
        open_positions=no_positions,
    )
    return HealthServer(Health(sources), host="127.0.0.1", port=port, **options)


async def answers(port: int, *, within: float = 60.0) -> int:
    """Poll /health until the endpoint answers; its status. The server closes the connection
    (the client asks it to), so the server's side of it is left in TIME_WAIT."""
    deadline = asyncio.get_running_loop().time() + within
    async with aiohttp.ClientSession() as client:
        while True:
            try:
                url = f"http://127.0.0.1:{port}/health"
                async with client.get(url, headers={"Connection": "close"}) as answer:
                    return answer.status
            except aiohttp.ClientConnectionError:
                assert asyncio.get_running_loop().time() < deadline, "the endpoint never answered"
                await asyncio.sleep(0.05)


async def test_the_health_endpoint_listens_again_while_its_last_probe_is_in_time_wait() -> None:
    port = free_port()
    first = health_server(port)
    await first.start()
    assert await answers(port) == 200  # the server closes first: its side waits ~60 s
    await first.stop()

    again = health_server(port)
    await again.start()  # a restart right after a crash: the port must be taken at once
    try:
        assert again.listening
        assert await answers(port) == 200
    finally:
        await again.stop()


async def test_a_health_port_held_by_another_process_is_waited_for_then_served() -> None:
    port = free_port()
    squatter = socket.socket()
    squatter.bind(("127.0.0.1", port))
    squatter.listen()
    server = health_server(port, retry_seconds=0.05)
    try:
        await server.start()  # never raises: the bot trades while the port is busy
        assert not server.listening
        squatter.close()
        assert await answers(port) == 200
        assert server.listening
    finally:
        squatter.close()
        await server.stop()


async def test_a_database_server_that_refuses_connections_is_unreachable_not_misconfigured() -> (
    None
):
    with pytest.raises(StoreUnavailable):
        await connect_store(f"postgresql://tradecore@127.0.0.1:{free_port()}/tradecore")


async def test_a_database_file_locked_by_another_process_is_unreachable(tmp_path: Path) -> None:
    database = tmp_path / "tradecore.db"
    backup = sqlite3.connect(database, isolation_level=None)  # e.g. a backup holding the file
    backup.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(StoreUnavailable):
            await SqliteDatabase.connect(str(database), busy_timeout_ms=50)
    finally:
        backup.execute("ROLLBACK")
        backup.close()
    opened = await SqliteDatabase.connect(str(database), busy_timeout_ms=50)
    await opened.close()


def trade_container(venue: FakeVenue, database: Path) -> Container:
    container = Container()
    container.venue.override(providers.Object(venue.exchange))
    container.database_url.override(f"sqlite:///{database}")
    container.spool_path.override(str(database) + ".spool")
    container.signal_spec.override(SignalSpec(kind="none"))
    return container


async def test_a_venue_unreachable_at_start_up_is_waited_for_and_trading_starts_when_it_answers(
    tmp_path: Path,
) -> None:
    venue = FakeVenue.bybit()
    venue.inject(Fault.server_error(Op.FETCH_MARKETS, times=2))
    database = tmp_path / "trade.db"
    port = free_port()
    config = Config(
        mode=Mode.DEMO,
        venue=Venue.BYBIT,
        lock_dir=str(tmp_path / "locks"),
        health=HealthSettings(port=port),
        logging=LoggingSettings(file=""),
    )
    stop = asyncio.Event()
    container = trade_container(venue, database)
    trading = asyncio.create_task(run_trade(config, Secrets(), container=container, stop=stop))
    deadline = asyncio.get_running_loop().time() + 120
    async with aiohttp.ClientSession() as client:
        while True:
            assert not trading.done(), "trading ended instead of waiting for the venue"
            assert asyncio.get_running_loop().time() < deadline, "trading never started"
            try:
                async with client.get(f"http://127.0.0.1:{port}/health") as answer:
                    if (await answer.json())["running"]:
                        break
            except aiohttp.ClientConnectionError:
                pass
            await asyncio.sleep(0.05)
    stop.set()
    await asyncio.wait_for(trading, 30)
    with sqlite3.connect(database) as db:
        kinds = [row[0] for row in db.execute("SELECT event_type FROM events ORDER BY seq")]
    assert kinds.count("health_check_failed") >= 2  # one event per attempt that failed
    assert "bot_started" in kinds and kinds[-1] == "bot_stopped"


def test_a_second_instance_on_the_same_account_exits_3_naming_the_lock(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    database = tmp_path / "paper.db"
    held = FileInstanceLock(tmp_path, stem=database.name)
    asyncio.run(held.acquire("binance:default"))
    try:
        code = main(
            ["paper", "--database-url", f"sqlite:///{database}", "--no-progress", "--hours", "1"],
            env={"TRADECORE_LOGGING__FILE": ""},
        )
    finally:
        asyncio.run(held.release())
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 3
    assert len(err) == 1 and "lock" in err[0] and str(tmp_path) in err[0]


def units_of_the_runbook() -> list[dict[str, str]]:
    """Every systemd unit the runbook shows for `trade` (the single bot's, the template for
    many accounts), read as systemd reads it: a comment is a whole line starting # or ;."""
    text = (DOCS / "operations.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```ini\n(.*?)```", text, flags=re.S)
    units = [block for block in blocks if "ExecStart=" in block and "runner trade" in block]
    assert len(units) == 2, "the runbook shows a unit for one bot and a template for many"
    found = []
    for unit in units:
        settings: dict[str, str] = {}
        for line in unit.splitlines():
            line = line.strip()
            if "=" in line and not line.startswith(("[", "#", ";")):
                key, value = line.split("=", 1)
                settings[key.strip()] = value.strip()
        found.append(settings)
    return found


def test_the_runbooks_unit_restarts_the_bot_unless_the_configuration_or_the_lock_refused() -> None:
    for unit in units_of_the_runbook():
        assert unit["Restart"] in ("on-failure", "always")
        assert set(unit["RestartPreventExitStatus"].split()) == {"2", "3"}
        assert unit.get("KillSignal", "SIGTERM") in ("SIGTERM", "SIGINT")


def test_the_runbook_lists_every_exit_code() -> None:
    text = (DOCS / "operations.md").read_text(encoding="utf-8")
    table = re.search(r"\| exit code \|.*?\n\n", text, flags=re.S)
    assert table is not None, "operations.md has a table of exit codes"
    codes = set(re.findall(r"^\| \*\*(\d)\*\* \|", table.group(0), flags=re.M))
    assert codes == {"0", "1", "2", "3"}


async def test_a_stop_while_start_up_waits_for_the_venue_ends_at_once_and_frees_the_lock(
    tmp_path: Path,
) -> None:
    venue = FakeVenue.binance()
    venue.inject(Fault.server_error(Op.FETCH_MARKETS, times=1000))  # down for good
    database = tmp_path / "trade.db"
    config = Config(
        mode=Mode.DEMO,
        lock_dir=str(tmp_path / "locks"),
        health=HealthSettings(port=0),
        logging=LoggingSettings(file=""),
    )
    stop = asyncio.Event()
    container = trade_container(venue, database)
    trading = asyncio.create_task(run_trade(config, Secrets(), container=container, stop=stop))
    deadline = asyncio.get_running_loop().time() + 120
    while not database.exists() or "health_check_failed" not in kinds_in(database):
        assert not trading.done(), "trading ended instead of waiting for the venue"
        assert asyncio.get_running_loop().time() < deadline, "no attempt was journaled"
        await asyncio.sleep(0.05)
    stop.set()  # SIGTERM while it waits
    await asyncio.wait_for(trading, 5)  # no exception: a clean stop, exit 0
    lock = FileInstanceLock(tmp_path, stem=database.name)
    await lock.acquire("binance:default")
    await lock.release()


def kinds_in(database: Path) -> list[str]:
    try:
        with sqlite3.connect(database) as db:
            return [row[0] for row in db.execute("SELECT event_type FROM events ORDER BY seq")]
    except sqlite3.Error:
        return []
