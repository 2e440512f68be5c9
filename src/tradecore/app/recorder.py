"""Turning state changes into events: time from the clock port, ids from the id port."""

from collections.abc import Mapping
from typing import Any

from tradecore.domain.events import Event, EventType, Severity
from tradecore.domain.positions import Position
from tradecore.ports.clock import Clock, IdGenerator
from tradecore.ports.events import EventSink


class Recorder:
    """Builds events and hands them to the sink, which never blocks on the database."""

    def __init__(self, sink: EventSink, clock: Clock, ids: IdGenerator) -> None:
        self._sink = sink
        self._clock = clock
        self._ids = ids

    def record(
        self,
        event_type: EventType,
        *,
        position: Position | None = None,
        correlation_id: str | None = None,
        symbol: str | None = None,
        exchange: str | None = None,
        order_id: str | None = None,
        severity: Severity | None = None,
        error: str | None = None,
        data: Mapping[str, Any] | None = None,
    ) -> Event:
        """Build the event (see `event`) and hand it to the sink."""
        event = self.event(
            event_type,
            position=position,
            correlation_id=correlation_id,
            symbol=symbol,
            exchange=exchange,
            order_id=order_id,
            severity=severity,
            error=error,
            data=data,
        )
        self._sink.emit(event)
        return event

    def emit(self, *events: Event) -> None:
        """Hand events built with `event` to the sink (after the store wrote them with the
        change they record: the journal skips its copy, the log echoes them)."""
        for event in events:
            self._sink.emit(event)

    def event(
        self,
        event_type: EventType,
        *,
        position: Position | None = None,
        correlation_id: str | None = None,
        symbol: str | None = None,
        exchange: str | None = None,
        order_id: str | None = None,
        severity: Severity | None = None,
        error: str | None = None,
        data: Mapping[str, Any] | None = None,
    ) -> Event:
        """The event, stamped now on the clock with a new id, not emitted: for a change the
        store writes together with its events (`PositionRepository.save(events=...)`)."""
        if position is not None:
            correlation_id = correlation_id or position.id
            symbol = symbol or position.symbol
            exchange = exchange or position.venue.value
        fields: dict[str, Any] = {}
        if severity is not None:
            fields["severity"] = severity
        return Event(
            id=self._ids.new_uuid(),
            type=event_type,
            created_at=self._clock.now(),
            data=dict(data or {}),
            correlation_id=correlation_id,
            position_id=position.id if position is not None else None,
            order_id=order_id,
            symbol=symbol,
            exchange=exchange,
            error_message=error,
            **fields,
        )
