"""Recording that a position is closed on the venue: once, whoever notices first.

The synchronizer (a phantom, a filled stop), the aged manager (closed at the cap) and the
kernel all end here. It is idempotent: a position already closed in the journal is left as
it is. The keeper removes its leftover stop and writes the row CLOSED under the symbol's
lock (two use cases noticing the same close at once record it once) — and not at all while
the venue, read under that lock, still holds the position or cannot be read; its trailing stop ends;
then its exit price, fees, funding and realized PnL are read from the venue's fills
(`Settlement`).
"""

from collections.abc import Sequence

from tradecore.domain.pnl import Fill
from tradecore.domain.positions import Position
from tradecore.ports.clock import Clock
from tradecore.ports.repositories import Store

from .settlement import Settlement
from .stop_keeper import StopKeeper
from .trailing import TrailingService


class PositionCloser:
    def __init__(
        self,
        store: Store,
        keeper: StopKeeper,
        clock: Clock,
        trailing: TrailingService | None = None,
        settlement: Settlement | None = None,
    ) -> None:
        self._store = store
        self._keeper = keeper
        self._clock = clock
        self._trailing = trailing
        self._settlement = settlement
        self.closed = 0

    async def closed_on_venue(
        self,
        position: Position,
        reason: str,
        *,
        fills: Sequence[Fill] | None = None,
        phantom: str | None = None,
        order_id: str | None = None,
    ) -> Position | None:
        """Record that the venue no longer holds `position`; None if it was already closed.
        `fills`: the symbol's fills, when the caller has just read them (`read_fills`).
        `phantom`: none of the bot's orders closed it (the synchronizer's detail): journaled
        as `phantom_position_closed` the moment the row is CLOSED, before anything else.
        `order_id`: the bot's order that closed it, named by `position_closed`."""
        closed = await self._keeper.record_closed(
            position, reason=reason, phantom=phantom, order_id=order_id
        )
        if closed is None:
            return None
        return await self.recorded(closed, reason, fills=fills)

    async def recorded(
        self,
        closed: Position,
        reason: str,
        *,
        fills: Sequence[Fill] | None = None,
    ) -> Position:
        """What follows the journal's row written CLOSED with its event (the keeper's
        `record_closed`): its trailing stop ends, its figures are read from the fills
        (`fills` when given, not read again)."""
        if self._trailing is not None:
            await self._trailing.end(closed.id, reason=reason)
        self.closed += 1
        if self._settlement is not None:  # its figures from the venue's fills, or next sync
            return await self._settlement.settle(closed, fills=fills) or closed
        return closed

    async def on_closed(self, position: Position, reason: str) -> None:
        """The `(position, reason)` callback form, for use cases that close positions."""
        await self.closed_on_venue(position, reason)
