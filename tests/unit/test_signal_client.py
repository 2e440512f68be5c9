"""The websocket signal client against a real websockets server on 127.0.0.1."""

import asyncio
import json
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from http import HTTPStatus
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.http11 import Request, Response

from tradecore.adapters.signals.buffer import ProtectiveBuffer
from tradecore.adapters.signals.websocket import (
    WebSocketSettings,
    WebSocketSignalSource,
    backoff_delay,
)
from tradecore.domain.events import EventType
from tradecore.domain.model import Side, Venue
from tradecore.domain.signals import Signal
from tradecore.ports.signals import SignalSource
from tradecore.testing import EventLog, SequentialIds

# ---------------------------------------------------------------------------------- fakes


class FakeClock:
    """Event times advance with each sleep; sleeps are short real waits (the server is real)."""

    def __init__(self) -> None:
        self.current = datetime(2026, 1, 1, tzinfo=UTC)
        self.sleeps: list[float] = []

    def now(self) -> datetime:
        return self.current

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.current += timedelta(seconds=seconds)
        await asyncio.sleep(seconds)


Handler = Callable[[ServerConnection, int], Awaitable[None]]


class SignalService:
    """A local signal service; `handler(socket, n)` serves the n-th connection (1-based)."""

    def __init__(self, handler: Handler, *, token: str | None = None) -> None:
        self._handler = handler
        self._token = token
        self.connections = 0
        self.headers: list[Headers] = []
        self.first_messages: list[str] = []
        self.port = 0
        self._server: Server | None = None

    async def start(self, port: int = 0) -> None:
        self._server = await serve(
            self._serve, "127.0.0.1", port, max_size=None, process_request=self._check_token
        )
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def _check_token(self, connection: ServerConnection, request: Request) -> Response | None:
        self.headers.append(request.headers)
        expected = f"Bearer {self._token}"
        if self._token and request.headers.get("Authorization") != expected:
            return connection.respond(HTTPStatus.UNAUTHORIZED, "bad token\n")
        return None

    async def _serve(self, socket: ServerConnection) -> None:
        self.connections += 1
        await self._handler(socket, self.connections)


def signal_frame(number: int, *, score_week: object = 50, **fields: Any) -> str:
    body: dict[str, Any] = {
        "id": f"sig-{number}",
        "symbol": "BTCUSDT",
        "exchange": "binance",
        "action": "BUY",
        "score_week": score_week,
        "score_month": 40,
        "timestamp": "2026-01-01T08:45:00Z",
        "created_at": "2026-01-01T08:46:00Z",
    }
    body.update(fields)
    return json.dumps(body)


def fast(url: str, **overrides: Any) -> WebSocketSettings:
    values: dict[str, Any] = {
        "url": url,
        "initial_backoff": 0.02,
        "max_backoff": 0.2,
        "jitter": 0.0,
        "close_timeout": 0.2,
        "open_timeout": 30.0,  # a handshake on a busy machine; no test waits it out
    }
    values.update(overrides)
    return WebSocketSettings(**values)


def client(settings: WebSocketSettings) -> tuple[WebSocketSignalSource, EventLog, FakeClock]:
    sink, clock = EventLog(), FakeClock()
    source = WebSocketSignalSource(settings, events=sink, clock=clock, ids=SequentialIds("id"))
    return source, sink, clock


async def eventually(condition: Callable[[], bool], timeout: float = 60.0) -> None:
    """Poll `condition` until it holds (no fixed sleeps); fail after `timeout` seconds."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.005)


async def take(stream: AsyncIterator[Signal], count: int, timeout: float = 60.0) -> list[Signal]:
    async def collect() -> list[Signal]:
        return [await anext(stream) for _ in range(count)]

    return await asyncio.wait_for(collect(), timeout)


async def hold_open(socket: ServerConnection) -> None:
    await socket.wait_closed()


# ------------------------------------------------------------------------ delivery & auth


async def test_valid_signals_arrive_as_domain_signals_and_are_journaled_as_received() -> None:
    async def handler(socket: ServerConnection, _: int) -> None:
        await socket.send(signal_frame(1, score_week="87.5", action="SELL", exchange="Bybit"))
        await hold_open(socket)

    service = SignalService(handler)
    await service.start()
    source, sink, _ = client(fast(service.url))
    try:
        [signal] = await take(source.signals(), 1)
    finally:
        await source.close()
        await service.stop()

    assert signal.id == "sig-1"
    assert (signal.venue, signal.side) == (Venue.BYBIT, Side.SHORT)
    assert signal.score_week == Decimal("87.5")
    [received] = sink.of(EventType.SIGNAL_RECEIVED)
    assert received.data["signal_id"] == "sig-1"
    assert (received.symbol, received.exchange) == ("BTCUSDT", "bybit")
    assert sink.events[0].type is EventType.WEBSOCKET_CONNECTED
    assert sink.events[-1].type is EventType.WEBSOCKET_DISCONNECTED  # closing is journaled too


async def test_the_token_is_sent_as_a_bearer_header_and_never_written_to_the_journal() -> None:
    async def handler(socket: ServerConnection, _: int) -> None:
        await socket.send(signal_frame(1))
        await hold_open(socket)

    service = SignalService(handler, token="s3cret-token")
    await service.start()
    source, sink, _ = client(fast(service.url + "/?token=s3cret-token", token="s3cret-token"))
    try:
        await take(source.signals(), 1)
    finally:
        await source.close()
        await service.stop()

    assert service.headers[0]["Authorization"] == "Bearer s3cret-token"
    assert "s3cret-token" not in repr(sink.events)


async def test_a_wrong_token_is_journaled_and_retried_without_stopping_the_client() -> None:
    async def handler(socket: ServerConnection, _: int) -> None:
        await hold_open(socket)

    service = SignalService(handler, token="right")
    await service.start()
    source, sink, _ = client(fast(service.url, token="wrong"))
    source.start()
    try:
        await eventually(lambda: len(sink.of(EventType.WEBSOCKET_DISCONNECTED)) >= 3)
    finally:
        await source.close()
        await service.stop()

    failures = sink.of(EventType.WEBSOCKET_DISCONNECTED)
    assert all(event.data["phase"] == "connecting" for event in failures)
    assert "401" in failures[0].data["reason"]
    assert not sink.of(EventType.WEBSOCKET_CONNECTED)


async def test_the_token_can_also_be_sent_as_a_first_auth_message() -> None:
    received: list[str] = []

    async def handler(socket: ServerConnection, _: int) -> None:
        received.append(str(await socket.recv()))
        await socket.send(signal_frame(1))
        await hold_open(socket)

    service = SignalService(handler)
    await service.start()
    source, _, _ = client(fast(service.url, token="tok", auth_message=True))
    try:
        await take(source.signals(), 1)
    finally:
        await source.close()
        await service.stop()

    assert json.loads(received[0]) == {"type": "auth", "token": "tok"}


async def test_without_a_token_no_authorization_header_is_sent() -> None:
    async def handler(socket: ServerConnection, _: int) -> None:
        await socket.send(signal_frame(1))
        await hold_open(socket)

    service = SignalService(handler)
    await service.start()
    source, _, _ = client(fast(service.url))
    try:
        await take(source.signals(), 1)
    finally:
        await source.close()
        await service.stop()

    assert "Authorization" not in service.headers[0]


# ------------------------------------------------------------------------------ faults


async def test_a_connection_dropped_mid_stream_is_reopened_and_each_signal_arrives_once() -> None:
    async def handler(socket: ServerConnection, connection: int) -> None:
        if connection == 1:
            for number in range(1, 4):
                await socket.send(signal_frame(number))
            await eventually(lambda: len(sink.of(EventType.SIGNAL_RECEIVED)) == 3)
            socket.transport.abort()  # no close frame: a network drop, not a goodbye
            return
        for number in range(1, 7):  # the service replays its backlog after a reconnect
            await socket.send(signal_frame(number))
        await hold_open(socket)

    service = SignalService(handler)
    await service.start()
    source, sink, _ = client(fast(service.url))
    try:
        signals = await take(source.signals(), 6)
        await eventually(lambda: len(sink.of(EventType.SIGNAL_FILTERED)) == 3)
    finally:
        await source.close()
        await service.stop()

    delivered = sorted(signal.id for signal in signals)
    assert delivered == sorted(f"sig-{n}" for n in range(1, 7))
    received = sorted(event.data["signal_id"] for event in sink.of(EventType.SIGNAL_RECEIVED))
    assert received == delivered  # everything journaled as received was delivered, once
    duplicates = sink.of(EventType.SIGNAL_FILTERED)
    assert sorted(event.data["signal_id"] for event in duplicates) == ["sig-1", "sig-2", "sig-3"]
    assert {event.data["reason"] for event in duplicates} == {"duplicate"}
    assert len(sink.of(EventType.WEBSOCKET_CONNECTED)) == 2
    assert sink.of(EventType.WEBSOCKET_DISCONNECTED)[0].data["phase"] == "connected"


async def test_a_restarted_service_is_reconnected_after_growing_backoff() -> None:
    async def first(socket: ServerConnection, _: int) -> None:
        await socket.send(signal_frame(1))
        await hold_open(socket)

    async def second(socket: ServerConnection, _: int) -> None:
        await socket.send(signal_frame(2))
        await hold_open(socket)

    service = SignalService(first)
    await service.start()
    source, sink, clock = client(fast(service.url, max_backoff=0.16))
    stream = source.signals()
    try:
        [before] = await take(stream, 1)
        await service.stop()
        # Down: every attempt is refused until the backoff has reached its cap.
        await eventually(lambda: len(sink.of(EventType.WEBSOCKET_DISCONNECTED)) >= 5)
        restarted = SignalService(second)
        await restarted.start(port=service.port)
        [after] = await take(stream, 1)
    finally:
        await source.close()
        await restarted.stop()

    assert (before.id, after.id) == ("sig-1", "sig-2")
    assert clock.sleeps[:5] == pytest.approx([0.02, 0.04, 0.08, 0.16, 0.16])
    assert len(sink.of(EventType.WEBSOCKET_CONNECTED)) == 2


async def test_a_slow_consumer_gets_the_100_best_signals_first_and_drops_are_journaled() -> None:
    scores = list(range(1, 151))
    random.Random(7).shuffle(scores)

    async def handler(socket: ServerConnection, _: int) -> None:
        for score in scores:
            await socket.send(signal_frame(score, score_week=score))
        await hold_open(socket)

    service = SignalService(handler)
    await service.start()
    source, sink, _ = client(fast(service.url))
    stream = source.signals()
    source.start()
    try:
        await eventually(lambda: len(sink.of(EventType.SIGNAL_RECEIVED)) == 150)
        signals = await take(stream, 100)
    finally:
        await source.close()
        await service.stop()

    assert [signal.score_week for signal in signals] == list(range(150, 50, -1))
    dropped = sink.of(EventType.SIGNAL_FILTERED)
    buffer_full = [event for event in dropped if event.data["reason"] == "buffer_full"]
    assert sorted(event.data["signal_id"] for event in buffer_full) == sorted(
        f"sig-{score}" for score in range(1, 51)
    )


async def test_a_service_that_stops_answering_pings_is_dropped_and_reconnected() -> None:
    async def handler(socket: ServerConnection, connection: int) -> None:
        if connection == 1:
            socket.transport.pause_reading()  # a hung service: pings go unanswered
            await eventually(lambda: bool(sink.of(EventType.WEBSOCKET_DISCONNECTED)))
            socket.transport.abort()
            return
        await socket.send(signal_frame(1))
        await hold_open(socket)

    service = SignalService(handler)
    await service.start()
    source, sink, _ = client(fast(service.url, ping_interval=0.05, ping_timeout=0.05))
    try:
        [signal] = await take(source.signals(), 1)
    finally:
        await source.close()
        await service.stop()

    assert signal.id == "sig-1"
    first_drop = sink.of(EventType.WEBSOCKET_DISCONNECTED)[0]
    assert first_drop.data["code"] == 1011  # keepalive ping timeout
    assert first_drop.data["phase"] == "connected"


async def test_close_ends_the_stream_and_journals_each_undelivered_signal() -> None:
    async def handler(socket: ServerConnection, _: int) -> None:
        for number in range(1, 4):
            await socket.send(signal_frame(number))
        await hold_open(socket)

    service = SignalService(handler)
    await service.start()
    source, sink, _ = client(fast(service.url))
    stream = source.signals()
    source.start()
    try:
        await eventually(lambda: len(sink.of(EventType.SIGNAL_RECEIVED)) == 3)
        await source.close()
        leftovers = [signal async for signal in stream]
    finally:
        await service.stop()

    assert leftovers == []
    dropped = sink.of(EventType.SIGNAL_FILTERED)
    assert sorted(e.data["signal_id"] for e in dropped) == ["sig-1", "sig-2", "sig-3"]
    assert {e.data["reason"] for e in dropped} == {"client_closed"}
    assert not source.connected


# ---------------------------------------------------------------------- pure properties


@settings(max_examples=200, deadline=None)
@given(
    attempt=st.integers(min_value=0, max_value=10_000),
    initial=st.floats(min_value=0.01, max_value=5.0),
    fraction=st.floats(min_value=0.0, max_value=0.999),
)
def test_backoff_grows_exponentially_and_never_exceeds_the_cap(
    attempt: int, initial: float, fraction: float
) -> None:
    policy = WebSocketSettings(initial_backoff=initial, max_backoff=60.0, jitter=0.2)
    undisturbed = min(60.0, initial * 2.0 ** min(attempt, 20))
    delay = backoff_delay(attempt, policy, fraction)
    assert 0.8 * undisturbed - 1e-9 <= delay <= 60.0
    assert delay <= undisturbed + 1e-9


def test_defaults_are_the_documented_ones_and_the_client_is_a_signal_source() -> None:
    defaults = WebSocketSettings()
    assert isinstance(client(defaults)[0], SignalSource)
    assert defaults.url == "ws://127.0.0.1:8765"
    assert (defaults.ping_interval, defaults.max_backoff, defaults.buffer_capacity) == (20, 60, 100)
    assert max(backoff_delay(n, defaults, 0.0) for n in range(100)) == 60.0


@pytest.mark.parametrize(
    "bad",
    [
        {"url": "http://127.0.0.1:8765"},
        {"initial_backoff": 120.0},
        {"initial_backoff": 0.0},
        {"jitter": 1.0},
        {"backoff_multiplier": 0.5},
    ],
)
def test_settings_that_cannot_work_are_refused_at_start_up(bad: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        WebSocketSettings(**bad)


def test_settings_never_show_the_token() -> None:
    assert "s3cret" not in repr(WebSocketSettings(token="s3cret"))


def make_signal(number: int, score_week: int, score_month: int = 0) -> Signal:
    moment = datetime(2026, 1, 1, 8, 45, tzinfo=UTC)
    return Signal(
        id=f"sig-{number}",
        symbol="ETHUSDT",
        venue=Venue.BINANCE,
        side=Side.LONG,
        score_week=Decimal(score_week),
        score_month=Decimal(score_month),
        wave=moment,
        created_at=moment,
    )


@settings(max_examples=150, deadline=None)
@given(
    offers=st.lists(
        st.tuples(st.integers(0, 60), st.integers(-5, 5), st.integers(0, 5)), max_size=80
    ),
    capacity=st.integers(1, 20),
)
def test_the_buffer_keeps_the_best_distinct_signals_and_yields_them_best_first(
    offers: list[tuple[int, int, int]], capacity: int
) -> None:
    buffer = ProtectiveBuffer(capacity=capacity)
    first_of: dict[str, tuple[int, Signal]] = {}
    evicted: list[Signal] = []
    for arrival, (number, week, month) in enumerate(offers):
        signal = make_signal(number, week, month)
        outcome = buffer.offer(signal)
        assert outcome.accepted == (signal.id not in first_of)
        first_of.setdefault(signal.id, (arrival, signal))
        evicted += [outcome.evicted] if outcome.evicted else []
        assert len(buffer) <= capacity

    delivered = buffer.drain()
    # Expected: among the first copy of each id, the best `capacity` by score, older first.
    ranked = sorted(
        first_of.values(), key=lambda item: (-item[1].score_week, -item[1].score_month, item[0])
    )
    assert delivered == [signal for _, signal in ranked[:capacity]]
    assert len(delivered) + len(evicted) == len(first_of)  # every drop was reported


async def test_a_graceful_close_is_not_reported_as_the_signal_stream_down() -> None:
    from tradecore.app.alerting import alert_for

    async def handler(socket: ServerConnection, _: int) -> None:
        await hold_open(socket)

    service = SignalService(handler)
    await service.start()
    source, sink, _ = client(fast(service.url))
    source.start()
    try:
        await eventually(lambda: source.connected)
        await source.close()
    finally:
        await service.stop()

    closed = sink.of(EventType.WEBSOCKET_DISCONNECTED)
    assert len(closed) == 1
    assert [alert_for(e) for e in closed] == [None]  # nobody is paged for our own stop
