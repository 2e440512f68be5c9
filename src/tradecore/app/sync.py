"""Synchronizer (SPEC §8): the venue is the truth, the journal follows it.

Positions the journal has and the venue does not are closed in the journal (`phantom`, or
plainly `position_closed` when our own stop or exit order filled); positions the venue has
and the journal does not are adopted and then protected; quantity mismatches are corrected;
closed positions still lacking their realized PnL are settled from the venue's fills.
A symbol with an operation in flight is never touched (the domain's rule).
"""

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from decimal import Decimal

import attrs

from tradecore.domain.events import EventType
from tradecore.domain.orders import OrderRole, OrderType, role_of
from tradecore.domain.pnl import Fill, traded
from tradecore.domain.positions import Position, PositionState
from tradecore.domain.precision import MarketRules
from tradecore.domain.reconcile import (
    AdoptPosition,
    ClosePhantom,
    CorrectQuantity,
    synchronize,
)
from tradecore.domain.stops import StopParams
from tradecore.ports.clock import Clock, IdGenerator
from tradecore.ports.exchange import Exchange, ExchangeUnavailable
from tradecore.ports.repositories import Store

from .closing import PositionCloser
from .fills import read_fills
from .protection import protective_stop
from .recorder import Recorder
from .settlement import Settlement
from .snapshot import Heartbeats, take_snapshot
from .stop_keeper import StopKeeper


@attrs.frozen(kw_only=True)
class SyncReport:
    closed: int = 0
    adopted: int = 0
    corrected: int = 0
    settled: int = 0
    skipped: bool = False
    unread: str | None = None  # what a skipped pass could not read: "venue" or "database"


class Synchronizer:
    def __init__(
        self,
        exchange: Exchange,
        store: Store,
        keeper: StopKeeper,
        recorder: Recorder,
        clock: Clock,
        ids: IdGenerator,
        rules: Mapping[str, MarketRules],
        *,
        closer: PositionCloser,
        heartbeats: Heartbeats | None = None,
        stops: StopParams | None = None,
        interval_seconds: float = 120,
        on_adopted: Callable[[Position], Awaitable[None]] | None = None,
        settlement: Settlement | None = None,
        resolve_opens: Callable[[], Awaitable[object]] | None = None,
    ) -> None:
        self._resolve_opens = resolve_opens
        self._exchange = exchange
        self._store = store
        self._keeper = keeper
        self._recorder = recorder
        self._clock = clock
        self._ids = ids
        self._rules = rules
        self._closer = closer
        self._heartbeats = heartbeats
        self._stops = stops or StopParams()
        self.interval_seconds = interval_seconds
        self._on_adopted = on_adopted
        self._settlement = settlement
        self._passing = asyncio.Lock()

    async def sync(self) -> SyncReport:
        """One pass; passes never overlap (the guard may ask for one between two)."""
        async with self._passing:
            return await self._sync()

    async def adopt_missing(self) -> int:
        """A pass for the guard, which found a bare position the journal lacks: how many
        positions were adopted (each protected by the keeper as it is adopted)."""
        return (await self.sync()).adopted

    async def _sync(self) -> SyncReport:
        if self._resolve_opens is not None:
            await self._resolve_opens()  # opens whose entry is unproven first (the guard's way)
        venue = self._exchange.venue.value
        self._recorder.record(EventType.SYNCHRONIZATION_STARTED, exchange=venue)
        refused: list[str] = []
        snapshot = await take_snapshot(
            self._exchange, self._store, self._clock, self._heartbeats, refused=refused
        )
        if snapshot is None:
            component = refused[0] if refused else "venue or database"
            self._recorder.record(
                EventType.SYNCHRONIZATION_COMPLETED,
                exchange=venue,
                error=f"the {component} could not be read; nothing concluded",
                data={"skipped": True, "component": component},
            )
            return SyncReport(skipped=True, unread=component)
        journal = {p.id: p for p in snapshot.positions}
        closed = adopted = corrected = 0
        left: list[str] = []  # flat on the venue, but the close could not be journaled
        for action in synchronize(snapshot):
            if isinstance(action, ClosePhantom) and action.position_id in journal:
                position = journal[action.position_id]
                if await self._close(position, action):
                    closed += 1
                elif await self._still_open(position):
                    left.append(position.symbol)
            elif isinstance(action, AdoptPosition):
                await self._adopt(action)
                adopted += 1
            elif isinstance(action, CorrectQuantity) and action.position_id in journal:
                corrected += await self._correct(journal[action.position_id])
        # closed positions whose figures the venue could not give at their close (an outage,
        # a crash, a rollback): their exit price, fees, funding and realized PnL now
        settled = 0 if self._settlement is None else await self._settlement.settle_unsettled()
        report = SyncReport(closed=closed, adopted=adopted, corrected=corrected, settled=settled)
        self._recorder.record(
            EventType.SYNCHRONIZATION_COMPLETED,
            exchange=venue,
            data={
                "closed": closed,
                "adopted": adopted,
                "corrected": corrected,
                "settled": settled,
                "left": sorted(set(left)),
            },
        )
        return report

    async def _close(self, position: Position, action: ClosePhantom) -> bool:
        """True if this pass journaled the position closed. The keeper confirms on its own
        read under the symbol's lock: a venue it cannot read then (or that holds the position
        again) leaves the journal as it was, and the pass does not count it closed."""
        if position.state not in (PositionState.ACTIVE, PositionState.CLOSING):
            return False
        reason, by, fills = await self._why_closed(position)
        # none of the bot's orders closed it: `phantom_position_closed`, written once the
        # close is confirmed (it ends the position in the report and the monitor)
        closed = await self._closer.closed_on_venue(
            position,
            reason or "gone from the venue",
            fills=fills,
            phantom=action.detail if reason is None else None,
            order_id=by,
        )
        return closed is not None

    async def _still_open(self, position: Position) -> bool:
        """The journal still holds `position` open (not closed meanwhile by another use
        case, such as the aged manager)."""
        current = await self._store.positions.get(position.id)
        return current is not None and current.state in (
            PositionState.ACTIVE,
            PositionState.CLOSING,
        )

    async def _why_closed(
        self, position: Position
    ) -> tuple[str | None, str | None, Sequence[Fill] | None]:
        """'stop … filled' / 'exit order … filled' when one of our own orders closed it, and
        that order's id (the close's event names it) —
        the recorded stop included when no order row stands for it (a stop the entry carried,
        `adopt_carried`: nothing was sent for it, so nothing was written to the orders) —
        and the symbol's fills if they were read to find out (the close's figures come from
        the same read: one phantom close, one read of the fills)."""
        ours = [
            order
            for order in await self._store.orders.for_position(position.id)
            if role_of(order.client_order_id) is not OrderRole.ENTRY
        ]
        roles = {order.order_id: role_of(order.client_order_id) for order in ours}
        limits = {order.order_id for order in ours if order.type is OrderType.LIMIT}
        ids = list(roles)
        if position.stop_order_id is not None and position.stop_order_id not in roles:
            ids.append(position.stop_order_id)
        for order_id in reversed(ids):
            try:
                latest = await self._exchange.fetch_order(position.symbol, order_id)
            except ExchangeUnavailable:
                return None, None, None
            if latest is not None and latest.filled > 0 and not latest.is_open:
                kind = "stop" if latest.is_stop else _exit(latest.type is OrderType.LIMIT)
                return f"{kind} {latest.order_id} filled", latest.order_id, None
        by, fills = await self._why_closed_by_fills(position, ids)
        if by is None:
            by, fills = await self._why_closed_by_unnamed_stop(position, fills)
        if by is None:
            return None, None, fills
        exit_order = roles.get(by) is OrderRole.EXIT and by != position.stop_order_id
        kind = _exit(by in limits) if exit_order else "stop"
        return f"{kind} {by} filled", by, fills

    async def _why_closed_by_fills(
        self, position: Position, ids: list[str]
    ) -> tuple[str | None, Sequence[Fill] | None]:
        """None of its orders listed as filled (Bybit's look-ups may lag): the account's
        fills (Bybit `/v5/execution/list`, with the `orderId`) may show one of them traded
        (its id)."""
        if not ids:
            return None, None
        try:
            fills = await read_fills(self._exchange, position)
        except ExchangeUnavailable:
            return None, None
        for order_id in reversed(ids):
            if traded(fills, order_id) is not None:
                return order_id, fills
        return None, fills

    async def _why_closed_by_unnamed_stop(
        self, position: Position, fills: Sequence[Fill] | None
    ) -> tuple[str | None, Sequence[Fill] | None]:
        """A recorded stop without its order id (a stop the entry carried, journaled while
        the venue's stops could not be read): the order of the last fill on the exit side
        since the position opened is looked up; a stop-loss that filled, it closed it (its
        id). The fills already read in this pass are used, else read once."""
        if position.stop_order_id is not None or position.stop_price is None:
            return None, fills
        since = position.opened_at or position.created_at
        try:
            if fills is None:
                fills = await read_fills(self._exchange, position)
            exits = [
                f
                for f in sorted(fills, key=lambda f: f.at)
                if f.side is position.side.exit and f.at >= since
            ]
            if not exits:
                return None, fills
            order = await self._exchange.fetch_order(position.symbol, exits[-1].order_id)
        except ExchangeUnavailable:
            return None, fills
        if order is None or not order.is_stop_loss or order.filled <= 0:
            return None, fills
        return order.order_id, fills

    async def _adopt(self, action: AdoptPosition) -> None:
        held = action.position
        now = self._clock.now()
        position = Position(
            id=self._ids.new_id(),
            venue=held.venue,
            symbol=held.symbol,
            side=held.side,
            state=PositionState.ACTIVE,
            requested_quantity=held.quantity,
            quantity=held.quantity,
            entry_price=held.entry_price,
            created_at=now,
            opened_at=now,
            adopted=True,
        )
        added = self._recorder.event(
            EventType.MISSING_POSITION_ADDED,
            position=position,
            data={
                "quantity": held.quantity,
                "entry_price": held.entry_price,
                "detail": action.detail,
            },
        )
        await self._store.positions.add(position, events=[added])  # with it, or not at all
        self._recorder.emit(added)
        await self._protect(position)

    async def _protect(self, position: Position) -> None:
        """The keeper's way for a position it finds without a recorded stop: a stop-loss a
        person left on the venue for the whole position is adopted as its stop (method
        "adopted"), never doubled nor cancelled; a stop is placed only where none stands."""
        beats = self._heartbeats() if self._heartbeats else None
        found = await self._keeper.ensure_protected(
            position, initial=self._initial_stop, heartbeats=beats
        )
        if found.failed or found.busy or self._on_adopted is None:
            return  # the guard reports it unprotected on its next pass
        protected = await self._store.positions.get(position.id)
        if protected is not None and protected.stop_price is not None:
            await self._on_adopted(protected)  # trailed from now on (story 6)

    async def _initial_stop(self, position: Position) -> Decimal | None:
        return await protective_stop(
            self._exchange, self._rules, position, self._stops, self._recorder
        )

    async def _correct(self, position: Position) -> bool:
        """The keeper writes the venue's quantity, under the symbol's lock on a fresh read
        (a stop move may be writing the same row meanwhile; the snapshot may be stale by
        now): True if the journal's quantity changed."""
        before = position.quantity
        corrected = await self._keeper.correct_quantity(position)
        return corrected is not None and corrected.quantity != before


def _exit(limit: bool) -> str:
    """What closed a position by one of its exit orders: the aged manager's reduce-only
    limit order, or a market close (the guard's, a rollback, the aged cap's) — so that
    reports count only the first as an aged exit."""
    return "aged exit order" if limit else "exit order"
