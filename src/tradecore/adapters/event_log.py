"""Each journaled event as one log line: what changed, why, and the operation it belongs to.

The journal is the record; this is its readable echo for whoever tails the log. The line holds
the same facts as the event — type, severity, symbol, venue, correlation, position and order
ids, the reason and the event's data, encoded as the journal encodes them (Decimal as its exact
string) — in the message, and as loguru `extra` fields, so the JSON log
(`logging.format = "json"`) carries them under `record.extra`. An event of severity INFO or
below is logged at INFO (a state change is never hidden below the default level); a WARNING
or worse at its own level. Secrets are the log filter's business (runner/logging.py).
"""

import json
from typing import Any

from loguru import logger

from tradecore.adapters.serialization import dumps
from tradecore.domain.events import Event, Severity

# data keys that say why, in the order they are looked for when the event has no error text
_REASON_KEYS = ("reason", "why", "outcome", "fate")


def event_facts(event: Event) -> dict[str, Any]:
    """The event as plain JSON values: the fields a log record's `extra` carries."""
    data = json.loads(dumps(event.data)) if event.data else {}
    return {
        "event_type": event.type.value,
        "event_id": str(event.id),
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
    logger.bind(**facts).log(level, "{}", _line(facts))


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
