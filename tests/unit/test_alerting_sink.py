"""The database and the signal stream going down reach a human; everything else passes by."""

import uuid
from datetime import UTC, datetime

from tradecore.app.alerting import AlertingSink, alert_for
from tradecore.domain.events import Event, EventType, Severity
from tradecore.ports.alerts import Alert
from tradecore.testing import EventLog

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def event(kind: EventType, *, error: str | None = None, **data: object) -> Event:
    return Event(id=uuid.uuid4(), type=kind, created_at=NOW, error_message=error, data=data)


class Alerter:
    def __init__(self) -> None:
        self.sent: list[Alert] = []

    async def send(self, alert: Alert) -> bool:
        self.sent.append(alert)
        return True


def test_a_database_that_cannot_be_reached_is_a_critical_alert() -> None:
    for reported in (
        event(EventType.DATABASE_UNAVAILABLE),
        event(EventType.HEALTH_CHECK_FAILED, error="database unavailable: connection refused"),
    ):
        alert = alert_for(reported)
        assert alert is not None and alert.severity is Severity.CRITICAL
        assert alert.key == "database-down"


def test_the_signal_stream_going_down_is_a_warning_but_the_price_feed_is_not_it() -> None:
    alert = alert_for(event(EventType.WEBSOCKET_DISCONNECTED, url="ws://signals"))
    assert alert is not None and alert.key == "signal-stream-down"
    assert alert_for(event(EventType.WEBSOCKET_DISCONNECTED, stream="mark_price")) is None


def test_a_venue_hiccup_is_not_a_database_alert() -> None:
    assert alert_for(event(EventType.HEALTH_CHECK_FAILED, error="the venue answered 503")) is None
    assert alert_for(event(EventType.POSITION_CLOSED)) is None


async def test_the_sink_passes_every_event_on_and_alerts_once_per_event_that_calls_for_it() -> None:
    inner, alerter = EventLog(), Alerter()
    sink = AlertingSink(inner, alerter)
    events = [event(EventType.BOT_STARTED), event(EventType.WEBSOCKET_DISCONNECTED)]

    for e in events:
        sink.emit(e)
    await sink.flush()

    assert inner.events == events
    assert [a.key for a in alerter.sent] == ["signal-stream-down"]


def test_a_bot_that_cannot_start_because_the_venue_does_not_answer_pages_a_human() -> None:
    waiting = event(
        EventType.HEALTH_CHECK_FAILED,
        error="start-up cannot load the venue's markets (503); trying again in 4 s",
        during="start-up",
        attempt=3,
    )
    alert = alert_for(waiting)
    assert alert is not None and alert.key == "start-up-waiting"
    assert alert.severity is Severity.ERROR  # the bot is not running: nothing guards the stops
