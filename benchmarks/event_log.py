"""What the log line of each journaled event costs the caller (issue 13, item 3).

Every event passes the runner's event tee, which writes one log line for it
(`tradecore.adapters.event_log`) through the runner's loguru set-up (a file sink, the secret
filter) before the journal queues it. Prints the CPU time per event line, text and JSON, for a
trailing move's event (the most frequent kind), against a plain loguru line to the same sink.
Run:

    .venv/bin/python benchmarks/event_log.py
"""

import tempfile
import time
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

from loguru import logger

from tradecore.adapters.event_log import log_event
from tradecore.domain.events import Event, EventType
from tradecore.wiring.config import LogFormat, LoggingSettings
from tradecore.wiring.logs import configure_logging

EVENTS = 20_000
SECRETS = ("tgTOKENpoiuytrewq", "bnKEY0123456789abcdef", "bnSECRET9876543210fedcba")


def main() -> None:
    event = Event(
        id=uuid.uuid4(),
        type=EventType.TRAILING_STOP_UPDATED,
        created_at=datetime.now(UTC),
        symbol="BTCUSDT",
        exchange="binance",
        correlation_id="pos-1",
        position_id="pos-1",
        data={"stop_price": Decimal("96100.5"), "best_price": Decimal("97100"), "updates": 7},
    )
    with tempfile.TemporaryDirectory() as folder, open("/dev/null", "w") as null:
        for style in (LogFormat.TEXT, LogFormat.JSON):
            log = Path(folder) / f"{style.value}.log"
            settings = LoggingSettings(file=str(log), format=style)
            configure_logging(settings, SECRETS, stderr=null, stderr_level="ERROR")
            plain = _per_call(lambda: logger.info("a plain line {}", 7))
            line = _per_call(lambda: log_event(event))
            logger.remove()
            print(
                f"{style.value:>4}: {line:6.1f} µs per event line "
                f"(a plain loguru line: {plain:5.1f} µs; {EVENTS} of each)"
            )


def _per_call(call: object) -> float:
    assert callable(call)
    started = time.process_time()
    for _ in range(EVENTS):
        call()
    return (time.process_time() - started) / EVENTS * 1e6


if __name__ == "__main__":
    main()
