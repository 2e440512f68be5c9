"""Turning state changes into events: time from the clock port, ids from the id port."""

from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

from tradecore.domain.events import Event, EventType, Severity
from tradecore.domain.positions import Position
from tradecore.ports.clock import Clock, IdGenerator
from tradecore.ports.events import EventSink
from tradecore.ports.repositories import Store

# Bounds on the events kept for a position's next save (see `Recorder.unsaved`): a position
# the process never saves again (another process's, one already closed) must not grow them.
_UNSAVED_PER_POSITION = 200
_UNSAVED_POSITIONS = 10_000


class Recorder:
    """Builds events and hands them to the sink, which never blocks on the database."""

    def __init__(self, sink: EventSink, clock: Clock, ids: IdGenerator) -> None:
        self._sink = sink
        self._clock = clock
        self._ids = ids
        # events recorded for each position since its row was last saved by this process
        self._unsaved: OrderedDict[str, list[Event]] = OrderedDict()

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
        return self.emit_recorded(event)

    def emit_recorded(self, event: Event) -> Event:
        """Hand `event` to the sink now, before the change it records is saved (to keep the
        venue's order): the position's next save stores it with the row (`unsaved`)."""
        self._sink.emit(event)
        if event.position_id is not None:
            self._keep_unsaved(event.position_id, event)
        return event

    def _keep_unsaved(self, position_id: str, event: Event) -> None:
        kept = self._unsaved.get(position_id)
        if kept is None:
            kept = self._unsaved[position_id] = []
            if len(self._unsaved) > _UNSAVED_POSITIONS:
                self._unsaved.popitem(last=False)
        kept.append(event)
        if len(kept) > _UNSAVED_PER_POSITION:
            del kept[0]

    def unsaved(self, position_id: str) -> tuple[Event, ...]:
        """The events recorded for the position since this process last saved its row: the
        next save stores them with the row (`saved`). The journal writes them from its queue
        too, but a process killed before its journal flushed loses the queue — a row saved
        after them would hold a change whose events are gone (a create-then-cancel's
        `stop_loss_replaced` and the old stop's cancel, an open's fill)."""
        return tuple(self._unsaved.get(position_id, ()))

    def saved(self, position_id: str, events: tuple[Event, ...]) -> None:
        """`events` (from `unsaved`) are stored with the position's row: forget them."""
        kept = self._unsaved.get(position_id)
        if kept is None:
            return
        done = {id(e) for e in events}
        kept[:] = [e for e in kept if id(e) not in done]
        if not kept:
            del self._unsaved[position_id]

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


async def save_recorded(
    store: Store, recorder: Recorder, position: Position, *events: Event
) -> Position:
    """Store the position's new state with the events that record it, in one write (the
    store's transaction): `events`, built for this change (`Recorder.event`) and emitted once
    the row is saved, and every event recorded for the position since its row was last
    saved (`Recorder.unsaved`). A process that dies after the save, even before its journal
    flushed, leaves no change without its events (promise 2); the journal skips its copies."""
    earlier = recorder.unsaved(position.id)
    await store.positions.save(position, events=(*earlier, *events))
    recorder.saved(position.id, earlier)
    recorder.emit(*events)
    return position
