"""Every journaled event is one log line with its reason and correlation id; JSON on request.

The records are read back as JSON (`logging.format = "json"`), never matched as text.
"""

import json
import logging
import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from loguru import logger

from tradecore.adapters.reporting.telemetry import TeeSink, Telemetry
from tradecore.domain.events import Event, EventType, Severity
from tradecore.testing import EventLog
from tradecore.wiring.config import LogFormat, LoggingSettings, LogLevel
from tradecore.wiring.logs import configure_logging

AT = datetime(2026, 11, 30, 9, 5, tzinfo=UTC)
TOKEN = "123456:tgTOKENpoiuytrewq"
API_KEY = "bnKEY0123456789abcdef"


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    yield
    logger.remove()
    logger.add(sys.stderr)
    logging.basicConfig(handlers=[logging.StreamHandler()], force=True)


def event(kind: EventType, **fields: Any) -> Event:
    return Event(id=uuid.uuid4(), type=kind, created_at=AT, **fields)


def records(path: Path) -> list[dict[str, Any]]:
    lines = [json.loads(line)["record"] for line in path.read_text().splitlines()]
    return [r for r in lines if "event_type" in r["extra"]]


def log_through_the_tee(tmp_path: Path, events: list[Event], secrets: tuple[str, ...] = ()):
    log = tmp_path / "tradecore.log"
    configure_logging(
        LoggingSettings(file=str(log), format=LogFormat.JSON, level=LogLevel.INFO),
        secrets,
        stderr=open(tmp_path / "stderr.txt", "a"),  # noqa: SIM115 (loguru owns it)
    )
    journal = EventLog()
    tee = TeeSink(journal, Telemetry())
    for e in events:
        tee.emit(e)
    logger.remove()
    return records(log), journal


def test_every_journaled_event_is_one_log_record_with_the_events_facts(tmp_path: Path) -> None:
    placed = event(
        EventType.STOP_LOSS_PLACED,
        correlation_id="op-17",
        position_id="pos-17",
        order_id="tc-op-17-s0",
        symbol="BTCUSDT",
        exchange="binance",
        data={"stop_price": Decimal("0.00001234"), "quantity": Decimal("12")},
    )
    refused = event(
        EventType.RISK_LIMITS_EXCEEDED,
        correlation_id="wave-0845:XRPUSDT",
        symbol="XRPUSDT",
        exchange="binance",
        data={"reason": "max_exposure", "detail": "exposure 2100 USD would exceed 2000 USD"},
    )
    trace = event(EventType.SIGNAL_RECEIVED, severity=Severity.DEBUG, symbol="ETHUSDT")

    found, journal = log_through_the_tee(tmp_path, [placed, refused, trace])

    assert journal.events == [placed, refused, trace]  # the journal still gets each one
    assert [r["extra"]["event_type"] for r in found] == [
        "stop_loss_placed",
        "risk_limits_exceeded",
        "signal_received",
    ]
    stop, risk, received = found
    assert stop["level"]["name"] == "INFO"
    assert stop["extra"]["correlation_id"] == "op-17"
    assert stop["extra"]["position_id"] == "pos-17"
    assert stop["extra"]["order_id"] == "tc-op-17-s0"
    assert stop["extra"]["symbol"] == "BTCUSDT" and stop["extra"]["exchange"] == "binance"
    assert stop["extra"]["event_id"] == str(placed.id)
    assert stop["extra"]["created_at"] == "2026-11-30T09:05:00+00:00"
    assert stop["extra"]["data"] == {"stop_price": "0.00001234", "quantity": "12"}
    assert risk["level"]["name"] == "WARNING"  # a warning stays a warning
    assert risk["extra"]["severity"] == "WARNING"
    assert risk["extra"]["reason"] == "max_exposure"
    assert risk["extra"]["data"]["detail"] == "exposure 2100 USD would exceed 2000 USD"
    assert risk["extra"]["correlation_id"] == "wave-0845:XRPUSDT"
    assert received["level"]["name"] == "INFO"  # a state change is never below INFO


def test_the_reason_is_the_events_error_when_it_has_one(tmp_path: Path) -> None:
    failed = event(
        EventType.STOP_LOSS_FAILED,
        correlation_id="op-3",
        symbol="SOLUSDT",
        error_message="binance -2021: order would immediately trigger",
        data={"attempt": 2},
    )

    (record,), _ = log_through_the_tee(tmp_path, [failed])

    assert record["extra"]["reason"] == "binance -2021: order would immediately trigger"
    assert record["extra"]["data"] == {"attempt": 2}


def test_a_configured_secret_never_reaches_the_log_from_an_event(tmp_path: Path) -> None:
    leaky = event(
        EventType.ALERT_DELIVERY_FAILED,
        error_message=f"HTTP 401: bad token {TOKEN}",
        data={"channel": "telegram", "request": {"headers": [f"key={API_KEY}"]}},
    )

    found, _ = log_through_the_tee(tmp_path, [leaky], secrets=(TOKEN, API_KEY))

    written = (tmp_path / "tradecore.log").read_text()
    assert len(found) == 1
    assert TOKEN not in written and API_KEY not in written
    assert found[0]["extra"]["data"]["channel"] == "telegram"
