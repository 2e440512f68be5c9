"""The websocket signal client: one connection, reopened forever, feeding a protective buffer."""

import asyncio
import contextlib
import json
import random
from collections.abc import AsyncIterator, Callable
from urllib.parse import urlsplit

import attrs
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidURI
from websockets.frames import CloseCode
from websockets.uri import parse_uri

from tradecore.adapters.signals.buffer import DEFAULT_CAPACITY, ProtectiveBuffer
from tradecore.adapters.signals.codec import MAX_FRAME_BYTES, DecodeFailure
from tradecore.adapters.signals.intake import Intake
from tradecore.adapters.signals.journal import SignalJournal
from tradecore.domain.signals import Signal
from tradecore.domain.waves import SignalLimits
from tradecore.ports.clock import Clock, IdGenerator
from tradecore.ports.events import EventSink

DEFAULT_URL = "ws://127.0.0.1:8765"
# Close codes the library sends when a *frame* was bad: each is a rejected frame as well.
_INPUT_CLOSE_CODES: dict[int, DecodeFailure] = {
    CloseCode.MESSAGE_TOO_BIG: DecodeFailure.TOO_LARGE,
    CloseCode.INVALID_DATA: DecodeFailure.BAD_UNICODE,
}


@attrs.frozen(kw_only=True)
class WebSocketSettings:
    """How to reach the signal service and how hard to try. Times are in seconds."""

    url: str = attrs.field(default=DEFAULT_URL)
    token: str | None = attrs.field(default=None, repr=False)
    auth_message: bool = False  # also send {"type": "auth", "token": ...} as the first frame
    initial_backoff: float = 1.0
    max_backoff: float = attrs.field(default=60.0)
    backoff_multiplier: float = 2.0
    jitter: float = 0.2  # a delay is shortened by up to this fraction, at random
    ping_interval: float = 20.0
    ping_timeout: float = 20.0
    open_timeout: float = 10.0
    close_timeout: float = 5.0
    buffer_capacity: int = DEFAULT_CAPACITY
    max_frame_bytes: int = MAX_FRAME_BYTES
    proxy: str | None = None  # None: connect directly, whatever the environment says

    @url.validator
    def _check_url(self, _: "attrs.Attribute[str]", value: str) -> None:
        try:
            parse_uri(value)
        except InvalidURI as exc:  # a configuration error: refuse it at start-up
            raise ValueError(f"signal service url must be ws:// or wss://: {exc}") from None

    @max_backoff.validator
    def _check_backoff(self, _: "attrs.Attribute[float]", value: float) -> None:
        if not 0 < self.initial_backoff <= value:
            raise ValueError("backoff must satisfy 0 < initial_backoff <= max_backoff")
        if self.backoff_multiplier < 1 or not 0 <= self.jitter < 1:
            raise ValueError("backoff_multiplier must be >= 1 and jitter in [0, 1)")


def backoff_delay(attempt: int, settings: WebSocketSettings, fraction: float) -> float:
    """Delay before reconnect number `attempt` (0-based): exponential, capped, with jitter.

    `fraction` in [0, 1) picks the jitter; the delay stays within
    [(1 - jitter) * base, base] so it never exceeds `max_backoff`.
    """
    base = settings.initial_backoff
    for _ in range(attempt):  # stops at the cap, so a huge attempt number cannot overflow
        base *= settings.backoff_multiplier
        if base >= settings.max_backoff:
            base = settings.max_backoff
            break
    return base * (1 - settings.jitter * fraction)


def _public_address(url: str) -> str:
    # A token may ride in the query string; the journal gets the address without it.
    parts = urlsplit(url)
    host = parts.hostname or ""
    host = f"[{host}]" if ":" in host else host
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}{parts.path}"


class WebSocketSignalSource:
    """A `SignalSource` reading JSON signals from a websocket service.

    Each text frame is decoded here and validated by the domain; what passes goes into a
    buffer of `buffer_capacity` signals kept best-first, from which `signals()` yields.
    Nothing the service sends stops the client: bad frames become `signal_rejected` events,
    drops become `websocket_disconnected` events followed by a reconnect with backoff.
    The connection opens on the first call to `signals()` (or `start()`), never in the
    constructor.
    """

    def __init__(
        self,
        settings: WebSocketSettings,
        *,
        events: EventSink,
        clock: Clock,
        ids: IdGenerator,
        limits: SignalLimits | None = None,
        jitter_source: Callable[[], float] = random.random,
    ) -> None:
        self._settings = settings
        self._clock = clock
        self._jitter_source = jitter_source
        self._journal = SignalJournal(
            events=events, clock=clock, ids=ids, source=_public_address(settings.url)
        )
        self._intake = Intake(
            journal=self._journal, limits=limits, max_bytes=settings.max_frame_bytes
        )
        self._buffer = ProtectiveBuffer(capacity=settings.buffer_capacity)
        self._ready = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        self._connected = False
        self.connections = 0  # successful handshakes so far, for health and tests

    @property
    def connected(self) -> bool:
        return self._connected

    def start(self) -> None:
        """Start connecting in the background (idempotent)."""
        if self._task is None and not self._closed:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="signal-client")

    async def signals(self) -> AsyncIterator[Signal]:
        """Signals best-first as they arrive, until `close()`."""
        self.start()
        while True:
            if len(self._buffer):
                yield self._buffer.pop_best()
                continue
            if self._closed:
                return
            self._ready.clear()
            await self._ready.wait()

    async def close(self) -> None:
        """Stop reading; signals still buffered are recorded as dropped, not delivered."""
        if self._closed:
            return
        self._closed = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._connected:
            self._connected = False
            # our own stop, not the stream failing: nobody is paged for it (graceful)
            self._journal.disconnected("closed by the client", graceful=True)
        for signal in self._buffer.drain():
            self._journal.dropped(signal, "client_closed")
        self._ready.set()

    async def _run(self) -> None:
        attempt = 0
        while not self._closed:
            if await self._session():
                attempt = 0
            delay = backoff_delay(attempt, self._settings, self._jitter_source())
            attempt += 1
            await self._clock.sleep(delay)

    async def _session(self) -> bool:
        """One connection from handshake to drop; True if any frame arrived on it."""
        frames = 0
        try:
            async with self._connect() as socket:
                self._on_connected()
                await self._authenticate(socket)
                async for frame in socket:
                    frames += 1
                    self._on_frame(frame)
            self._on_drop("closed by the service", socket.close_code, frames)
        except ConnectionClosed as exc:
            self._on_closed(exc, frames)
        except Exception as exc:  # refused, timed out, bad handshake: all worth another try
            self._on_drop(f"{type(exc).__name__}: {exc}", None, frames)
        return frames > 0

    def _connect(self) -> connect:
        settings = self._settings
        headers = {"Authorization": f"Bearer {settings.token}"} if settings.token else None
        return connect(
            settings.url,
            additional_headers=headers,
            open_timeout=settings.open_timeout,
            close_timeout=settings.close_timeout,
            ping_interval=settings.ping_interval,
            ping_timeout=settings.ping_timeout,
            max_size=settings.max_frame_bytes,
            proxy=settings.proxy,
        )

    async def _authenticate(self, socket: ClientConnection) -> None:
        if self._settings.token and self._settings.auth_message:
            await socket.send(json.dumps({"type": "auth", "token": self._settings.token}))

    def _on_connected(self) -> None:
        self._connected = True
        self.connections += 1
        self._journal.connected(connection=self.connections)

    def _on_frame(self, frame: str | bytes) -> None:
        signal = self._intake.take(frame)
        if signal is None:
            return
        offered = self._buffer.offer(signal)
        if not offered.accepted:
            self._journal.duplicate(signal.id)
            return
        self._journal.received(signal)
        if offered.evicted is not None:
            self._journal.dropped(offered.evicted, "buffer_full")
        self._ready.set()

    def _on_closed(self, exc: ConnectionClosed, frames: int) -> None:
        sent = exc.sent
        if sent is not None and sent.code in _INPUT_CLOSE_CODES:
            # The library refuses such a frame by closing the connection, before reading it all.
            detail = f"{sent.reason}; the connection was closed and is reopened"
            self._journal.rejected(_INPUT_CLOSE_CODES[sent.code], detail, "")
        code = exc.rcvd.code if exc.rcvd is not None else (sent.code if sent else None)
        self._on_drop(str(exc), int(code) if code is not None else None, frames)

    def _on_drop(self, reason: str, code: int | None, frames: int) -> None:
        if self._closed:
            return
        was_connected, self._connected = self._connected, False
        self._journal.disconnected(
            reason, code=code, frames=frames, phase="connected" if was_connected else "connecting"
        )
