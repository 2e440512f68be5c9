"""A closed position's figures from the venue's own fills and funding.

On every close (a stop filled, a person closed it, a liquidation, the aged manager, a rollback)
the position's fills and funding are read from the venue and its exit price (volume-weighted),
fees, funding and realized PnL journaled: the row and a `position_pnl_recorded` event. When the
venue cannot be read now, or its trade history does not show the exit yet, the position stays
unsettled and the synchronizer's next pass settles it (`settle_unsettled`), so a crash or an
outage between the close and its figures loses nothing.
"""

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal

import attrs

from tradecore.domain.errors import DomainError
from tradecore.domain.events import EventType
from tradecore.domain.numbers import ZERO
from tradecore.domain.orders import OrderRole, role_of
from tradecore.domain.pnl import Fill, RealizedPnl, position_fills, realized_pnl
from tradecore.domain.positions import Position
from tradecore.ports.exchange import Exchange, ExchangeUnavailable
from tradecore.ports.repositories import StaleVersion, Store, StoreUnavailable

from .fills import read_fills
from .recorder import Recorder, save_recorded


class Settlement:
    def __init__(self, exchange: Exchange, store: Store, recorder: Recorder) -> None:
        self._exchange = exchange
        self._store = store
        self._recorder = recorder

    async def settle(
        self, position: Position, *, fills: Sequence[Fill] | None = None
    ) -> Position | None:
        """Journal `position`'s figures from the venue; None if it needs none (still open,
        never filled, already settled) or they cannot be known or written yet (the
        synchronizer tries again on its next pass). `fills`: the symbol's fills as
        `read_fills` read them after the close, when the caller has them (the synchronizer
        read them to see why the position closed): not read again."""
        try:
            return await self._settle(position, fills)
        except StoreUnavailable:
            return None

    async def _settle(self, position: Position, fills: Sequence[Fill] | None) -> Position | None:
        current = await self._store.positions.get(position.id) or position
        if not current.awaits_settlement:
            return None
        try:
            figures = await self._figures(current, fills)
        except ExchangeUnavailable:
            return None  # the synchronizer's next pass tries again
        except DomainError as error:  # a fill the venue reported that makes no sense
            self._recorder.record(
                EventType.CRITICAL_ERROR,
                position=current,
                error=f"realized PnL cannot be computed from the venue's fills: {error}",
            )
            return None
        if figures is None:
            return None
        settled = attrs.evolve(
            current,
            exit_price=figures.exit_price,
            fees=figures.fees,
            funding=figures.funding,
            realized_pnl=figures.realized,
            version=current.version + 1,
        )
        recorded = self._recorder.event(
            EventType.POSITION_PNL_RECORDED,
            position=settled,
            data={
                "entry_price": figures.entry_price,
                "exit_price": figures.exit_price,
                "quantity": figures.exit_quantity,
                "gross": figures.gross,
                "fees": figures.fees,
                "funding": figures.funding,
                "realized_pnl": figures.realized,
                "other_fees": {asset: fee for asset, fee in figures.other_fees},
            },
        )
        try:
            await save_recorded(self._store, self._recorder, settled, recorded)  # one write
        except StaleVersion:
            return None  # settled meanwhile by another caller
        return settled

    async def _start(self, position: Position, fills: Sequence[Fill]) -> datetime:
        """Where the position's fills begin: its entry order's first fill (the venue's clock
        may run behind ours), else the moment it was created (or adopted)."""
        if not position.adopted:
            entries = await _entry_ids(self._store, position)
            first = [f.at for f in fills if f.order_id in entries]
            if first:
                return min(first)
        return position.created_at

    async def settle_unsettled(self) -> int:
        """Settle every closed position still lacking its figures; how many were settled."""
        try:
            waiting = await self._store.positions.unsettled()
        except StoreUnavailable:
            return 0
        settled = 0
        for position in waiting:
            settled += await self.settle(position) is not None
        return settled

    async def _figures(self, position: Position, read: Sequence[Fill] | None) -> RealizedPnl | None:
        held = position.requested_quantity if position.adopted else ZERO
        fetched = read if read is not None else await read_fills(self._exchange, position)
        fills = position_fills(
            fetched, position.side, since=await self._start(position, fetched), held=held
        )
        if not _flat(fills, position, held) or not any(f.side is position.side.exit for f in fills):
            return None  # the venue's history does not show the whole position yet
        start, end = fills[0].at, fills[-1].at
        funding = [
            payment
            for payment in await self._exchange.fetch_funding(position.symbol, since=start)
            if payment.at <= end
        ]
        return realized_pnl(
            position.side,
            fills,
            funding,
            entry_price=position.entry_price if held else None,
            entry_quantity=held,
        )


async def _entry_ids(store: Store, position: Position) -> set[str]:
    return {
        order.order_id
        for order in await store.orders.for_position(position.id)
        if role_of(order.client_order_id) is OrderRole.ENTRY
    }


def _flat(fills: Sequence[Fill], position: Position, held: Decimal) -> bool:
    """The fills take the position back to zero (its whole life is in the history)."""
    remaining = held
    for fill in fills:
        remaining += fill.quantity if fill.side is position.side.entry else -fill.quantity
    return remaining <= ZERO
