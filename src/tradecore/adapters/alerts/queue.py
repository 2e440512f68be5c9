"""An alerter that never holds up its caller: alerts wait in a queue, one task delivers them.

Use cases await `send` in the middle of their work — the protection guard inside its pass, the
trailing service after a refused move, an open left without a stop. A Telegram API that hangs,
answers 5xx or asks for a 60 s pause (429 `retry_after`) must not hold any of that up, so
`send` only queues the alert and returns; the inner alerter (`HttpAlerter`: retries,
deduplication, the rate limit, the `alerts` table) delivers it from its own task, most severe
first. Nothing is lost silently: an alert the queue cannot take (full, or the bot stopping) and
one still waiting when `aclose` gives up are each journaled as `alert_delivery_failed`.
"""

import asyncio
import contextlib
import itertools

from loguru import logger

from tradecore.adapters.alerts.http import record_undelivered
from tradecore.ports.alerts import Alert, Alerter
from tradecore.ports.clock import Clock
from tradecore.ports.events import EventSink

CHANNEL = "queue"  # the `channel` of the events this wrapper journals


class QueuedAlerter:
    """`Alerter` whose `send` returns at once: True once queued, False (journaled) if not."""

    def __init__(
        self,
        inner: Alerter,
        *,
        events: EventSink | None,
        clock: Clock,
        capacity: int = 500,
    ) -> None:
        if capacity < 1:
            raise ValueError("a QueuedAlerter needs capacity >= 1")
        self._inner = inner
        self._events = events
        self._clock = clock
        self._queue: asyncio.PriorityQueue[tuple[int, int, Alert]] = asyncio.PriorityQueue(
            maxsize=capacity
        )
        self._order = itertools.count()
        self._worker: asyncio.Task[None] | None = None
        self._current: Alert | None = None
        self._closing = False

    def __repr__(self) -> str:
        return f"QueuedAlerter({self._inner!r}, waiting={self._queue.qsize()})"

    async def send(self, alert: Alert) -> bool:
        if self._closing:
            self._lost(alert, "not sent: the bot is stopping")
            return False
        try:
            # most severe first; among equals, in the order raised
            self._queue.put_nowait((-int(alert.severity), next(self._order), alert))
        except asyncio.QueueFull:
            self._lost(alert, f"the alert queue is full ({self._queue.qsize()} waiting)")
            return False
        if self._worker is None or self._worker.done():
            self._worker = asyncio.get_running_loop().create_task(
                self._work(), name="tradecore-alerts"
            )
        return True

    async def _work(self) -> None:
        while True:
            _, _, alert = await self._queue.get()
            self._current = alert
            try:
                await self._inner.send(alert)
            except Exception:  # the inner alerter never raises; if it does, go on
                logger.exception("alert {!r}: the alerter raised", alert.key)
            finally:
                self._current = None
                self._queue.task_done()

    async def aclose(self, drain_seconds: float = 15.0) -> None:
        """Deliver what waits, for at most `drain_seconds`; journal what is left."""
        self._closing = True
        worker, self._worker = self._worker, None
        if worker is None:
            return
        with contextlib.suppress(TimeoutError):
            # real time: shutdown waits for the network, not for the bot's clock
            await asyncio.wait_for(self._queue.join(), drain_seconds)
        current = self._current  # the cancel below clears it
        worker.cancel()
        await asyncio.gather(worker, return_exceptions=True)
        left = [current] if current is not None else []
        while not self._queue.empty():
            left.append(self._queue.get_nowait()[2])
        for alert in left:
            self._lost(alert, f"not delivered within {drain_seconds:g} s of the bot stopping")

    def _lost(self, alert: Alert, reason: str) -> None:
        logger.error("alert {!r} ({}) not delivered: {}", alert.key, alert.title, reason)
        record_undelivered(self._events, self._clock, CHANNEL, alert, reason)
