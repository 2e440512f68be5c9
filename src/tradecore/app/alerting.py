"""Alerts raised by what the surroundings did (SPEC §10): the database or the signal stream down.

The other alerts of SPEC §10 are raised where their cause is decided (an aged position at its
cap, more than 5 unprotected positions, a trailing stop failing 3 times, a failed rollback).
These two are facts about the outside world that arrive as events — from the kernel's loops
and from the signal client — so they are recognised on the way to the journal.
"""

import asyncio

from tradecore.domain.events import Event, EventType, Severity
from tradecore.ports.alerts import Alert, Alerter
from tradecore.ports.events import EventSink


def alert_for(event: Event) -> Alert | None:
    """The alert an event calls for, or None. Alerts with one key are deduplicated."""
    if event.type is EventType.DATABASE_UNAVAILABLE or (
        event.type is EventType.HEALTH_CHECK_FAILED
        and "database unavailable" in (event.error_message or "")
    ):
        return Alert(
            key="database-down",
            severity=Severity.CRITICAL,
            title="the database is unreachable",
            text="trading and protection go on; events spool to disk and state changes wait "
            "in memory until it returns; new positions are refused meanwhile. "
            f"{event.error_message or ''}".strip(),
        )
    if event.type is EventType.HEALTH_CHECK_FAILED and event.data.get("during") == "start-up":
        return Alert(
            key="start-up-waiting",
            severity=Severity.ERROR,
            title="the bot cannot start: it waits for the venue or the database",
            text="nothing guards the positions' stops until it starts; it tries again with "
            f"backoff (at most every 30 s). {event.error_message or ''}".strip(),
        )
    if (
        event.type is EventType.WEBSOCKET_DISCONNECTED
        and event.data.get("stream") != "mark_price"
        and not event.data.get("graceful")  # the bot closed it on its way down
    ):
        return Alert(
            key="signal-stream-down",
            severity=Severity.WARNING,
            title="the signal stream is down",
            text="no new signals until it reconnects (the client retries with backoff); open "
            f"positions stay protected. {event.error_message or ''}".strip(),
        )
    return None


class AlertingSink:
    """An `EventSink` that passes every event on and sends the alerts some of them call for."""

    def __init__(self, inner: EventSink, alerter: Alerter) -> None:
        self._inner = inner
        self._alerter = alerter
        self._sending: set[asyncio.Task[bool]] = set()

    def emit(self, event: Event) -> None:
        self._inner.emit(event)
        alert = alert_for(event)
        if alert is not None:
            task = asyncio.get_running_loop().create_task(self._alerter.send(alert))
            self._sending.add(task)
            task.add_done_callback(self._sending.discard)

    async def flush(self) -> None:
        if self._sending:
            await asyncio.gather(*self._sending, return_exceptions=True)
        await self._inner.flush()

    async def close(self) -> None:
        await self.flush()
        await self._inner.close()
