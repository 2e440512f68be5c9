"""An event as the row both databases store (SPEC §9 columns)."""

import uuid
from datetime import datetime

from tradecore.adapters.serialization import clean_text, dumps
from tradecore.domain.events import Event

EVENT_COLUMNS = (
    "id",
    "event_type",
    "event_data",
    "correlation_id",
    "position_id",
    "order_id",
    "symbol",
    "exchange",
    "severity",
    "error_message",
    "stack_trace",
    "created_at",
)

EventRow = tuple[
    uuid.UUID,
    str,
    str,
    str | None,
    str | None,
    str | None,
    str | None,
    str | None,
    str,
    str | None,
    str | None,
    datetime,
]


def event_row(event: Event) -> EventRow:
    """The row for `event`: data as JSON text (Decimal as exact string), severity by name."""
    return (
        event.id,
        event.type.value,
        dumps(event.data) if event.data else "{}",
        clean_text(event.correlation_id),
        clean_text(event.position_id),
        clean_text(event.order_id),
        clean_text(event.symbol),
        clean_text(event.exchange),
        event.severity.name,
        clean_text(event.error_message),
        clean_text(event.stack_trace),
        event.created_at,
    )


def safe_row(event: Event) -> EventRow:
    """`event_row`, or, if the event's data cannot be encoded, the row with the data's repr:
    one odd value must not keep a whole batch out of the database."""
    try:
        return event_row(event)
    except Exception as exc:
        row = list(event_row(_without_data(event)))
        row[2] = dumps({"unencodable_data": repr(event.data)[:10_000], "error": repr(exc)})
        return tuple(row)  # type: ignore[return-value]


def _without_data(event: Event) -> Event:
    import attrs

    return attrs.evolve(event, data={})
