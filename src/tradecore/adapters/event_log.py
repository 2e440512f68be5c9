"""Each journaled event as one log line: what changed, why, and the operation it belongs to.

The journal is the record; this is its readable echo for whoever tails the log. The line holds
the same facts as the event — type, severity, symbol, venue, correlation, position and order
ids, the reason and the event's data, encoded as the journal encodes them (Decimal as its exact
string) — in the message, and as loguru `extra` fields, so the JSON log
(`logging.format = "json"`) carries them under `record.extra`. An event of severity INFO or
below is logged at INFO (a state change is never hidden below the default level); a WARNING
or worse at its own level. Secrets are the log filter's business (`tradecore.wiring.logs`).
"""

import json
import uuid
from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from enum import Enum
from typing import Any

from loguru import logger

from tradecore.adapters.serialization import plain_decimal
from tradecore.domain.events import Event, Severity

# data keys that say why, in the order they are looked for when the event has no error text
_REASON_KEYS = ("reason", "why", "outcome", "fate")


def event_facts(event: Event) -> dict[str, Any]:
    """The event as plain JSON values: the fields a log record's `extra` carries."""
    data = {str(k): _plain(v) for k, v in event.data.items()}
    return {
        "event_type": event.type.value,
        "event_id": str(event.id),
        "created_at": event.created_at.isoformat(),  # the bot's clock (virtual in paper)
        "severity": event.severity.name,
        "correlation_id": event.correlation_id,
        "position_id": event.position_id,
        "order_id": event.order_id,
        "symbol": event.symbol,
        "exchange": event.exchange,
        "reason": reason_of(event, data),
        "data": data,
    }


def reason_of(event: Event, data: dict[str, Any]) -> str | None:
    if event.error_message:
        return event.error_message
    for key in _REASON_KEYS:
        value = data.get(key)
        if value not in (None, ""):
            return str(value)
    return None


def log_event(event: Event) -> None:
    """One log line for `event` (see the module's docstring)."""
    facts = event_facts(event)
    level = event.severity.name if event.severity >= Severity.WARNING else "INFO"
    # keyword arguments land in the record's `extra` (cheaper than a bound logger per event)
    logger.log(level, "{}", _line(facts), **facts)


def _plain(value: Any) -> Any:
    """`value` as the journal's JSON holds it (`adapters/serialization.py`): Decimal as its
    exact string, datetime ISO 8601, UUID and enums as text; containers walked."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, Decimal):
        return plain_decimal(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Enum):
        return _plain(value.value)
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_plain(v) for v in value]
    return str(value)


def _line(facts: dict[str, Any]) -> str:
    where = " ".join(str(facts[k]) for k in ("symbol", "exchange") if facts[k])
    head = f"{facts['event_type']} {where}".rstrip()
    reason = facts["reason"]
    parts = [f"{head}: {reason}" if reason else head]
    ids = [f"{k}={facts[k]}" for k in ("correlation_id", "position_id", "order_id") if facts[k]]
    if ids:
        parts.append(" ".join(ids))
    if facts["data"]:
        parts.append(json.dumps(facts["data"], ensure_ascii=False, separators=(",", ":")))
    return " | ".join(parts)
