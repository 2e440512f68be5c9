"""Mark prices as a stream: a websocket watcher where there is one, REST polling when silent.

`MarkFeed` runs a watcher (ccxt.pro `watch_mark_prices` / `watch_ticker`, passed in as
`watch`) and a silence monitor on the `Clock`. When the watcher fails, the drop is
reported, and it resubscribes after a backoff; when it has said nothing for `silence_limit`
seconds (60 by default), the monitor polls the REST mark every `poll_interval` until the
stream speaks again. Without a watcher it simply polls. Each symbol's first read is
delivered (its current mark: the port's stream opens with it), then only changes.
"""

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import datetime
from decimal import Decimal

from tradecore.domain.events import Event, EventType
from tradecore.domain.model import Venue
from tradecore.domain.orders import MarkTick
from tradecore.ports.clock import Clock, IdGenerator
from tradecore.ports.events import EventSink

StatusCallback = Callable[[bool, str], None]  # (connected, detail)
Poll = Callable[[Sequence[str]], Awaitable[Mapping[str, Decimal]]]
Watch = Callable[[Sequence[str]], Awaitable[Mapping[str, Decimal]]]


def event_status(sink: EventSink, clock: Clock, ids: IdGenerator, venue: Venue) -> StatusCallback:
    """A status callback that records each drop and recovery as an event."""

    def report(connected: bool, detail: str) -> None:
        kind = EventType.WEBSOCKET_CONNECTED if connected else EventType.WEBSOCKET_DISCONNECTED
        sink.emit(
            Event(
                id=ids.new_uuid(),
                type=kind,
                created_at=clock.now(),
                data={"stream": "mark_price", "detail": detail[:500]},
                exchange=venue.value,
            )
        )

    return report


class MarkFeed:
    """An async iterator of `MarkTick`s for some plain symbols."""

    def __init__(
        self,
        venue: Venue,
        symbols: Sequence[str],
        *,
        clock: Clock,
        poll: Poll,
        watch: Watch | None = None,
        on_status: StatusCallback | None = None,
        poll_interval: float = 1.0,
        silence_limit: float = 60.0,
        reconnect_delay: float = 1.0,
        max_reconnect_delay: float = 60.0,
    ) -> None:
        self.venue = venue
        self.symbols = tuple(dict.fromkeys(symbols))
        self._clock = clock
        self._poll = poll
        self._watch = watch
        self._on_status = on_status
        self.poll_interval = poll_interval
        self.silence_limit = silence_limit
        self._reconnect_delay = reconnect_delay
        self._max_reconnect_delay = max_reconnect_delay
        self._queue: asyncio.Queue[MarkTick | None] = asyncio.Queue()
        self._last: dict[str, Decimal] = {}
        self._heard: datetime | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._closed = False
        self.connected = False
        self.polls = 0
        self.idle = asyncio.Event()  # set while the poller waits on the clock

    def start(self) -> None:
        if self._tasks:
            return
        self._tasks.append(asyncio.ensure_future(self._poller()))
        if self._watch is not None:
            self._tasks.append(asyncio.ensure_future(self._watcher()))

    @property
    def watching(self) -> bool:
        """True when a stream (not only REST polling) feeds this."""
        return self._watch is not None

    def last(self, symbol: str) -> Decimal | None:
        return self._last.get(symbol)

    def __aiter__(self) -> "MarkFeed":
        return self

    async def __anext__(self) -> MarkTick:
        if self._closed and self._queue.empty():
            raise StopAsyncIteration
        tick = await self._queue.get()
        if tick is None:
            raise StopAsyncIteration
        return tick

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._queue.put_nowait(None)

    # ----------------------------------------------------------------- internals

    def _deliver(self, marks: Mapping[str, Decimal]) -> None:
        now = self._clock.now()
        for symbol, mark in marks.items():
            if symbol not in self.symbols:
                continue
            previous = self._last.get(symbol)
            self._last[symbol] = mark
            if previous != mark:  # the first read too: the stream opens with the mark
                self._queue.put_nowait(MarkTick(venue=self.venue, symbol=symbol, mark=mark, at=now))

    def _silent(self) -> bool:
        if self._watch is None or self._heard is None:
            return True
        return (self._clock.now() - self._heard).total_seconds() >= self.silence_limit

    async def _poller(self) -> None:
        """Poll REST marks whenever the stream is silent (always, without a stream)."""
        first = True
        while not self._closed:
            if first or self._silent():
                try:
                    self._deliver(await self._poll(self.symbols))
                    self.polls += 1
                except Exception as error:
                    self._report(False, f"mark poll failed: {error}")
                first = False
            self.idle.set()
            try:
                await self._clock.sleep(self.poll_interval)
            finally:
                self.idle.clear()

    async def _watcher(self) -> None:
        """Watch the stream; on a drop report it, back off, and resubscribe."""
        assert self._watch is not None
        delay = self._reconnect_delay
        self._heard = self._clock.now()
        while not self._closed:
            try:
                marks = await self._watch(self.symbols)
            except asyncio.CancelledError:
                raise
            except Exception as error:
                if self.connected:
                    self.connected = False
                self._report(False, f"mark stream dropped: {error}")
                await self._clock.sleep(delay)
                delay = min(delay * 2, self._max_reconnect_delay)
                continue
            if not self.connected:
                self.connected = True
                delay = self._reconnect_delay
                self._report(True, "mark stream receiving")
            self._heard = self._clock.now()
            self._deliver(marks)

    def _report(self, connected: bool, detail: str) -> None:
        if self._on_status is not None:
            self._on_status(connected, detail)
