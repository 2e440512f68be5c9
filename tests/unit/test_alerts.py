"""Alerts: delivery to Telegram and webhooks, deduplication, the rate limit, the service down,
and the bot token kept out of everything a human or a log could read."""

import asyncio
import json
import logging
from datetime import UTC, datetime, timedelta

import httpx
import pytest
import respx
from hypothesis import given, settings
from hypothesis import strategies as st
from loguru import logger

from tradecore.adapters.alerts import (
    AlertGate,
    AlertPolicy,
    FanOutAlerter,
    HttpAlerter,
    LogAlerter,
    TelegramChannel,
    Verdict,
    WebhookChannel,
)
from tradecore.adapters.database import connect_store
from tradecore.domain.events import Event, EventType, Severity
from tradecore.ports.alerts import Alert, Alerter

TOKEN = "7781234567:AAE-sEcReT_t0ken_value"
SEND_URL = f"https://api.telegram.org/bot{TOKEN}/sendMessage"
HOOK = "https://hooks.example.com/services/T000/B000/hooksecret"
START = datetime(2026, 11, 21, 6, 0, tzinfo=UTC)


class StepClock:
    """A clock that moves only when the test says so."""

    def __init__(self) -> None:
        self.at = START

    def now(self) -> datetime:
        return self.at

    async def sleep(self, seconds: float) -> None:
        self.at += timedelta(seconds=seconds)


class ListSink:
    def __init__(self) -> None:
        self.events: list[Event] = []

    def emit(self, event: Event) -> None:
        self.events.append(event)

    async def flush(self) -> None:
        return None

    async def close(self) -> None:
        return None


def alert(key: str = "unprotected", severity: Severity = Severity.ERROR) -> Alert:
    return Alert(key=key, severity=severity, title="6 positions unprotected", text="BTCUSDT, …")


def telegram(
    clock: StepClock, sink: ListSink | None = None, *, attempts: int = 3, **policy: float
) -> HttpAlerter:
    return HttpAlerter(
        [TelegramChannel(token=TOKEN, chat_id="-100200")],
        clock=clock,
        events=sink,
        policy=AlertPolicy(**policy),  # type: ignore[arg-type]
        timeout_seconds=0.5,
        attempts=attempts,
    )


@respx.mock
async def test_an_alert_reaches_the_telegram_chat_with_its_title_and_severity():
    route = respx.post(SEND_URL).mock(return_value=httpx.Response(200, json={"ok": True}))
    alerter = telegram(StepClock())

    assert await alerter.send(alert()) is True

    body = route.calls.last.request.content.decode()
    assert '"chat_id":"-100200"' in body.replace(" ", "")
    assert "6 positions unprotected" in body and "ERROR" in body
    await alerter.aclose()


@respx.mock
async def test_an_alert_reaches_a_webhook_as_json():
    route = respx.post(HOOK).mock(return_value=httpx.Response(204))
    alerter = HttpAlerter([WebhookChannel(url=HOOK)], clock=StepClock())

    assert await alerter.send(alert(severity=Severity.CRITICAL)) is True

    sent = route.calls.last.request
    assert json.loads(sent.content) == {
        "key": "unprotected",
        "severity": "CRITICAL",
        "title": "6 positions unprotected",
        "text": "BTCUSDT, …",
    }
    await alerter.aclose()


@respx.mock
async def test_the_same_alert_is_sent_once_within_the_window_and_again_after_it():
    route = respx.post(SEND_URL).mock(return_value=httpx.Response(200))
    clock = StepClock()
    alerter = telegram(clock, dedupe_seconds=300)

    for _ in range(5):
        assert await alerter.send(alert()) is True
        await clock.sleep(30)
    assert route.call_count == 1

    await clock.sleep(300)
    await alerter.send(alert())
    assert route.call_count == 2
    await alerter.aclose()


@respx.mock
async def test_the_same_alert_raised_twice_at_once_is_sent_once():
    route = respx.post(SEND_URL).mock(return_value=httpx.Response(200))
    alerter = telegram(StepClock())

    assert await asyncio.gather(alerter.send(alert()), alerter.send(alert())) == [True, True]
    assert route.call_count == 1
    await alerter.aclose()


@respx.mock
async def test_alerts_beyond_the_rate_limit_are_dropped_and_counted_on_the_next_one():
    route = respx.post(SEND_URL).mock(return_value=httpx.Response(200))
    clock = StepClock()
    alerter = telegram(clock, per_minute=3)

    for n in range(5):
        await alerter.send(alert(key=f"k{n}", severity=Severity.WARNING))
    assert route.call_count == 3

    await clock.sleep(61)
    await alerter.send(alert(key="later", severity=Severity.WARNING))
    assert route.call_count == 4
    assert "+2 more alerts suppressed" in route.calls.last.request.content.decode()
    await alerter.aclose()


@respx.mock
async def test_a_critical_alert_goes_out_even_when_the_rate_limit_is_exhausted():
    route = respx.post(SEND_URL).mock(return_value=httpx.Response(200))
    alerter = telegram(StepClock(), per_minute=1)

    await alerter.send(alert(key="a", severity=Severity.WARNING))
    await alerter.send(alert(key="b", severity=Severity.WARNING))
    await alerter.send(alert(key="rollback failed", severity=Severity.CRITICAL))

    assert route.call_count == 2
    assert "rollback failed" not in route.calls[0].request.content.decode()


@pytest.mark.parametrize(
    "failure",
    [
        httpx.ConnectTimeout("timed out"),
        httpx.ConnectError("connection refused"),
        httpx.Response(502, text="Bad Gateway"),
        httpx.Response(429, json={"ok": False, "description": "Too Many Requests"}),
    ],
    ids=["timeout", "refused", "5xx", "429"],
)
@respx.mock
async def test_a_service_that_is_down_returns_false_and_records_an_event_instead_of_raising(
    failure,
):
    if isinstance(failure, httpx.Response):
        respx.post(SEND_URL).mock(return_value=failure)
    else:
        respx.post(SEND_URL).mock(side_effect=failure)
    sink = ListSink()
    alerter = telegram(StepClock(), sink)

    assert await alerter.send(alert()) is False

    (event,) = sink.events
    assert event.type is EventType.ALERT_DELIVERY_FAILED
    assert event.severity >= Severity.ERROR
    assert event.data["channel"] == "telegram" and event.data["alert_key"] == "unprotected"
    assert event.error_message


@respx.mock
async def test_a_failed_alert_is_not_treated_as_delivered_so_the_next_try_goes_out():
    route = respx.post(SEND_URL)
    route.side_effect = [httpx.Response(503), httpx.Response(200)]
    alerter = telegram(StepClock(), attempts=1)  # one try per send

    assert await alerter.send(alert()) is False
    assert await alerter.send(alert()) is True
    assert route.call_count == 2


@respx.mock
async def test_the_bot_token_never_appears_in_events_logs_or_reprs(caplog):
    # The service echoes the token back in its error and the connection error names the URL:
    # both must be redacted before they reach an event.
    respx.post(SEND_URL).mock(
        side_effect=[
            httpx.Response(401, json={"description": f"bad token {TOKEN}"}),
            httpx.ConnectError(f"cannot reach {SEND_URL}"),
            httpx.Response(200),
        ]
    )
    sink = ListSink()
    lines: list[str] = []
    sink_id = logger.add(lines.append, level="DEBUG")
    caplog.set_level(logging.DEBUG)
    channel = TelegramChannel(token=TOKEN, chat_id="-100200")
    alerter = HttpAlerter([channel], clock=StepClock(), events=sink, attempts=1)
    try:
        for _ in range(3):
            await alerter.send(alert())
    finally:
        logger.remove(sink_id)

    assert len(sink.events) == 2
    readable = [repr(e) for e in sink.events] + lines + [caplog.text, repr(channel), repr(alerter)]
    assert "api.telegram.org" in caplog.text  # httpx did log its requests...
    assert all(TOKEN not in text for text in readable)  # ...without the token


@respx.mock
async def test_a_webhook_secret_path_stays_out_of_failure_events():
    respx.post(HOOK).mock(side_effect=httpx.ConnectError(f"failed {HOOK}"))
    sink = ListSink()
    alerter = HttpAlerter([WebhookChannel(url=HOOK)], clock=StepClock(), events=sink)

    assert await alerter.send(alert()) is False
    assert "hooksecret" not in repr(sink.events)


@respx.mock
async def test_one_channel_down_does_not_stop_the_others():
    respx.post(SEND_URL).mock(side_effect=httpx.ReadTimeout("slow"))
    hook = respx.post(HOOK).mock(return_value=httpx.Response(200))
    sink = ListSink()
    alerter = HttpAlerter(
        [TelegramChannel(token=TOKEN, chat_id="1"), WebhookChannel(url=HOOK)],
        clock=StepClock(),
        events=sink,
    )

    assert await alerter.send(alert()) is True
    assert hook.call_count == 1
    assert [e.data["channel"] for e in sink.events] == ["telegram"]


class Refusing:
    async def send(self, alert: Alert) -> bool:
        return False


class Exploding:
    async def send(self, alert: Alert) -> bool:
        raise RuntimeError("a broken alerter")


async def test_a_fan_out_reports_delivery_if_any_alerter_delivered():
    clock = StepClock()
    assert await FanOutAlerter([Refusing(), Exploding(), LogAlerter(clock=clock)]).send(alert())
    assert not await FanOutAlerter([Refusing(), Exploding()]).send(alert())


async def test_every_alerter_satisfies_the_port():
    clock = StepClock()
    http = telegram(clock)
    for alerter in (http, LogAlerter(clock=clock), FanOutAlerter([])):
        assert isinstance(alerter, Alerter)
    await http.aclose()


@respx.mock
async def test_sent_and_failed_alerts_are_stored_with_their_delivery(tmp_path):
    respx.post(SEND_URL).mock(side_effect=[httpx.Response(200), httpx.Response(500)])
    database = await connect_store(f"sqlite:///{tmp_path / 'alerts.db'}")
    try:
        alerter = HttpAlerter(
            [TelegramChannel(token=TOKEN, chat_id="1")], clock=StepClock(), store=database.store
        )
        await alerter.send(alert(key="db down", severity=Severity.CRITICAL))
        await alerter.send(alert(key="ws down", severity=Severity.ERROR))
        rows = await database.connection.execute_fetchall(
            "SELECT key, severity, delivered FROM alerts ORDER BY id"
        )
    finally:
        await database.close()
    assert [tuple(r) for r in rows] == [("db down", "CRITICAL", 1), ("ws down", "ERROR", 0)]


async def test_paper_mode_logs_the_alert_and_pages_nobody(tmp_path):
    database = await connect_store(f"sqlite:///{tmp_path / 'paper.db'}")
    try:
        alerter = LogAlerter(clock=StepClock(), store=database.store)
        assert await alerter.send(alert()) is True
        assert await alerter.send(alert()) is True  # a duplicate: handled, not stored twice
        rows = await database.connection.execute_fetchall("SELECT delivered FROM alerts")
    finally:
        await database.close()
    assert [tuple(r) for r in rows] == [(1,)]


@settings(max_examples=60, deadline=None)
@given(
    per_minute=st.integers(min_value=1, max_value=5),
    steps=st.lists(
        st.tuples(
            st.floats(min_value=0, max_value=40),
            st.sampled_from(["a", "b", "c", "d", "e", "f"]),
            st.sampled_from([Severity.WARNING, Severity.ERROR, Severity.CRITICAL]),
        ),
        max_size=40,
    ),
)
def test_the_gate_never_lets_more_than_the_limit_through_in_any_minute(per_minute, steps):
    gate = AlertGate(AlertPolicy(dedupe_seconds=120, per_minute=per_minute))
    now = START
    sent: list[tuple[datetime, str, Severity]] = []
    for gap, key, severity in steps:
        now += timedelta(seconds=gap)
        if gate.judge(key, severity, now) is Verdict.SEND:
            gate.delivered(key, now)
            sent.append((now, key, severity))
    for at, _, _ in sent:
        window = [s for s in sent if at <= s[0] < at + timedelta(seconds=60)]
        assert sum(1 for s in window if s[2] < Severity.CRITICAL) <= per_minute
    for i, (at, key, _) in enumerate(sent):
        later = [s for s in sent[i + 1 :] if s[1] == key]
        assert all(s[0] - at >= timedelta(seconds=120) for s in later)


@respx.mock
async def test_a_failing_delivery_is_retried_and_the_alert_arrives_once():
    route = respx.post(SEND_URL).mock(
        side_effect=[
            httpx.ConnectError("connection refused"),
            httpx.Response(502, text="bad gateway"),
            httpx.Response(200, json={"ok": True}),
        ]
    )
    sink = ListSink()
    store_db = await connect_store("sqlite:///:memory:")
    clock = StepClock()
    alerter = HttpAlerter(
        [TelegramChannel(token=TOKEN, chat_id="-100200")],
        clock=clock,
        events=sink,
        store=store_db.store,
        timeout_seconds=0.5,
    )
    try:
        delivered = await alerter.send(alert())
        again = await alerter.send(alert())  # the same alert raised again: a duplicate
        rows = await store_db.connection.execute_fetchall("SELECT delivered FROM alerts")
    finally:
        await alerter.aclose()
        await store_db.close()

    assert delivered and again
    assert route.call_count == 3  # two failed attempts, one delivery, nothing more
    assert [tuple(r) for r in rows] == [(1,)]  # one alert, stored once, as delivered
    assert clock.at > START  # the retries waited
