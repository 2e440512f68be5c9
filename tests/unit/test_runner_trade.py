"""`trade`: the runner's container on a venue (here the simulated one, put in place of ccxt's by
a provider override), on the wall clock, until it is told to stop."""

import asyncio
import json
import socket
import sqlite3
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from dependency_injector import providers

from runner.trade import run_trade
from tradecore.adapters.account_lock import account_key, machine_lock
from tradecore.adapters.clock import SystemClock
from tradecore.adapters.sqlite.lock import FileInstanceLock
from tradecore.domain.leverage import MarginMode
from tradecore.domain.model import Side, Venue
from tradecore.testing import FakeVenue
from tradecore.wiring.config import Config, HealthSettings, LoggingSettings, Mode, Secrets
from tradecore.wiring.container import Container, SignalSpec
from tradecore.wiring.errors import StartupError
from tradecore.wiring.lifecycle import resolve, shutdown


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def healthy(port: int, *, within: float = 120.0) -> dict[str, Any]:
    """Poll /health until it answers 200 (the kernel is up and everything is protected)."""
    deadline = asyncio.get_running_loop().time() + within
    async with aiohttp.ClientSession() as client:
        while True:
            try:
                async with client.get(f"http://127.0.0.1:{port}/health") as answer:
                    if answer.status == 200:
                        body: dict[str, Any] = await answer.json()
                        return body
            except aiohttp.ClientConnectionError:
                pass
            assert asyncio.get_running_loop().time() < deadline, "never became healthy"
            await asyncio.sleep(0.05)


async def test_trade_adopts_and_protects_what_it_finds_then_stops_leaving_it_protected(
    tmp_path: Path,
) -> None:
    venue = FakeVenue.binance()
    await venue.open_position("ETHUSDT", Side.LONG, "0.5")  # opened by hand, no stop
    port = free_port()
    database = tmp_path / "trade.db"
    container = Container()
    container.venue.override(providers.Object(venue.exchange))
    container.database_url.override(f"sqlite:///{database}")
    container.spool_path.override(str(tmp_path / "trade.spool"))
    container.signal_spec.override(SignalSpec(kind="none"))
    config = Config(
        mode=Mode.DEMO,
        lock_dir=str(tmp_path / "locks"),
        health=HealthSettings(port=port),
        logging=LoggingSettings(file=""),
    )
    stop = asyncio.Event()
    trading = asyncio.create_task(run_trade(config, Secrets(), container=container, stop=stop))
    body = await healthy(port)
    assert body["positions"] == 1 and body["unprotected"] == 0
    assert len(venue.stops("ETHUSDT")) == 1

    stop.set()
    await asyncio.wait_for(trading, 30)
    assert venue.position("ETHUSDT") is not None  # stopping never closes a position…
    assert len(venue.stops("ETHUSDT")) == 1  # …nor takes its stop away
    account = account_key("binance", "demo", None)
    for lock in (FileInstanceLock(tmp_path, stem=database.name), machine_lock(tmp_path / "locks")):
        await lock.acquire(account)  # both released on the way out
        await lock.release()
    with sqlite3.connect(database) as db:
        kinds = [row[0] for row in db.execute("SELECT event_type FROM events ORDER BY seq")]
    assert "missing_position_added" in kinds and kinds[-1] == "bot_stopped"


def urls_of(exchange: Any) -> str:
    return json.dumps(exchange.client.urls["api"])


@pytest.mark.parametrize("venue", [Venue.BINANCE, Venue.BYBIT])
async def test_the_container_trades_on_the_demo_account_unless_the_mode_is_live(
    tmp_path: Path, venue: Venue
) -> None:
    keys = Secrets(
        binance_api_key="k", binance_api_secret="s", bybit_api_key="k", bybit_api_secret="s"
    )
    found = {}
    for mode in (Mode.DEMO, Mode.LIVE):
        container = Container()
        container.config.override(Config(mode=mode, venue=venue))
        container.secrets.override(keys)
        container.clock.override(SystemClock())
        container.database_url.override(f"sqlite:///{tmp_path / f'{mode.value}.db'}")
        container.spool_path.override(str(tmp_path / f"{mode.value}.spool"))
        try:
            exchange = await resolve(container.exchange())  # no request is sent yet
            found[mode] = urls_of(exchange)
            assert exchange.venue is venue
        finally:
            await shutdown(container)
    assert "demo" in found[Mode.DEMO]
    assert "demo" not in found[Mode.LIVE]


async def test_the_container_refuses_to_build_a_venue_without_keys(tmp_path: Path) -> None:
    container = Container()
    container.config.override(Config(mode=Mode.DEMO))
    container.secrets.override(Secrets())
    container.clock.override(SystemClock())
    container.database_url.override(f"sqlite:///{tmp_path / 'x.db'}")
    with pytest.raises(StartupError, match="TRADECORE_BINANCE_API_KEY"):
        await resolve(container.exchange())
    await shutdown(container)


async def test_trade_refuses_to_start_in_one_line_when_the_bybit_accounts_margin_mode_differs(
    tmp_path: Path,
) -> None:
    venue = FakeVenue.bybit(margin_mode=MarginMode.CROSS)  # the account; configured: isolated
    container = Container()
    container.venue.override(providers.Object(venue.exchange))
    container.database_url.override(f"sqlite:///{tmp_path / 'trade.db'}")
    container.spool_path.override(str(tmp_path / "trade.spool"))
    container.signal_spec.override(SignalSpec(kind="none"))
    config = Config(
        mode=Mode.DEMO,
        venue=Venue.BYBIT,
        lock_dir=str(tmp_path / "locks"),
        health=HealthSettings(port=0),
        logging=LoggingSettings(file=""),
    )

    with pytest.raises(StartupError) as refused:
        await asyncio.wait_for(run_trade(config, Secrets(), container=container), 60)

    message = str(refused.value)
    assert "\n" not in message
    assert "margin mode is cross" in message and "switch the account to isolated" in message
    assert venue.books.fills == []  # nothing traded
