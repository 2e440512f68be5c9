"""Recording that a position is closed on the venue: once, whoever notices first.

The synchronizer (a phantom, a filled stop), the aged manager (closed at the cap) and the
kernel all end here. It is idempotent: a position already closed in the journal is left as
it is. Its leftover stop is removed through the stop keeper, its trailing stop ends.
"""

import attrs

from tradecore.domain.events import EventType
from tradecore.domain.positions import Position, PositionState, StopOwner
from tradecore.ports.clock import Clock
from tradecore.ports.repositories import Store

from .recorder import Recorder
from .stop_keeper import StopKeeper
from .trailing import TrailingService


class PositionCloser:
    def __init__(
        self,
        store: Store,
        keeper: StopKeeper,
        recorder: Recorder,
        clock: Clock,
        trailing: TrailingService | None = None,
    ) -> None:
        self._store = store
        self._keeper = keeper
        self._recorder = recorder
        self._clock = clock
        self._trailing = trailing
        self.closed = 0

    async def closed_on_venue(self, position: Position, reason: str) -> Position | None:
        """Record that the venue no longer holds `position`; None if it was already closed."""
        current = await self._store.positions.get(position.id) or position
        if current.state not in (PositionState.ACTIVE, PositionState.CLOSING):
            return None
        if current.stop_price is not None:
            result = await self._keeper.apply(
                current,
                None,
                owner=current.stop_owner or StopOwner.PROTECTION,
                reason="position closed",
            )
            current = result.position
        closed = current.advance(
            PositionState.CLOSED, closed_at=self._clock.now(), close_reason=reason
        )
        closed = attrs.evolve(closed, stop_price=None, stop_order_id=None, stop_owner=None)
        await self._store.positions.save(closed)
        if self._trailing is not None:
            await self._trailing.end(position.id, reason=reason)
        self.closed += 1
        self._recorder.record(
            EventType.POSITION_CLOSED,
            position=closed,
            data={"reason": reason, "quantity": position.quantity},
        )
        return closed

    async def on_closed(self, position: Position, reason: str) -> None:
        """The `(position, reason)` callback form, for use cases that close positions."""
        await self.closed_on_venue(position, reason)
