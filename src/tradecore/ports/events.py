"""The event sink: takes an event without waiting for the database."""

from typing import Protocol, runtime_checkable

from tradecore.domain.events import Event


@runtime_checkable
class EventSink(Protocol):
    def emit(self, event: Event) -> None:
        """Queue `event`; never blocks, never raises for database trouble, never drops.

        The event is encoded later, by the writer: do not mutate its `data` after emitting.
        Each event's UUID is its identity; emitting the same event twice stores it once.
        """
        ...

    async def flush(self) -> None:
        """Return when every event emitted so far is written (or spooled)."""
        ...

    async def close(self) -> None:
        """Flush everything and stop the writer."""
        ...
