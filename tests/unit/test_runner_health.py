"""`/health` and `/metrics` over real HTTP, on a free port, wired by the runner's container with
the simulated venue in place of a real one (a provider override, as an operator's test would)."""

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import attrs
import pytest
from dependency_injector import providers

from tradecore.app.kernel import Kernel
from tradecore.app.open_position import OpenRequest
from tradecore.domain.events import EventType, Severity
from tradecore.domain.model import OrderSide, Side
from tradecore.ports.exchange import RejectReason
from tradecore.testing import FakeVenue, Fault, Op
from tradecore.wiring.config import Config, HealthSettings, LoggingSettings, Secrets
from tradecore.wiring.container import Container
from tradecore.wiring.lifecycle import resolve, shutdown


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@attrs.define
class Running:
    container: Container
    kernel: Kernel
    venue: FakeVenue
    port: int

    async def get(self, path: str) -> tuple[int, str]:
        async with (
            aiohttp.ClientSession() as client,
            client.get(f"http://127.0.0.1:{self.port}{path}") as answer,
        ):
            return answer.status, await answer.text()

    async def health(self) -> tuple[int, dict[str, Any]]:
        async with (
            aiohttp.ClientSession() as client,
            client.get(f"http://127.0.0.1:{self.port}/health") as answer,
        ):
            return answer.status, await answer.json()


@pytest.fixture
async def running(tmp_path: Path) -> AsyncIterator[Running]:
    async with started(tmp_path) as ready:
        yield ready


@contextlib.asynccontextmanager
async def started(
    tmp_path: Path, *, signals: Any = None, loops: bool = False
) -> AsyncIterator[Running]:
    port = free_port()
    venue = FakeVenue.binance()
    config = Config(
        health=HealthSettings(port=port),
        logging=LoggingSettings(file=""),
    )
    container = Container()
    container.config.override(config)
    container.secrets.override(Secrets())
    container.clock.override(venue.clock)
    container.paper_exchange.override(venue.exchange)
    container.database_url.override(f"sqlite:///{tmp_path / 'health.db'}")
    container.spool_path.override(str(tmp_path / "health.spool"))
    if signals is not None:
        container.signals.override(providers.Object(signals))
    kernel = await resolve(container.kernel())
    await resolve(container.health_server())
    await kernel.start(loops=loops)
    try:
        yield Running(container=container, kernel=kernel, venue=venue, port=port)
    finally:
        await kernel.stop()
        await shutdown(container)


async def test_health_is_200_with_every_part_while_the_kernel_runs(running: Running) -> None:
    status, body = await running.health()
    assert status == 200
    assert body["status"] == "ok" and body["running"] is True
    assert body["database"]["ok"] is True
    assert body["venues"] == {
        "binance": {"ok": True, "last_failure": None, "marks_connected": None}
    }
    assert body["signal_stream"]["kind"] == "websocket"
    assert body["positions"] == 0 and body["unprotected"] == 0
    assert body["last_signal"] is None
    assert body["uptime_seconds"] == 0.0  # virtual time has not moved
    await running.venue.advance(90)
    _, later = await running.health()
    assert later["uptime_seconds"] == 90.0


async def test_health_counts_positions_from_the_journal(running: Running) -> None:
    await running.venue.open_position("BTCUSDT", Side.LONG, "0.01")
    await running.venue.place_stop("BTCUSDT", OrderSide.SELL, "0.01", "48000")
    await running.kernel.services.sync.sync()  # adopts the position the venue reports
    _, body = await running.health()
    assert body["positions"] == 1


async def test_health_is_503_while_a_protection_pass_left_a_position_bare(
    running: Running,
) -> None:
    # the application's view (the last pass's), served: not a count the runner keeps
    venue, services = running.venue, running.kernel.services
    await venue.open_position("BTCUSDT", Side.LONG, "0.01")  # by hand: no stop
    venue.inject(Fault.reject(RejectReason.TOO_MANY_CONDITIONAL_ORDERS, Op.STOP_ORDER, times=99))
    await services.sync.sync()
    await services.guard.check()  # every stop refused: left bare
    status, body = await running.health()
    assert status == 503
    assert body["unprotected"] == 1 and body["unprotected_symbols"] == ["BTCUSDT"]
    _, metrics = await running.get("/metrics")
    assert "tradecore_positions_unprotected 1.0" in metrics
    venue.engine.faults.clear()
    await services.guard.check()  # the stop is placed: protected again
    status, body = await running.health()
    assert status == 200 and body["unprotected"] == 0 and body["unprotected_symbols"] == []


async def test_health_is_503_after_the_kernel_stops(running: Running) -> None:
    await running.kernel.stop()
    status, body = await running.health()
    assert status == 503 and body["running"] is False


async def test_metrics_are_prometheus_text_with_the_promised_series(running: Running) -> None:
    running.kernel.services.recorder.record(
        EventType.CRITICAL_ERROR, severity=Severity.CRITICAL, error="test"
    )
    await running.kernel.parts.events.flush()
    status, text = await running.get("/metrics")
    assert status == 200
    for series in (
        "tradecore_positions_open 0.0",
        "tradecore_positions_unprotected 0.0",
        "tradecore_stop_moves_total 0.0",
        "tradecore_trailing_activations_total 0.0",
        "tradecore_up 1.0",
        'tradecore_events_total{type="bot_started"} 1.0',
        'tradecore_errors_total{kind="critical_error"} 1.0',
        'tradecore_order_latency_seconds_count{operation="entry"} 0.0',
    ):
        assert series in text
    written = next(
        line for line in text.splitlines() if line.startswith("tradecore_events_written_total")
    )
    assert Decimal(written.split()[-1]) >= 2  # bot_started and the recovery events at least


async def test_an_unknown_path_is_404(running: Running) -> None:
    status, _ = await running.get("/admin")
    assert status == 404


async def test_an_open_shows_in_positions_and_in_the_order_latencies(running: Running) -> None:
    rules = running.venue.rules("BTCUSDT")
    request = OpenRequest(symbol="BTCUSDT", side=Side.LONG, quantity=Decimal("0.01"), rules=rules)
    result = await running.kernel.services.opener.open(request)
    assert result.opened
    _, body = await running.health()
    assert body["positions"] == 1 and body["unprotected"] == 0
    _, text = await running.get("/metrics")
    assert "tradecore_positions_open 1.0" in text
    assert 'tradecore_order_latency_seconds_count{operation="entry"} 1.0' in text
    assert 'tradecore_order_latency_seconds_count{operation="stop"} 1.0' in text


async def test_health_shows_what_the_protection_pass_left_bare_not_what_it_fixed(
    running: Running,
) -> None:
    # Issue 10, story 4: one found bare and fixed, one the guard could not protect.
    venue, services = running.venue, running.kernel.services
    await venue.open_position("BTCUSDT", Side.LONG, "0.01")
    await venue.open_position("ETHUSDT", Side.LONG, "0.1")
    venue.inject(
        Fault.reject(
            RejectReason.TOO_MANY_CONDITIONAL_ORDERS, Op.STOP_ORDER, symbol="ETHUSDT", times=99
        )
    )
    await services.sync.sync()
    await services.guard.check()
    status, body = await running.health()
    assert status == 503 and body["unprotected"] == 1
    assert body["unprotected_symbols"] == ["ETHUSDT"]
    _, metrics = await running.get("/metrics")
    assert "tradecore_positions_unprotected 1.0" in metrics


async def test_a_database_outage_noticed_by_a_loop_is_not_blamed_on_the_venue(
    running: Running,
) -> None:
    # What the kernel records when a pass could not read the journal (issue 12, item 6):
    # once the database answers again, /health is green at once, not 5 minutes later.
    running.kernel.services.recorder.record(
        EventType.HEALTH_CHECK_FAILED,
        error="database unavailable: connection refused",
        data={"component": "database", "writes_waiting": 3},
    )
    status, body = await running.health()
    assert status == 200, body
    assert body["venues"]["binance"]["ok"] is True and body["database"]["ok"] is True


class BrokenSource:
    """A signal source whose stream fails: the signals loop dies."""

    async def signals(self) -> AsyncIterator[Any]:
        raise RuntimeError("the stream broke")
        yield  # an async generator

    async def close(self) -> None:
        return None


async def test_health_is_503_and_names_the_loop_when_a_loop_died(tmp_path: Path) -> None:
    async with started(tmp_path, signals=BrokenSource(), loops=True) as ready:
        for _ in range(100):
            status, body = await ready.health()
            if status == 503:
                break
            await asyncio.sleep(0.02)
        assert status == 503, body
        assert body["loops"]["signals"] == "died"
        assert body["loops"]["protection"] == "running"
