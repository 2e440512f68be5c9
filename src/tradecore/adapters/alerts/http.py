"""Alerters: over HTTP to Telegram and webhooks, log-only for paper mode, and a fan-out.

`send` never raises. A channel that does not take the alert is tried again (`attempts` times
in all, waiting `retry_seconds`, then twice that, …, or as long as a 429 asked, when longer:
Telegram's `retry_after`, a webhook's `Retry-After`; a wait over `MAX_RETRY_AFTER_SECONDS` is
not waited out: the alert is given up at once); a channel that took it is never sent it
again, so a retry never multiplies the alert. False means no channel took it in the end; each
channel that never took it is recorded once as an `alert_delivery_failed` event (with the
channel, the reason and the attempts, never a secret), and every
attempted alert is stored in the `alerts` table when a store is given. A duplicate or a
rate-limited alert returns True: it was handled on purpose (see `gate.py`).
"""

import asyncio
import uuid
from collections.abc import Sequence
from typing import Protocol

import attrs
import httpx
from loguru import logger

from tradecore.adapters.alerts.channels import SecretPathTransport
from tradecore.adapters.alerts.gate import AlertGate, AlertPolicy, Verdict
from tradecore.domain.events import Event, EventType
from tradecore.ports.alerts import Alert, Alerter
from tradecore.ports.clock import Clock
from tradecore.ports.events import EventSink
from tradecore.ports.repositories import Store

# A flood wait longer than this is not waited out: the alert is journaled as undelivered now,
# rather than holding every alert behind it (they would meet the same wait).
MAX_RETRY_AFTER_SECONDS = 300.0


class Channel(Protocol):
    @property
    def name(self) -> str: ...

    def request(self, alert: Alert) -> httpx.Request: ...

    def retry_after(self, response: httpx.Response) -> float | None: ...

    def redact(self, text: str) -> str: ...


class HttpAlerter:
    """Delivers each alert to every channel at once; True if at least one took it."""

    def __init__(
        self,
        channels: Sequence[Channel],
        *,
        clock: Clock,
        events: EventSink | None = None,
        store: Store | None = None,
        policy: AlertPolicy | None = None,
        timeout_seconds: float = 10.0,
        client: httpx.AsyncClient | None = None,
        attempts: int = 3,
        retry_seconds: float = 2.0,
    ) -> None:
        if not channels:
            raise ValueError("an HttpAlerter needs at least one channel")
        if attempts < 1:
            raise ValueError("an HttpAlerter needs attempts >= 1")
        self._attempts = attempts
        self._retry_seconds = retry_seconds
        self._channels = tuple(channels)
        self._clock = clock
        self._events = events
        self._store = store
        self._gate = AlertGate(policy)
        self._client = client or httpx.AsyncClient(
            transport=SecretPathTransport(), timeout=timeout_seconds
        )

    def __repr__(self) -> str:
        return f"HttpAlerter(channels={[c.name for c in self._channels]})"

    async def send(self, alert: Alert) -> bool:
        now = self._clock.now()
        verdict = self._gate.judge(alert.key, alert.severity, now)
        if verdict is not Verdict.SEND:
            return True
        suppressed = self._gate.take_suppressed()
        outgoing = _with_suppressed(alert, suppressed)
        # Marked before the await, so the same alert raised meanwhile is a duplicate.
        self._gate.delivered(alert.key, now)
        delivered = await self._deliver_all(outgoing)
        if not delivered:
            self._gate.forget(alert.key)
            self._gate.give_back_suppressed(suppressed)
        await _store(self._store, outgoing, self._clock, delivered)
        return delivered

    async def _deliver_all(self, alert: Alert) -> bool:
        """Every channel until it takes `alert` or the attempts are spent; True if one did."""
        waiting = list(self._channels)
        delivered = False
        asked = 0.0  # the longest wait a refusing service named (a 429's retry_after)
        for attempt in range(1, self._attempts + 1):
            if attempt > 1:
                backoff = self._retry_seconds * 2 ** (attempt - 2)
                await self._clock.sleep(max(backoff, asked))
            failures = await asyncio.gather(*(self._deliver(c, alert) for c in waiting))
            delivered = delivered or any(f is None for f in failures)
            still = [(c, f) for c, f in zip(waiting, failures, strict=True) if f is not None]
            asked = max((wait or 0.0 for _, (_, wait) in still), default=0.0)
            if attempt == self._attempts or asked > MAX_RETRY_AFTER_SECONDS:
                for channel, (reason, wait) in still:
                    told = f", retry after {wait:g} s" if wait else ""
                    self._failed(channel, alert, f"{reason} (after {attempt} attempts{told})")
                break
            waiting = [c for c, _ in still]
            if not waiting:
                break
        return delivered

    async def _deliver(self, channel: Channel, alert: Alert) -> tuple[str, float | None] | None:
        """None once `channel` took `alert`, else why not and how long it asked us to wait."""
        try:
            response = await self._client.send(channel.request(alert))
        except Exception as exc:  # a channel down must never stop the bot
            return f"{type(exc).__name__}: {channel.redact(str(exc))}", None
        if response.is_success:
            return None
        reason = f"HTTP {response.status_code}: {channel.redact(response.text[:300])}"
        return reason, channel.retry_after(response)

    def _failed(self, channel: Channel, alert: Alert, reason: str) -> None:
        record_undelivered(self._events, self._clock, channel.name, alert, reason)

    async def aclose(self) -> None:
        await self._client.aclose()


class LogAlerter:
    """Paper mode: the alert goes to the log (and the alerts table); nobody is paged."""

    def __init__(
        self, *, clock: Clock, store: Store | None = None, policy: AlertPolicy | None = None
    ) -> None:
        self._clock = clock
        self._store = store
        self._gate = AlertGate(policy)

    async def send(self, alert: Alert) -> bool:
        now = self._clock.now()
        if self._gate.judge(alert.key, alert.severity, now) is not Verdict.SEND:
            return True
        outgoing = _with_suppressed(alert, self._gate.take_suppressed())
        logger.log(alert.severity.name, "ALERT {}: {}", outgoing.title, outgoing.text)
        self._gate.delivered(alert.key, now)
        await _store(self._store, outgoing, self._clock, True)
        return True


class FanOutAlerter:
    """Several alerters as one (e.g. Telegram for the operator, a webhook for the team)."""

    def __init__(self, alerters: Sequence[Alerter]) -> None:
        self._alerters = tuple(alerters)

    async def send(self, alert: Alert) -> bool:
        results = await asyncio.gather(
            *(a.send(alert) for a in self._alerters), return_exceptions=True
        )
        return any(r is True for r in results)


def _with_suppressed(alert: Alert, count: int) -> Alert:
    if count == 0:
        return alert
    note = f"\n(+{count} more alert{'s' if count > 1 else ''} suppressed by the rate limit)"
    return attrs.evolve(alert, text=alert.text + note)


def record_undelivered(
    events: EventSink | None, clock: Clock, channel: str, alert: Alert, reason: str
) -> None:
    if events is None:
        return
    events.emit(
        Event(
            id=uuid.uuid4(),
            type=EventType.ALERT_DELIVERY_FAILED,
            created_at=clock.now(),
            data={
                "channel": channel,
                "alert_key": alert.key,
                "alert_severity": alert.severity.name,
                "title": alert.title,
            },
            error_message=reason,
        )
    )


async def _store(store: Store | None, alert: Alert, clock: Clock, delivered: bool) -> None:
    if store is None:
        return
    try:
        await store.alerts.add(alert, at=clock.now(), delivered=delivered)
    except Exception:  # the journal reports a database outage; an alert must not fail on it
        logger.opt(exception=False).warning("alert {!r} not stored: database error", alert.key)
