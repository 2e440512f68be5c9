"""What happened around a violation: the venue's books and the application's events on that
symbol, in time order, for a person reading a failing seed."""

from collections.abc import Iterable
from datetime import datetime, timedelta

from tradecore.adapters.paper import Amendment, Books, Fill, OrderClosed, OrderRecord
from tradecore.domain.events import Event

from .invariants import Violation


def timeline(
    books: Books,
    events: Iterable[Event],
    violation: Violation,
    *,
    before: float = 180.0,
    after: float = 5.0,
) -> list[str]:
    """One line per venue entry and event on the violation's symbol around its moment."""
    start = (violation.since or violation.at) - timedelta(seconds=before)
    end = violation.at + timedelta(seconds=after)
    lines: list[tuple[datetime, int, str]] = []
    for n, entry in enumerate(books.log):
        if entry.at < start or entry.at > end:
            continue
        if violation.symbol is not None and entry.symbol != violation.symbol:
            continue
        lines.append((entry.at, n, "venue  " + _venue_line(entry)))
    for n, event in enumerate(events):
        if event.created_at < start or event.created_at > end:
            continue
        if violation.symbol is not None and event.symbol not in (violation.symbol, None):
            continue
        data = {k: v for k, v in event.data.items() if k != "stack_trace"}
        text = f"event  {event.type.value} {event.severity.value} {data}"
        if event.error_message:
            text += f" error={event.error_message[:160]}"
        lines.append((event.created_at, 1_000_000 + n, text))
    return [f"{at:%H:%M:%S.%f} {text}" for at, _, text in sorted(lines)]


def _venue_line(entry: OrderRecord | Amendment | OrderClosed | Fill) -> str:
    if isinstance(entry, OrderRecord):
        return (
            f"placed {entry.origin} {entry.type.value} {entry.side.value} {entry.quantity} "
            f"trigger={entry.trigger_price} price={entry.price} cid={entry.client_order_id} "
            f"id={entry.order_id}"
        )
    if isinstance(entry, Amendment):
        return (
            f"amended {entry.origin} id={entry.order_id} trigger {entry.old_trigger} -> "
            f"{entry.new_trigger} price {entry.old_price} -> {entry.new_price}"
        )
    if isinstance(entry, OrderClosed):
        return (
            f"{entry.status.value} by {entry.origin} "
            f"cid={entry.client_order_id} id={entry.order_id}"
        )
    return (
        f"fill {entry.reason} {entry.side.value} {entry.quantity} @ {entry.price} "
        f"cid={entry.client_order_id} id={entry.order_id}"
    )
