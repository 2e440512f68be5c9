"""Telegram: alerts that never hold up trading and honour flood control, and the operator's
read-only commands (`/status`, `/positions`, `/pnl`, `/health`) in the configured chat only.

The Bot API is mocked with respx: `getUpdates` (long polling) and `sendMessage`. Facts of the
API are from https://core.telegram.org/bots/api (#making-requests: `ok`, `description`,
`error_code`, `parameters`; #responseparameters: `retry_after`; #getupdates: `offset`,
`timeout`, `allowed_updates`; #sendmessage: `chat_id`, `text` of 1-4096 characters).
"""

import asyncio
import json
import logging
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest
import respx
from loguru import logger

from tradecore.adapters.alerts import HttpAlerter, QueuedAlerter, TelegramChannel
from tradecore.adapters.alerts.telegram import TelegramCommands
from tradecore.app.operator import OperatorCommands, OperatorSources
from tradecore.app.protection import ProtectionView
from tradecore.domain.events import EventType, Severity
from tradecore.domain.model import Side, Venue
from tradecore.domain.positions import Position, PositionState, StopOwner
from tradecore.ports.alerts import Alert, OperatorQueries
from tradecore.testing import EventLog

TOKEN = "7781234567:AAE-sEcReT_t0ken_value"
API = f"https://api.telegram.org/bot{TOKEN}"
CHAT = "-100200"
START = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)


class StepClock:
    def __init__(self) -> None:
        self.at = START

    def now(self) -> datetime:
        return self.at

    async def sleep(self, seconds: float) -> None:
        self.at += timedelta(seconds=seconds)
        await asyncio.sleep(0)


def alert(key: str = "unprotected:p1", severity: Severity = Severity.CRITICAL) -> Alert:
    return Alert(key=key, severity=severity, title="BTCUSDT open WITHOUT a stop", text="…")


def flood(seconds: int) -> httpx.Response:
    return httpx.Response(
        429,
        json={
            "ok": False,
            "error_code": 429,
            "description": f"Too Many Requests: retry after {seconds}",
            "parameters": {"retry_after": seconds},
        },
    )


# -- alerts ------------------------------------------------------------------------------------


@respx.mock
async def test_a_429_waits_the_retry_after_telegram_names_then_delivers_once():
    route = respx.post(f"{API}/sendMessage").mock(
        side_effect=[flood(37), httpx.Response(200, json={"ok": True, "result": {}})]
    )
    clock = StepClock()
    alerter = HttpAlerter([TelegramChannel(token=TOKEN, chat_id=CHAT)], clock=clock)

    assert await alerter.send(alert()) is True

    assert route.call_count == 2
    assert clock.at - START >= timedelta(seconds=37)  # not the 2 s of the ordinary backoff
    await alerter.aclose()


@respx.mock
async def test_a_429_asking_for_more_than_five_minutes_is_given_up_and_journaled_at_once():
    route = respx.post(f"{API}/sendMessage").mock(return_value=flood(3600))
    clock = StepClock()
    sink = EventLog()
    alerter = HttpAlerter([TelegramChannel(token=TOKEN, chat_id=CHAT)], clock=clock, events=sink)

    assert await alerter.send(alert()) is False

    assert route.call_count == 1  # no second try into a flood wait of an hour
    assert clock.at == START  # and the alerts behind it do not wait an hour either
    (event,) = sink.events
    assert event.type is EventType.ALERT_DELIVERY_FAILED
    assert "retry after 3600" in (event.error_message or "")
    await alerter.aclose()


class Hanging:
    """An alerter whose service never answers (a Telegram API that hangs)."""

    def __init__(self) -> None:
        self.started: list[Alert] = []
        self.release = asyncio.Event()

    async def send(self, alert: Alert) -> bool:
        self.started.append(alert)
        await self.release.wait()
        return True


async def test_an_alert_never_holds_up_the_use_case_that_raises_it():
    slow = Hanging()
    sink = EventLog()
    queued = QueuedAlerter(slow, events=sink, clock=StepClock())

    # A protection pass awaits its alert: it must go on at once, whatever Telegram does.
    assert await asyncio.wait_for(queued.send(alert()), timeout=1) is True
    await asyncio.sleep(0)
    assert [a.key for a in slow.started] == ["unprotected:p1"]  # on its way, apart
    slow.release.set()
    await queued.aclose(drain_seconds=1)
    assert sink.events == []


class Recording:
    def __init__(self) -> None:
        self.sent: list[str] = []

    async def send(self, alert: Alert) -> bool:
        self.sent.append(alert.key)
        return True


async def test_queued_alerts_go_out_most_severe_first_then_in_the_order_raised():
    inner = Recording()
    queued = QueuedAlerter(inner, events=EventLog(), clock=StepClock())
    await queued.send(alert("aged-cap", Severity.WARNING))
    await queued.send(alert("trailing-failing", Severity.ERROR))
    await queued.send(alert("wave-skipped", Severity.ERROR))
    await queued.send(alert("unprotected", Severity.CRITICAL))

    await queued.aclose(drain_seconds=1)

    assert inner.sent == ["unprotected", "trailing-failing", "wave-skipped", "aged-cap"]


async def test_alerts_waiting_at_shutdown_are_journaled_not_lost():
    slow = Hanging()
    sink = EventLog()
    queued = QueuedAlerter(slow, events=sink, clock=StepClock())
    await queued.send(alert("a"))
    await queued.send(alert("b", Severity.WARNING))
    await asyncio.sleep(0)

    await queued.aclose(drain_seconds=0.05)  # Telegram never answers

    lost = {e.data["alert_key"] for e in sink.events}
    assert lost == {"a", "b"}
    assert all(e.type is EventType.ALERT_DELIVERY_FAILED for e in sink.events)


async def test_a_full_alert_queue_journals_what_it_cannot_take():
    slow = Hanging()
    sink = EventLog()
    queued = QueuedAlerter(slow, events=sink, clock=StepClock(), capacity=2)
    taken = [await queued.send(alert(f"k{n}", Severity.WARNING)) for n in range(5)]

    assert taken == [True, True, False, False, False]  # nothing yielded: nothing delivered yet
    refused = [e for e in sink.events if e.type is EventType.ALERT_DELIVERY_FAILED]
    assert [e.data["alert_key"] for e in refused] == ["k2", "k3", "k4"]
    assert all("queue is full" in (e.error_message or "") for e in refused)
    slow.release.set()
    await queued.aclose(drain_seconds=1)


# -- commands ----------------------------------------------------------------------------------


def position(symbol: str, side: Side, quantity: str, entry: str, stop: str | None) -> Position:
    return Position(
        id=f"pos-{symbol}",
        venue=Venue.BINANCE,
        symbol=symbol,
        side=side,
        state=PositionState.ACTIVE,
        requested_quantity=Decimal(quantity),
        quantity=Decimal(quantity),
        entry_price=Decimal(entry),
        stop_price=None if stop is None else Decimal(stop),
        stop_owner=StopOwner.TRAILING if stop else None,
        created_at=START - timedelta(hours=2),
        opened_at=START - timedelta(hours=2),
    )


HEALTH_BODY: dict[str, Any] = {
    "status": "unhealthy",
    "mode": "demo",
    "running": True,
    "database": {"ok": True, "writes_waiting": 0, "events_spooled": 0},
    "venues": {"binance": {"ok": False, "last_failure": "2026-11-30T08:58:00+00:00"}},
    "signal_stream": {"kind": "websocket", "connected": True, "ok": True},
    "loops": {"guard": "running", "signals": "running", "trailing": "died"},
    "loops_died": ["trailing"],
    "last_signal": "2026-11-30T08:50:03+00:00",
    "positions": 2,
    "unprotected": 1,
    "unprotected_symbols": ["ETHUSDT"],
    "last_protection_check": "2026-11-30T08:59:30+00:00",
    "uptime_seconds": 7380.0,
}


def sources(
    *,
    positions: Sequence[Position] | None = None,
    closed: Sequence[tuple[datetime, Decimal | None]] = (),
    failing: bool = False,
) -> OperatorSources:
    held = (
        [
            position("BTCUSDT", Side.LONG, "0.012", "97000.5", "96100"),
            position("ETHUSDT", Side.SHORT, "0.5", "3100.25", None),
        ]
        if positions is None
        else list(positions)
    )

    async def open_positions() -> Sequence[Position]:
        if failing:
            raise ConnectionRefusedError("database down")
        return held

    async def health() -> tuple[int, dict[str, Any]]:
        return 503, HEALTH_BODY

    async def closed_pnl() -> Sequence[tuple[datetime, Decimal | None]]:
        if failing:
            raise ConnectionRefusedError("database down")
        return closed

    return OperatorSources(
        clock=StepClock(),
        mode="demo",
        venue="binance",
        open_positions=open_positions,
        protection=lambda: ProtectionView(
            read_at=START, checked_at=START, symbols=frozenset({"ETHUSDT"})
        ),
        health=health,
        closed_pnl=closed_pnl,
    )


async def test_positions_lists_each_open_position_with_its_stop():
    text = await OperatorCommands(sources()).answer("/positions")

    assert "BTCUSDT" in text and "long" in text and "0.012" in text and "97000.5" in text
    assert "96100" in text
    assert "ETHUSDT" in text and "NO STOP" in text


async def test_pnl_sums_realized_pnl_today_and_in_all():
    closed = [
        (START - timedelta(days=3), Decimal("10.50")),
        (START - timedelta(hours=1), Decimal("-2.25")),
        (START - timedelta(minutes=5), Decimal("4.00")),
        (START - timedelta(minutes=1), None),  # closed, not settled yet
    ]
    text = await OperatorCommands(sources(closed=closed)).answer("/pnl")

    assert "today" in text and "1.75" in text  # -2.25 + 4.00
    assert "12.25" in text  # all closed positions
    assert "1 not settled" in text


async def test_status_and_health_say_what_is_wrong():
    commands = OperatorCommands(sources())

    status = await commands.answer("/status")
    health = await commands.answer("/health")

    assert "UNHEALTHY" in status and "ETHUSDT" in status and "demo" in status
    assert "trailing" in health and "binance" in health and "died" in health.lower()


async def test_a_source_that_fails_is_an_answer_not_an_exception():
    commands = OperatorCommands(sources(failing=True))

    text = await commands.answer("/positions")

    assert "cannot" in text and "trading" in text
    assert "/status" in await commands.answer("/nonsense")  # unknown: the help


def update(update_id: int, text: str, chat: str = CHAT, at: datetime = START) -> dict[str, Any]:
    return {
        "update_id": update_id,
        "message": {
            "message_id": update_id * 10,
            "date": int(at.timestamp()),
            "chat": {"id": int(chat), "type": "supergroup"},
            "from": {"id": 4242, "is_bot": False, "first_name": "Op"},
            "text": text,
        },
    }


def updates(*items: dict[str, Any]) -> httpx.Response:
    return httpx.Response(200, json={"ok": True, "result": list(items)})


class Answers:
    async def answer(self, command: str) -> str:
        return f"answer to {command}"


def bot(sink: EventLog, queries: OperatorQueries | None = None) -> TelegramCommands:
    return TelegramCommands(
        TelegramChannel(token=TOKEN, chat_id=CHAT),
        queries or Answers(),
        events=sink,
        clock=StepClock(),
        poll_seconds=30,
    )


@respx.mock
async def test_commands_in_the_configured_chat_are_answered_there():
    polled = respx.post(f"{API}/getUpdates").mock(
        side_effect=[
            updates(update(5, "/status"), update(6, "/pnl@tradecore_bot"), update(7, "hello")),
            updates(),
        ]
    )
    sent = respx.post(f"{API}/sendMessage").mock(return_value=httpx.Response(200, json={}))
    commands = bot(EventLog())

    await commands.poll_once()
    await commands.poll_once()

    replies = [json.loads(c.request.content) for c in sent.calls]
    assert [r["chat_id"] for r in replies] == [CHAT, CHAT]
    assert [r["text"] for r in replies] == ["answer to /status", "answer to /pnl"]
    first, second = (json.loads(c.request.content) for c in polled.calls)
    assert first["timeout"] == 30 and first["allowed_updates"] == ["message"]
    assert second["offset"] == 8  # every update seen is confirmed, answered or not
    await commands.aclose()


@respx.mock
async def test_an_answer_refused_by_flood_control_is_sent_again_after_retry_after():
    respx.post(f"{API}/getUpdates").mock(return_value=updates(update(4, "/status")))
    sent = respx.post(f"{API}/sendMessage").mock(
        side_effect=[flood(3), httpx.Response(200, json={"ok": True, "result": {}})]
    )
    clock = StepClock()
    commands = TelegramCommands(
        TelegramChannel(token=TOKEN, chat_id=CHAT), Answers(), events=EventLog(), clock=clock
    )

    await commands.poll_once()

    assert sent.call_count == 2
    assert clock.at - START == timedelta(seconds=3)
    await commands.aclose()


@respx.mock
async def test_a_command_from_another_chat_is_ignored_and_journaled():
    respx.post(f"{API}/getUpdates").mock(return_value=updates(update(9, "/positions", "-999")))
    sent = respx.post(f"{API}/sendMessage").mock(return_value=httpx.Response(200, json={}))
    sink = EventLog()
    commands = bot(sink)

    await commands.poll_once()

    assert sent.call_count == 0
    (event,) = sink.events
    assert event.type is EventType.OPERATOR_MESSAGE_IGNORED
    assert event.severity is Severity.WARNING
    assert event.data["chat_id"] == "-999" and event.data["command"] == "/positions"
    await commands.aclose()


@respx.mock
async def test_a_stranger_flooding_the_bot_fills_neither_the_journal_nor_the_log():
    """Anyone can write to a bot. 500 messages from one foreign chat give one event, then one
    per chat per quiet interval saying how many were ignored since, never 500 rows."""
    clock = StepClock()
    flood_batch = [update(100 + i, "/positions", "-999") for i in range(500)]
    respx.post(f"{API}/getUpdates").mock(
        side_effect=[updates(*flood_batch), updates(update(700, "/pnl", "-999"))]
    )
    respx.post(f"{API}/sendMessage").mock(return_value=httpx.Response(200, json={}))
    sink = EventLog()
    commands = TelegramCommands(
        TelegramChannel(token=TOKEN, chat_id=CHAT), Answers(), events=sink, clock=clock
    )

    await commands.poll_once()
    assert len(sink.events) == 1
    assert sink.events[0].data["ignored_since_last"] == 0

    clock.at += timedelta(minutes=11)  # a quiet interval later, the next one is journaled
    await commands.poll_once()
    assert len(sink.events) == 2
    assert sink.events[1].data["ignored_since_last"] == 499
    assert sink.events[1].data["command"] == "/pnl"
    await commands.aclose()


@respx.mock
async def test_in_a_group_only_the_allowed_users_are_answered():
    other = update(11, "/positions")
    other["message"]["from"]["id"] = 777
    respx.post(f"{API}/getUpdates").mock(return_value=updates(update(10, "/status"), other))
    sent = respx.post(f"{API}/sendMessage").mock(return_value=httpx.Response(200, json={}))
    sink = EventLog()
    commands = TelegramCommands(
        TelegramChannel(token=TOKEN, chat_id=CHAT),
        Answers(),
        events=sink,
        clock=StepClock(),
        allowed_user_ids=frozenset({"4242"}),
    )

    await commands.poll_once()

    replies = [json.loads(c.request.content)["text"] for c in sent.calls]
    assert replies == ["answer to /status"]  # 4242 is answered, 777 is not
    (event,) = sink.events
    assert event.type is EventType.OPERATOR_MESSAGE_IGNORED
    assert event.data["from_id"] == "777" and event.data["reason"] == "user not allowed"
    await commands.aclose()


@respx.mock
async def test_a_command_sent_before_the_bot_started_is_not_answered():
    stale = START - timedelta(hours=3)
    respx.post(f"{API}/getUpdates").mock(return_value=updates(update(3, "/status", at=stale)))
    sent = respx.post(f"{API}/sendMessage").mock(return_value=httpx.Response(200, json={}))
    commands = bot(EventLog())

    await commands.poll_once()

    assert sent.call_count == 0
    await commands.aclose()


@pytest.mark.parametrize(
    ("failure", "at_least"),
    [
        (flood(41), 41),
        (httpx.Response(502, text="Bad Gateway"), 1),
        (httpx.ConnectError("connection refused"), 1),
        (httpx.ReadTimeout("slow"), 1),
        (httpx.Response(409, json={"ok": False, "error_code": 409, "description": "Conflict"}), 1),
        (httpx.Response(200, text="not json"), 1),
    ],
    ids=["429", "5xx", "refused", "timeout", "409", "garbage"],
)
@respx.mock
async def test_a_failing_api_is_waited_out_never_raised(failure: Any, at_least: float):
    route = respx.post(f"{API}/getUpdates")
    if isinstance(failure, httpx.Response):
        route.mock(return_value=failure)
    else:
        route.mock(side_effect=failure)
    commands = bot(EventLog())

    wait = await commands.poll_once()

    assert wait >= at_least
    await commands.aclose()


@respx.mock
async def test_the_token_never_appears_in_events_or_logs_of_the_command_loop(caplog):
    respx.post(f"{API}/getUpdates").mock(
        side_effect=[
            httpx.Response(401, json={"ok": False, "description": f"Unauthorized {TOKEN}"}),
            httpx.ConnectError(f"cannot reach {API}/getUpdates"),
            updates(update(1, "/status", "-5")),
        ]
    )
    sink = EventLog()
    lines: list[str] = []
    sink_id = logger.add(lines.append, level="DEBUG")
    caplog.set_level(logging.DEBUG)
    commands = bot(sink)
    try:
        for _ in range(3):
            await commands.poll_once()
    finally:
        logger.remove(sink_id)
        await commands.aclose()

    readable = [repr(e) for e in sink.events] + lines + [caplog.text, repr(commands)]
    assert any("Unauthorized" in line for line in lines)  # the failure is logged...
    assert all(TOKEN not in text for text in readable)  # ...without the token


# -- the runner wires it -----------------------------------------------------------------------


@respx.mock
async def test_the_trading_runner_answers_every_command_in_the_configured_chat(tmp_path):
    import time

    from dependency_injector import providers

    from runner.trade import run_trade
    from tradecore.testing import FakeVenue
    from tradecore.wiring.config import AlertSettings, Config, HealthSettings, LoggingSettings, Mode
    from tradecore.wiring.config import Secrets as RunnerSecrets
    from tradecore.wiring.container import Container, SignalSpec

    venue = FakeVenue.binance()
    await venue.open_position("ETHUSDT", Side.LONG, "0.5")  # opened by hand: adopted
    served = {"done": False}

    async def poll(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(0.05)  # a long poll that comes back empty
        # the commands come once the hand-opened position is adopted (journaled, then its
        # stop placed): on a loaded machine the command loop can be up before recovery is done
        if served["done"] or not venue.stops("ETHUSDT"):
            return updates()
        served["done"] = True
        now = datetime.fromtimestamp(time.time(), UTC)
        asked = ("/positions", "/pnl", "/status", "/health")
        return updates(*(update(n, text, at=now) for n, text in enumerate(asked, 1)))

    respx.post(f"{API}/getUpdates").mock(side_effect=poll)
    sent = respx.post(f"{API}/sendMessage").mock(return_value=httpx.Response(200, json={}))
    container = Container()
    container.venue.override(providers.Object(venue.exchange))
    container.database_url.override(f"sqlite:///{tmp_path / 'trade.db'}")
    container.spool_path.override(str(tmp_path / "trade.spool"))
    container.signal_spec.override(SignalSpec(kind="none"))
    config = Config(
        mode=Mode.DEMO,
        lock_dir=str(tmp_path / "locks"),
        health=HealthSettings(port=0),
        logging=LoggingSettings(file=""),
        alerts=AlertSettings(telegram_chat_id=CHAT),
    )
    stop = asyncio.Event()
    trading = asyncio.create_task(
        run_trade(config, RunnerSecrets(telegram_token=TOKEN), container=container, stop=stop)
    )
    try:
        for _ in range(2400):  # the adoption, then the answer
            texts = [json.loads(c.request.content)["text"] for c in sent.calls]
            if len([t for t in texts if "<b>" not in t]) == 4:
                break
            await asyncio.sleep(0.05)
    finally:
        stop.set()
        await asyncio.wait_for(trading, 30)
    bodies = [json.loads(c.request.content) for c in sent.calls]
    positions, pnl, status, health = [b for b in bodies if "parse_mode" not in b]  # alerts: HTML
    assert {b["chat_id"] for b in (positions, pnl, status, health)} == {CHAT}
    assert "ETHUSDT long 0.5" in positions["text"]
    assert "all time: 0 over 0" in pnl["text"]  # read from the journal: nothing closed yet
    assert "demo on binance" in status["text"] and "unprotected: 0" in status["text"]
    assert "database: ok" in health["text"]
