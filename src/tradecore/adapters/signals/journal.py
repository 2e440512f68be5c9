"""The events the signal sources emit, built in one place so both sources record alike."""

from collections.abc import Mapping
from typing import Any

from tradecore.domain.events import Event, EventType
from tradecore.domain.signals import Fate, Signal
from tradecore.ports.clock import Clock, IdGenerator
from tradecore.ports.events import EventSink


class SignalJournal:
    """Emits signal and connection events with ids and times from the clock and id ports."""

    def __init__(self, *, events: EventSink, clock: Clock, ids: IdGenerator, source: str) -> None:
        self._events = events
        self._clock = clock
        self._ids = ids
        self._source = source

    def received(self, signal: Signal) -> None:
        self._emit(
            EventType.SIGNAL_RECEIVED,
            {
                "signal_id": signal.id,
                "side": signal.side.value,
                "score_week": f"{signal.score_week:f}",
                "score_month": f"{signal.score_month:f}",
                "wave": signal.wave.isoformat(),
                "created_at": signal.created_at.isoformat(),
            },
            correlation_id=signal.id,
            symbol=signal.symbol,
            exchange=signal.venue.value,
        )

    def rejected(self, reason: str, detail: str, raw: str, **where: Any) -> None:
        """A frame or line that did not decode or validate; `raw` is already truncated.

        Its fate is `rejected` (a message that never became a signal has no other event)."""
        signal_id = where.get("signal_id")
        self._emit(
            EventType.SIGNAL_REJECTED,
            {
                "reason": str(reason),
                "detail": detail,
                "raw": raw,
                "fate": Fate.REJECTED.value,
                **where,
            },
            error_message=detail,
            correlation_id=signal_id,
        )

    def dropped(self, signal: Signal, reason: str) -> None:
        """A received signal that will not be delivered (buffer full, client closed): its
        fate is `filtered`, with the reason."""
        self._emit(
            EventType.SIGNAL_FILTERED,
            {
                "signal_id": signal.id,
                "fate": Fate.FILTERED.value,
                "reason": reason,
                "score_week": f"{signal.score_week:f}",
            },
            correlation_id=signal.id,
            symbol=signal.symbol,
            exchange=signal.venue.value,
        )

    def duplicate(self, signal_id: str) -> None:
        """The same id again: the signal was received (and has its fate) already, so this
        repeat carries no fate of its own."""
        self._emit(
            EventType.SIGNAL_FILTERED,
            {"signal_id": signal_id, "reason": "duplicate"},
            correlation_id=signal_id,
        )

    def connected(self, **data: Any) -> None:
        self._emit(EventType.WEBSOCKET_CONNECTED, data)

    def disconnected(self, reason: str, **data: Any) -> None:
        self._emit(
            EventType.WEBSOCKET_DISCONNECTED, {"reason": reason, **data}, error_message=reason
        )

    def _emit(self, event_type: EventType, data: Mapping[str, Any], **fields: Any) -> None:
        self._events.emit(
            Event(
                id=self._ids.new_uuid(),
                type=event_type,
                created_at=self._clock.now(),
                data={"source": self._source, **data},
                **fields,
            )
        )
