"""Atomic open (SPEC §3): a persisted state machine that ends protected or undone.

`PENDING_ENTRY -> ENTRY_PLACED -> PENDING_SL -> ACTIVE`, or `FAILED` (nothing filled) /
`ROLLED_BACK` (the fill closed again). The intent is stored before any venue call; every
order carries a deterministic client id, so a lost response or a restart finds the order
instead of sending a second one. The stop goes through the stop keeper, for the *filled*
quantity. If it cannot be placed: close the fill at market and verify on the venue that the
position is gone; if that fails, a wide emergency stop; if that fails, a CRITICAL alert.

An entry whose state the venue has not proven (the answer lost, or the read-back ran out
before the venue listed it: Bybit's create only acknowledges) is never taken as failed. A
position the venue holds on its side is its fill, protected by the open there and then;
otherwise the open stays in flight, `PENDING_ENTRY`, and `resolve_unproven` — called by
every guard and sync pass — looks it up again by its client id, never sending it again.
Found, it is protected for what filled; not found while the venue holds a position on its
side, that position is this entry's fill and is protected; not found on a flat venue,
nothing opened.
"""

import asyncio
from collections.abc import Awaitable, Mapping
from datetime import datetime
from decimal import Decimal

import attrs

from tradecore.domain.events import EventType, Severity
from tradecore.domain.leverage import liquidated_before_stop
from tradecore.domain.model import Side
from tradecore.domain.numbers import ZERO
from tradecore.domain.orders import Order, OrderRole, OrderType, VenuePosition, client_order_id
from tradecore.domain.positions import (
    Operation,
    OperationKind,
    Position,
    PositionState,
    StopOwner,
)
from tradecore.domain.precision import MarketRules
from tradecore.domain.reconcile import LevelVerdict, judge_level, tighter
from tradecore.domain.stops import StopParams, emergency_stop, initial_stop
from tradecore.ports.alerts import Alert, Alerter
from tradecore.ports.clock import Clock, IdGenerator
from tradecore.ports.exchange import (
    Exchange,
    ExchangeUnavailable,
    Outcome,
    Rejected,
    RejectReason,
    Unknown,
)
from tradecore.ports.repositories import Store, StoreUnavailable

from .commands import Settling, settle
from .leverage import MarginDesk, NotPrepared
from .recorder import Recorder, save_recorded
from .settlement import Settlement
from .stop_keeper import StopKeeper

_REJECTION_EVENTS = {
    RejectReason.SYMBOL_UNAVAILABLE: EventType.SYMBOL_UNAVAILABLE,
    RejectReason.REGION_RESTRICTED: EventType.SYMBOL_UNAVAILABLE,
    RejectReason.UNKNOWN_SYMBOL: EventType.SYMBOL_UNAVAILABLE,
    RejectReason.BELOW_MIN_NOTIONAL: EventType.ORDER_BELOW_MINIMUM,
    RejectReason.INVALID_QUANTITY: EventType.ORDER_BELOW_MINIMUM,
}


@attrs.frozen(kw_only=True)
class OpenRequest:
    symbol: str
    side: Side
    quantity: Decimal
    rules: MarketRules
    signal_id: str | None = None
    wave: datetime | None = None
    correlation_id: str | None = None  # the wave's correlation id, carried into event data
    mark_price: Decimal | None = None  # the mark it was sized at (else the open asks for it)
    # every position the venue held when the open was decided (the wave reads them once for
    # all its opens, in the round trip of its balance and marks): none opens on a symbol the
    # venue holds. None: the caller could not read them, and only the journal is asked
    venue_positions: tuple[VenuePosition, ...] | None = None


@attrs.frozen(kw_only=True)
class OpenResult:
    position: Position | None
    opened: bool
    reason: str = ""

    @property
    def state(self) -> PositionState | None:
        return None if self.position is None else self.position.state

    @property
    def unproven(self) -> bool:
        """The entry was sent and its state is not proven: the open is still in flight and
        may yet end protected. Not a failure: nothing may be opened in its place."""
        return self.position is not None and self.position.state.is_opening


class OpenPosition:
    """Opens one position atomically. One open per (venue, symbol) at a time."""

    def __init__(
        self,
        exchange: Exchange,
        store: Store,
        keeper: StopKeeper,
        recorder: Recorder,
        clock: Clock,
        ids: IdGenerator,
        *,
        stops: StopParams | None = None,
        alerter: Alerter | None = None,
        lookups: int = 3,
        stop_tries: int = 3,
        retry_delay_seconds: float = 0.5,
        settlement: Settlement | None = None,
        margin: MarginDesk | None = None,
    ) -> None:
        self._exchange = exchange
        self._margin = margin
        self._settlement = settlement
        self._store = store
        self._keeper = keeper
        self._recorder = recorder
        self._clock = clock
        self._ids = ids
        self._stops = stops or StopParams()
        self._alerter = alerter
        self._lookups = lookups
        self._stop_tries = stop_tries
        self._retry_delay = retry_delay_seconds
        self._symbol_locks: dict[str, asyncio.Lock] = {}
        self._settling = Settling(
            attempts=stop_tries, lookups=lookups, retry_delay_seconds=retry_delay_seconds
        )

    async def open(self, request: OpenRequest) -> OpenResult:
        lock = self._symbol_locks.setdefault(request.symbol, asyncio.Lock())
        if lock.locked():
            return self._duplicate(request, "an open on this symbol is in flight")
        async with lock:
            try:
                existing = await self._store.positions.open_for(
                    self._exchange.venue, request.symbol
                )
                if existing is not None:
                    return self._duplicate(request, f"position {existing.id} is {existing.state}")
                held = _held_on_symbol(request)
                if held is not None:
                    return self._held_by_hand(request, held)
                refused = await self._margin_refusal(request)
                if refused is not None:
                    return OpenResult(position=None, opened=False, reason=refused)
                carried = await self._carried_stop(request)
                position = await self._intent(request)
            except StoreUnavailable as error:
                # Without the intent on disk a crash could open this twice: refuse instead.
                return OpenResult(
                    position=None, opened=False, reason=f"database unavailable: {error}"
                )
            return await self.drive(position, request.rules, carried=carried)

    async def drive(
        self,
        position: Position,
        rules: MarketRules,
        *,
        resumed: bool = False,
        carried: Decimal | None = None,
    ) -> OpenResult:
        """Take a position from whatever opening state it is in to a safe end.

        Used for new opens and, after a restart (`resumed`), for every open left half-done.
        A resumed open never sends its entry late: if the venue has no order under its
        client id, the open failed before it was sent. `carried`: the stop-loss a new
        entry carries (`Capabilities.entry_stop`), set by the venue as the entry fills.
        """
        fresh_fill = position.state is PositionState.PENDING_ENTRY and not resumed
        if position.state is PositionState.PENDING_ENTRY:
            position = await self._enter(position, send=not resumed, carried=carried)
        if position.state is PositionState.ENTRY_PLACED:
            position = await self._advance(position, PositionState.PENDING_SL)
        if position.state is PositionState.PENDING_SL:
            position = await self._protect(
                position, rules, fresh_fill=fresh_fill, carried=carried if fresh_fill else None
            )
            position = await self._check_liquidation(position)
        await self._finish_operation(position)
        unproven = position.state is PositionState.PENDING_ENTRY
        return OpenResult(
            position=position,
            opened=position.state is PositionState.ACTIVE and position.stop_price is not None,
            reason=_UNPROVEN if unproven else position.close_reason or "",
        )

    async def resolve_unproven(self, rules: Mapping[str, MarketRules]) -> list[OpenResult]:
        """Drive every open of this venue left in flight that no open of this process is
        driving now: an entry whose state was not proven, or an open a venue or database
        outage stopped half-way. Called by each guard and sync pass before it reads the
        venue, so a position the unproven entry opened is protected by the same pass."""
        results: list[OpenResult] = []
        try:
            for position in await self._store.positions.open_positions():
                if position.venue is not self._exchange.venue or not position.state.is_opening:
                    continue
                symbol_rules = rules.get(position.symbol)
                lock = self._symbol_locks.setdefault(position.symbol, asyncio.Lock())
                if symbol_rules is None or lock.locked():
                    continue  # its open is running in this process: it ends it
                async with lock:
                    current = await self._store.positions.get(position.id)
                    if current is not None and current.state.is_opening:
                        results.append(await self.drive(current, symbol_rules, resumed=True))
        except StoreUnavailable:
            pass  # the journal cannot be read: the next pass tries again; the pass goes on
        return results

    # -- steps ------------------------------------------------------------------------------

    async def _margin_refusal(self, request: OpenRequest) -> str | None:
        """Why not to open: the symbol's leverage and margin mode could not be set (before
        its first entry), or the estimated liquidation of this isolated open would come
        before its stop. None to go ahead."""
        if self._margin is None:
            return None
        margin = await self._margin.prepare(request.symbol)
        if isinstance(margin, NotPrepared):
            return f"leverage_not_set: {margin.detail}"
        mark = request.mark_price
        if mark is None:
            try:
                mark = await self._exchange.fetch_mark_price(request.symbol)
            except ExchangeUnavailable as error:
                return f"no mark price to estimate the liquidation price: {error}"
        refusal = margin.refusal(request.side, mark, request.quantity, self._stops)
        if refusal is None:
            return None
        self._recorder.record(
            EventType.LIQUIDATION_INSIDE_STOP,
            symbol=request.symbol,
            exchange=self._exchange.venue.value,
            error=refusal.detail,
            data={
                "when": "before the entry (estimate)",
                "side": request.side.value,
                "quantity": request.quantity,
                "mark_price": mark,
                "liquidation_price": refusal.liquidation,
                "stop_price": refusal.stop,
                "leverage": refusal.leverage,
                "signal_id": request.signal_id,
            },
        )
        return f"liquidation_inside_stop: {refusal.detail}"

    async def _check_liquidation(self, position: Position) -> Position:
        """After the fill and its stop: where the venue itself would liquidate the position.
        One that comes before the stop leaves the stop useless, so the position is closed
        at market (and the close verified on the venue) with an event."""
        if position.state is not PositionState.ACTIVE or position.stop_price is None:
            return position
        if position.stop_owner is not StopOwner.INITIAL:
            # an emergency stop after a failed rollback: the close was tried and failed
            return position
        try:
            held = await self._exchange.fetch_positions()
        except ExchangeUnavailable:
            return position  # unread: the stop stands; nothing is known to be wrong
        liquidation = next(
            (
                p.liquidation_price
                for p in held
                if p.symbol == position.symbol and p.side is position.side
            ),
            None,
        )
        stop = position.stop_price
        if liquidation is None or not liquidated_before_stop(position.side, liquidation, stop):
            return position
        detail = (
            f"the venue liquidates at {liquidation}, before the stop at {stop}; "
            "closed at market (lower trading.sizing.leverage)"
        )
        closed = await self._close_at_market(position)
        self._recorder.record(
            EventType.LIQUIDATION_INSIDE_STOP,
            position=position,
            severity=Severity.ERROR,
            error=detail,
            data={
                "when": "after the fill (the venue's liquidation price)",
                "liquidation_price": liquidation,
                "stop_price": stop,
                "quantity": position.quantity,
                "closed": closed,
            },
        )
        if not closed:
            return position  # its stop stands; the synchronizer records a later close
        reason = f"liquidation before the stop: {detail}"
        recorded = await self._keeper.record_closed(position, reason=reason)
        if recorded is None:
            return await self._store.positions.get(position.id) or position
        return await self._settled(recorded)

    async def _intent(self, request: OpenRequest) -> Position:
        now = self._clock.now()
        position = Position(
            id=self._ids.new_id(),
            venue=self._exchange.venue,
            symbol=request.symbol,
            side=request.side,
            state=PositionState.PENDING_ENTRY,
            requested_quantity=request.quantity,
            created_at=now,
            signal_id=request.signal_id,
            wave=request.wave,
        )
        entry_cid = client_order_id(position.id, OrderRole.ENTRY)
        async with self._store.transaction() as tx:
            await tx.positions.add(position)
            await tx.operations.start(
                Operation(
                    id=position.id,
                    kind=OperationKind.OPEN,
                    venue=position.venue,
                    symbol=position.symbol,
                    position_id=position.id,
                    started_at=now,
                    client_order_ids=(entry_cid,),
                )
            )
        self._recorder.record(
            EventType.POSITION_OPEN_STARTED,
            position=position,
            data={
                "side": request.side.value,
                "quantity": request.quantity,
                "signal_id": request.signal_id,
                "wave_correlation_id": request.correlation_id,
            },
        )
        return position

    async def _carried_level(self, position: Position) -> Decimal | None:
        """The stop-loss the position's entry carried, as the venue lists it with the entry
        (looked up by its client id); None when it carried none or the venue cannot say."""
        order = await self._lookup(position, client_order_id(position.id, OrderRole.ENTRY))
        return None if order is None else order.stop_loss

    async def _carried_stop(self, request: OpenRequest) -> Decimal | None:
        """The stop-loss the entry carries on a venue where an entry can (`entry_stop`):
        the initial stop planned from the mark the open was sized at (asked for if the
        request has none), the same distance as the initial stop. Set by the venue the
        instant the entry fills, so a fill the venue lists late is never bare (issue 11,
        item 5). None: the venue cannot, or no mark could be read (the entry goes without
        it and the stop is placed after the fill, as on any venue)."""
        if not self._exchange.capabilities.entry_stop:
            return None
        mark = request.mark_price
        if mark is None:
            try:
                mark = await self._exchange.fetch_mark_price(request.symbol)
            except ExchangeUnavailable:
                return None
        plan = initial_stop(request.side, mark, mark, request.rules.tick_size, self._stops)
        return plan.price

    async def _enter(
        self, position: Position, *, send: bool, carried: Decimal | None = None
    ) -> Position:
        cid = client_order_id(position.id, OrderRole.ENTRY)
        # A resumed open looks for the entry it may have sent before the restart; a fresh
        # one has sent nothing yet, and asking would cost a round trip.
        order = None if send else await self._lookup(position, cid)
        if order is None and not send:
            return await self._entry_not_found(position, cid)
        if order is not None and not _entry_proven(order):
            return self._still_unproven(position, cid, f"entry {order.order_id} is still open")
        if order is None:

            def send_entry() -> Awaitable[Outcome]:
                if carried is not None:  # only a venue with `entry_stop` is asked to
                    return self._exchange.create_market_order(
                        position.symbol,
                        position.side.entry,
                        position.requested_quantity,
                        client_order_id=cid,
                        stop_loss=carried,
                    )
                return self._exchange.create_market_order(
                    position.symbol,
                    position.side.entry,
                    position.requested_quantity,
                    client_order_id=cid,
                )

            async def lookup() -> Order | None:
                return await self._exchange.fetch_order_by_client_id(position.symbol, cid)

            # The one place answers are settled: Unknown and "already done" are looked up;
            # a market order is never re-sent after an Unknown (it could fill twice).
            outcome = await settle(
                send_entry,
                lookup,
                clock=self._clock,
                settling=self._settling,
                resend_unknown=False,
            )
            if isinstance(outcome, Unknown):
                # Not "failed": the venue may hold the entry, filled (issue 11, item 5).
                return await self._entry_unproven(position, cid, outcome.message)
            if isinstance(outcome, Rejected):
                return await self._fail(position, _describe(outcome), rejection=outcome)
            order = outcome.order
        await self._store.orders.record(order, role=OrderRole.ENTRY, position_id=position.id)
        self._recorder.record(
            EventType.ENTRY_ORDER_PLACED,
            position=position,
            order_id=order.order_id,
            data={"client_order_id": cid, "quantity": order.quantity},
        )
        if order.filled <= ZERO:
            return await self._fail(position, f"entry order {order.order_id} filled nothing")
        self._recorder.record(
            EventType.ENTRY_ORDER_FILLED,
            position=position,
            order_id=order.order_id,
            data={
                "filled": order.filled,
                "requested": position.requested_quantity,
                "average_price": order.average_price,
                "partial": order.filled < position.requested_quantity,
            },
        )
        return await self._advance(
            position,
            PositionState.ENTRY_PLACED,
            quantity=order.filled,
            entry_price=order.average_price or order.price,
            opened_at=self._clock.now(),
        )

    def _still_unproven(self, position: Position, cid: str, why: str) -> Position:
        """The entry's state is not proven: the open stays in flight (`PENDING_ENTRY`), for
        the next guard or sync pass (`resolve_unproven`) or a restart to resolve."""
        self._recorder.record(
            EventType.ENTRY_ORDER_PLACED,
            position=position,
            severity=Severity.WARNING,
            data={"client_order_id": cid, "state": "unknown", "why": why[:500]},
        )
        return position

    async def _entry_unproven(self, position: Position, cid: str, why: str) -> Position:
        """The entry was just sent and the venue did not prove its state. A position the
        venue holds on the entry's side is its fill (as `_entry_not_found` takes it): it is
        protected now, one round trip on, not bare until the next guard or sync pass. A flat
        venue proves nothing yet (the order may still be on its way): the open stays in
        flight for the resolver."""
        held = await self._held(position)
        if held is None or held.quantity <= ZERO:
            return self._still_unproven(position, cid, why)
        return await self._held_is_the_fill(position, held)

    async def _entry_not_found(self, position: Position, cid: str) -> Position:
        """The venue has no order under the entry's client id. If it holds a position on the
        entry's side, that is the entry's fill (the one position a symbol can have; the
        order is not listed yet, or no longer): protected as this open. A flat venue means
        nothing opened. A venue that cannot say leaves the open in flight."""
        held = await self._held(position)
        if held is None:
            return self._still_unproven(
                position, cid, "not found, and the venue's positions unread"
            )
        if held.quantity <= ZERO:
            return await self._flat(position, cid)
        return await self._held_is_the_fill(position, held)

    async def _flat(self, position: Position, cid: str) -> Position:
        """Not listed, and the venue is flat: nothing opened — unless the venue's fills show
        the entry traded (then it filled and was closed before anyone could protect it: the
        open goes on to its end, which finds the venue flat and journals it closed, with its
        figures). Bybit's fills carry the client id (`orderLinkId`); a venue whose fills do
        not (Binance) lists its orders at once, so its entry was found by the look-up."""
        try:
            fills = await self._exchange.fetch_fills(position.symbol, since=position.created_at)
        except ExchangeUnavailable:
            return self._still_unproven(position, cid, "not found, flat, and its fills unread")
        traded = [f for f in fills if f.client_order_id == cid]
        filled = sum((f.quantity for f in traded), ZERO)
        if filled <= ZERO:
            return await self._fail(
                position, "nothing opened: the entry is not on the venue and the venue is flat"
            )
        price = sum((f.price * f.quantity for f in traded), ZERO) / filled
        self._recorder.record(
            EventType.ENTRY_ORDER_FILLED,
            position=position,
            order_id=traded[0].order_id,
            data={
                "filled": filled,
                "requested": position.requested_quantity,
                "average_price": price,
                "partial": filled < position.requested_quantity,
                "found_by": "fills",
            },
        )
        return await self._advance(
            position,
            PositionState.ENTRY_PLACED,
            quantity=filled,
            entry_price=price,
            opened_at=traded[0].at,
        )

    async def _held_is_the_fill(self, position: Position, held: VenuePosition) -> Position:
        self._recorder.record(
            EventType.ENTRY_ORDER_FILLED,
            position=position,
            data={
                "filled": held.quantity,
                "requested": position.requested_quantity,
                "average_price": held.entry_price,
                "partial": held.quantity < position.requested_quantity,
                "found_by": "position",
            },
        )
        return await self._advance(
            position,
            PositionState.ENTRY_PLACED,
            quantity=held.quantity,
            entry_price=held.entry_price,
            opened_at=self._clock.now(),
        )

    async def _protect(
        self,
        position: Position,
        rules: MarketRules,
        *,
        fresh_fill: bool,
        carried: Decimal | None = None,
    ) -> Position:
        """Place the stop. Right after a fill nothing else is asked of the venue first: the
        time from the fill to the stop is the one round trip the promise allows. A resumed
        open first checks what the venue holds.

        A stop the entry carried (`entry_stop`: `carried` for a fresh fill, the stop the
        venue's position shows for a resumed open) is adopted as the bot's (method
        "carried"), never placed a second time; then it is moved to the initial stop from
        the fill if it is looser than that (priced from the mark, the fill may be worse).

        The stop set is never looser than the last level the bot set (issue 10): the
        journal's, else the one its entry carried — for a resumed open as the venue lists it
        with the entry (`Order.stop_loss`), whatever a person did to the position's stop
        while the bot was down. A level the mark has crossed is closed at market instead
        (the guard's rule, `judge_level`)."""
        shown: Decimal | None = carried
        bot_level = position.stop_price if position.stop_price is not None else carried
        if not fresh_fill:
            venue_position = await self._held(position)
            held = None if venue_position is None else venue_position.quantity
            if venue_position is not None and held is not None and held > ZERO:
                shown = venue_position.stop_price
            if held is not None and held == ZERO:
                return await self._settled(
                    await self._closed(
                        position,
                        "closed on the venue before its stop was placed",
                        quantity=ZERO,
                    )
                )
            if held is not None and held != position.quantity:
                position = await self._saved(
                    attrs.evolve(position, quantity=held, version=position.version + 1)
                )
            if bot_level is None and self._exchange.capabilities.entry_stop:
                bot_level = await self._carried_level(position)
            if venue_position is not None and shown is None and bot_level is not None:
                ended = await self._ended_while_down(position, venue_position)
                if ended is not None:
                    return ended
        assert position.entry_price is not None
        if (
            shown is not None
            and position.stop_price is None
            and self._exchange.capabilities.entry_stop
        ):
            adopted = await self._keeper.adopt_carried(position, shown)
            if adopted.ok:
                position = adopted.position
        mark = position.entry_price if fresh_fill else await self._mark(position)
        detail = ""
        wanted: Decimal | None = None  # the stop the last try asked for
        for _ in range(self._stop_tries):
            if (
                bot_level is not None
                and judge_level(position.side, bot_level, shown, mark) is LevelVerdict.CLOSE
            ):
                cause = f"the mark crossed the stop level the bot set ({bot_level})"
                return await self._roll_back(position, rules, cause=cause)
            price = initial_stop(
                position.side, position.entry_price, mark, rules.tick_size, self._stops
            ).price
            if bot_level is not None and tighter(position.side, bot_level, price):
                price = bot_level  # never looser than the level the bot set
            standing = position.stop_price
            if (
                standing is not None
                and standing == shown
                and not tighter(position.side, price, standing)
            ):
                # the carried stop stands, at least as tight as the initial stop: kept
                return await self._advance(position, PositionState.ACTIVE)
            result = await self._keeper.apply(
                position, price, owner=StopOwner.INITIAL, reason="initial"
            )
            if result.ok:
                return await self._advance(result.position, PositionState.ACTIVE)
            position, detail, wanted = result.position, result.detail, price
            if result.rejection is not None and result.rejection.reason is RejectReason.NO_POSITION:
                wanted = None  # nothing to protect: no stop is adopted for it
                break
            # The mark may have run past the planned stop: plan the next try from it.
            mark = await self._mark(position)
        if wanted is not None:
            stood = await self._keeper.adopt_standing(position, wanted)
            if stood is not None and stood.ok:
                return await self._advance(stood.position, PositionState.ACTIVE)
        return await self._roll_back(position, rules, cause=detail)

    async def _ended_while_down(self, position: Position, held: VenuePosition) -> Position | None:
        """The stop the bot set is gone and the venue holds the symbol: while the process
        was down that stop may have filled and a person bought again. The fills walked back
        to the entry tell (`StopKeeper.closed_after_entry`); then the bot's position is
        closed as its stop closed it, and the person's is left for the synchronizer to adopt
        and protect — never taken for the bot's and closed at market. None (the venue's
        position is the bot's as far as is known) when they do not show it, or cannot be
        read."""
        try:
            reason = await self._keeper.closed_after_entry(position, held)
        except ExchangeUnavailable:
            return None
        if reason is None:
            return None
        return await self._settled(await self._closed(position, reason))

    async def _settled(self, position: Position) -> Position:
        """The closed position with its figures from the venue's fills (or as it is: the
        synchronizer settles it on its next pass)."""
        if self._settlement is None:
            return position
        return await self._settlement.settle(position) or position

    async def _roll_back(self, position: Position, rules: MarketRules, *, cause: str) -> Position:
        closed = await self._close_at_market(position)
        self._recorder.record(
            EventType.POSITION_ROLLBACK,
            position=position,
            severity=Severity.WARNING if closed else Severity.ERROR,
            data={"cause": cause, "closed": closed, "quantity": position.quantity},
        )
        if closed:
            return await self._settled(
                await self._advance(
                    position,
                    PositionState.ROLLED_BACK,
                    closed_at=self._clock.now(),
                    close_reason=f"stop could not be placed: {cause}",
                )
            )
        assert position.entry_price is not None
        mark = await self._mark(position)
        liquidation, estimated = await self._liquidation(position)
        plan = emergency_stop(
            position.side,
            position.entry_price,
            mark,
            rules.tick_size,
            self._stops,
            liquidation=liquidation,
            estimated=estimated,
        )
        result = await self._keeper.apply(
            position, plan.price, owner=StopOwner.PROTECTION, reason="emergency"
        )
        if result.ok:
            self._recorder.record(
                EventType.EMERGENCY_STOP_PLACED,
                position=result.position,
                data={
                    "price": plan.price,
                    "cause": cause,
                    "bound": plan.bound.value,
                    "configured_price": plan.configured,
                    "liquidation_price": plan.liquidation,
                },
            )
            return await self._advance(result.position, PositionState.ACTIVE)
        await self._critical(position, f"rollback and emergency stop failed: {result.detail}")
        # The open ends here (story 4): the position is ACTIVE without a stop, so the
        # protection guard — which leaves opens in flight alone — retries every pass.
        return await self._advance(result.position, PositionState.ACTIVE)

    async def _liquidation(self, position: Position) -> tuple[Decimal | None, bool]:
        """Where the position is liquidated, for its emergency stop: the venue's own price
        when its position lists one, else the tier estimate (True); (None, False) unknown."""
        held = await self._held(position)
        listed = None if held is None else held.liquidation_price
        if listed is not None and listed > ZERO:
            return listed, False
        margin = None if self._margin is None else self._margin.prepared(position.symbol)
        if margin is None or position.entry_price is None:
            return None, False
        quantity = held.quantity if held is not None and held.quantity > ZERO else position.quantity
        estimate = margin.estimated_liquidation(position.side, position.entry_price, quantity)
        return estimate, estimate is not None

    async def _close_at_market(self, position: Position) -> bool:
        """Close the filled quantity reduce-only and verify on the venue that it is gone.

        The keeper sends the close (it owns every order that exits a position) for what the
        venue holds, so an earlier close of a resumed open is never sent twice."""
        return await self._keeper.close_at_market(
            position, reason="rollback: no stop could be placed"
        )

    # -- helpers ----------------------------------------------------------------------------

    async def _lookup(self, position: Position, cid: str) -> Order | None:
        for attempt in range(self._lookups):
            if attempt:
                await self._clock.sleep(self._retry_delay * attempt)
            try:
                return await self._exchange.fetch_order_by_client_id(position.symbol, cid)
            except ExchangeUnavailable:
                continue
        return None

    async def _held(self, position: Position) -> VenuePosition | None:
        """The venue's position for this symbol on this side (quantity 0 if flat); None if
        the venue cannot say."""
        try:
            held = await self._exchange.fetch_positions()
        except ExchangeUnavailable:
            return None
        for venue_position in held:
            if venue_position.symbol == position.symbol and venue_position.side is position.side:
                return venue_position
        return VenuePosition(
            venue=position.venue,
            symbol=position.symbol,
            side=position.side,
            quantity=ZERO,
            entry_price=ZERO,
        )

    async def _mark(self, position: Position) -> Decimal:
        try:
            return await self._exchange.fetch_mark_price(position.symbol)
        except ExchangeUnavailable:
            assert position.entry_price is not None
            return position.entry_price

    async def _fail(
        self, position: Position, reason: str, *, rejection: Rejected | None = None
    ) -> Position:
        event = _REJECTION_EVENTS.get(rejection.reason) if rejection else None
        self._recorder.record(
            EventType.ENTRY_ORDER_FAILED,
            position=position,
            error=reason,
            data={"reason": rejection.reason.value if rejection else "unknown"},
        )
        if event is not None:
            self._recorder.record(event, position=position, error=reason)
        return await self._advance(
            position, PositionState.FAILED, closed_at=self._clock.now(), close_reason=reason
        )

    async def _critical(self, position: Position, message: str) -> None:
        self._recorder.record(
            EventType.CRITICAL_ERROR,
            position=position,
            severity=Severity.CRITICAL,
            error=message,
            data={"quantity": position.quantity},
        )
        if self._alerter is not None:
            await self._alerter.send(
                Alert(
                    key=f"unprotected:{position.id}",
                    severity=Severity.CRITICAL,
                    title=f"{position.symbol} open WITHOUT a stop",
                    text=message,
                )
            )

    def _held_by_hand(self, request: OpenRequest, held: VenuePosition) -> OpenResult:
        why = (
            f"the venue holds a {held.side.value} of {held.quantity} on {held.symbol} that "
            "the journal does not know (opened by hand, not adopted yet): an entry would "
            "trade against it"
        )
        return self._duplicate(request, why, held_side=held.side.value, held_quantity=held.quantity)

    def _duplicate(self, request: OpenRequest, why: str, **data: object) -> OpenResult:
        self._recorder.record(
            EventType.POSITION_DUPLICATE_PREVENTED,
            symbol=request.symbol,
            exchange=self._exchange.venue.value,
            data={"signal_id": request.signal_id, "why": why, **data},
        )
        return OpenResult(position=None, opened=False, reason=f"duplicate: {why}")

    async def _closed(self, position: Position, reason: str, **changes: object) -> Position:
        """The venue no longer holds the bot's position: its row CLOSED with its
        `position_closed`, as every close is recorded (`StopKeeper.record_closed`)."""
        closed = position.advance(
            PositionState.CLOSED, closed_at=self._clock.now(), close_reason=reason, **changes
        )
        return await save_recorded(
            self._store, self._recorder, closed, self._keeper.closed_event(position, reason)
        )

    async def _advance(
        self, position: Position, target: PositionState, **changes: object
    ) -> Position:
        return await self._saved(position.advance(target, **changes))

    async def _saved(self, position: Position) -> Position:
        """Store the position's new state with the events recorded for it since its last
        save (its fill, its failure, its rollback): one write, so a process killed before
        its journal flushed leaves no change without its event."""
        return await save_recorded(self._store, self._recorder, position)

    async def _finish_operation(self, position: Position) -> None:
        if position.state.is_opening:
            return  # stays in flight: recovery drives it on
        await self._store.operations.finish(
            position.id, at=self._clock.now(), outcome=position.state.value
        )


_UNPROVEN = (
    "the entry's state is not proven yet: the open stays in flight and the next guard or "
    "sync pass resolves it"
)


def _entry_proven(order: Order) -> bool:
    """A market entry the venue still shows open has not ended: what filled is not final."""
    return order.type is not OrderType.MARKET or not order.is_open


def _describe(rejection: Rejected) -> str:
    code = f" [{rejection.code}]" if rejection.code else ""
    return f"{rejection.reason.value}{code}: {rejection.message}"


def _held_on_symbol(request: OpenRequest) -> VenuePosition | None:
    """The position the venue holds on the request's symbol, if any. The journal has none
    there (asked first), so it is a person's, opened by hand and not adopted yet: an entry
    would trade against it, or add to it and take the person's position for its fill."""
    return next(
        (
            held
            for held in request.venue_positions or ()
            if held.symbol == request.symbol and held.quantity > ZERO
        ),
        None,
    )
