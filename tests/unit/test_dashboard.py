"""The dashboard over real HTTP: served by the bot on its health port (the runner's container,
the simulated venue in place of a real one) and by `python -m runner dashboard` from a
database; read-only, on loopback unless a token guards it. The page itself, in a browser:
tests/scenario/test_dashboard_browser.py."""

import asyncio
import contextlib
import json
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from runner.__main__ import main
from runner.dashboard import run_dashboard
from tradecore.adapters.dashboard import Feed, binding_problem
from tradecore.app.kernel import Kernel
from tradecore.domain.aged import AgedParams
from tradecore.domain.model import OrderSide, Side
from tradecore.testing import FakeVenue
from tradecore.wiring.config import Config, HealthSettings, LoggingSettings, Secrets
from tradecore.wiring.container import Container
from tradecore.wiring.dashboard import dashboard_mounts
from tradecore.wiring.lifecycle import resolve, shutdown

TOKEN = "s3cret-dashboard-token"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextlib.asynccontextmanager
async def bot(tmp_path: Path, *, token: str | None = None) -> AsyncIterator[tuple[int, Kernel]]:
    port = free_port()
    venue = FakeVenue.binance()
    container = Container()
    container.config.override(
        Config(health=HealthSettings(port=port), logging=LoggingSettings(file=""))
    )
    container.secrets.override(Secrets(dashboard_token=token))
    container.clock.override(venue.clock)
    container.paper_exchange.override(venue.exchange)
    container.database_url.override(f"sqlite:///{tmp_path / 'bot.db'}")
    container.spool_path.override(str(tmp_path / "bot.spool"))
    kernel = await resolve(container.kernel())
    await resolve(container.health_server())
    await kernel.start(loops=False)
    await venue.open_position("BTCUSDT", Side.LONG, "0.01")
    await venue.place_stop("BTCUSDT", OrderSide.SELL, "0.01", "48000")
    await kernel.services.sync.sync()  # adopts the position the venue reports
    try:
        yield port, kernel
    finally:
        await kernel.stop()
        await shutdown(container)


async def get(port: int, path: str, **options: object) -> tuple[int, str, aiohttp.ClientResponse]:
    async with (
        aiohttp.ClientSession() as client,
        client.get(f"http://127.0.0.1:{port}{path}", **options) as answer,  # type: ignore[arg-type]
    ):
        return answer.status, await answer.text(), answer


async def test_the_bot_serves_its_dashboard_on_the_health_port(tmp_path: Path) -> None:
    async with bot(tmp_path) as (port, kernel):
        status, page, _ = await get(port, "/dashboard")
        assert status == 200 and "<title>tradecore dashboard</title>" in page
        status, text, _ = await get(port, "/dashboard/view.json")
        _, health, _ = await get(port, "/health")
        [held] = await kernel.services.store.positions.open_positions()

    assert status == 200
    view = json.loads(text)
    assert view["source"] == "bot"
    [position] = view["positions"]
    assert (position["symbol"], position["side"]) == ("BTCUSDT", "long")
    assert position["stop"] == str(held.stop_price) and held.stop_price is not None
    assert view["unprotected"]["count"] == 0
    assert view["health"]["status"] == json.loads(health)["status"]


async def test_with_a_token_every_dashboard_route_asks_for_it(tmp_path: Path) -> None:
    async with bot(tmp_path, token=TOKEN) as (port, _):
        for path in ("/dashboard", "/dashboard/view.json", "/dashboard/stream"):
            status, text, _ = await get(port, path)
            assert status == 401, path
            assert TOKEN not in text
        status, _, _ = await get(port, "/dashboard?token=wrong")
        assert status == 401
        bearer = {"Authorization": f"Bearer {TOKEN}"}
        status, _, _ = await get(port, "/dashboard/view.json", headers=bearer)
        assert status == 200
        status, _, answer = await get(port, f"/dashboard?token={TOKEN}", allow_redirects=False)
        assert status == 303
        assert answer.headers["Location"] == "/dashboard"  # the token leaves the address
        assert "HttpOnly" in answer.headers["Set-Cookie"]
        health, _, _ = await get(port, "/health")
        assert health == 200  # /health and /metrics need no token


def test_beyond_loopback_the_dashboard_needs_a_token() -> None:
    assert binding_problem("127.0.0.1", None) is None
    assert binding_problem("::1", None) is None
    assert binding_problem("localhost", None) is None
    problem = binding_problem("0.0.0.0", None)
    assert problem is not None and "TRADECORE_DASHBOARD_TOKEN" in problem
    assert binding_problem("0.0.0.0", "t") is None
    feed = Feed(lambda: asyncio.sleep(0, result={}))
    assert dashboard_mounts(feed, "0.0.0.0", None) == ()  # the health server serves no page
    assert len(dashboard_mounts(feed, "0.0.0.0", "t")) == 1


def test_the_dashboard_command_refuses_another_address_without_a_token(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite:///{tmp_path / 'x.db'}"
    code = main(["dashboard", "--host", "0.0.0.0", "--database", url], env={})
    assert code == 2
    assert "TRADECORE_DASHBOARD_TOKEN" in capsys.readouterr().err


async def test_the_dashboard_command_serves_a_past_sessions_database(tmp_path: Path) -> None:
    async with bot(tmp_path) as (_, kernel):
        [held] = await kernel.services.store.positions.open_positions()
    # the session ran and stopped; its database stays
    port, stop = free_port(), asyncio.Event()
    serving = asyncio.create_task(
        run_dashboard(
            f"sqlite:///{tmp_path / 'bot.db'}",
            host="127.0.0.1",
            port=port,
            token=None,
            aged=AgedParams(),
            stop=stop,
        )
    )
    try:
        for _ in range(100):  # until it listens
            with contextlib.suppress(aiohttp.ClientConnectionError):
                status, text, _ = await get(port, "/dashboard/view.json")
                break
            await asyncio.sleep(0.05)
        view = json.loads(text)
        assert status == 200 and view["source"] == "database"
        [position] = view["positions"]
        assert (position["symbol"], position["stop"]) == ("BTCUSDT", str(held.stop_price))
        kernel = next(c for c in view["health"]["components"] if c["name"] == "kernel")
        assert kernel["ok"] is False and kernel["detail"].startswith("stopped")
        async with (
            aiohttp.ClientSession() as client,
            client.get(f"http://127.0.0.1:{port}/dashboard/stream") as stream,
        ):
            first = await stream.content.readuntil(b"\n\n")
            assert first.startswith(b"event: view\ndata: {")
            stop.set()  # an open page must not hold the server's stop up (aiohttp waits 60 s)
            assert await asyncio.wait_for(serving, 10) == 0
    finally:
        stop.set()
        await asyncio.gather(serving, return_exceptions=True)
