"""The stop keeper: the single writer of every position's stop.

Every change to a stop — initial, trailing, protection, aged, removal on close — goes through
the keeper, which serialises changes per symbol (one position per symbol: one asyncio lock
each, shared with the zombie pass) and applies them the venue's safe way:

- a venue that can attach a stop to the position (`position_stop`, Bybit) moves it in place;
- a venue that can amend a resting stop (`amend_stop`) moves its trigger in place;
- otherwise (Binance) the new reduce-only stop is created and confirmed first, and only then is
  the old one cancelled — never cancel-then-create, so there is no window without a stop.

Every decision is taken under the symbol's lock on a fresh read of the venue (issue 10,
story 1): the protection guard only names suspects; `ensure_protected` reads the symbol's
position and orders, asks the domain (`reconcile.protect`, `reconcile.judge_level`) what
is wrong and fixes it. "Unchanged" is answered only after the venue confirms it (story 2).
A restored stop is the last stop the bot set (story 3).

Answers are settled by `commands.settle` (accepted / rejected / unknown, "already done"
codes taken as done). Before a replacement is sent, an operation naming the new stop's
client id is written; the client id is made from that operation's id, so every attempt has
a fresh one and a restart finds a half-done replacement by it and finishes it (story 8).
"""

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime
from decimal import Decimal

import attrs

from tradecore.domain.events import EventType, Severity
from tradecore.domain.orders import Order, OrderRole, OrderStatus, OrderType, client_order_id
from tradecore.domain.positions import (
    Operation,
    OperationKind,
    Position,
    PositionState,
    StopOwner,
)
from tradecore.domain.reconcile import (
    CancelOrder,
    ClearPositionStop,
    LevelVerdict,
    PlaceStop,
    ReconcileParams,
    ReplaceStop,
    Snapshot,
    StopLevelChanged,
    TakeOverStop,
    judge_level,
    protect,
    standing_level,
    tighter,
)
from tradecore.ports.clock import Clock, IdGenerator
from tradecore.ports.exchange import (
    Accepted,
    Exchange,
    ExchangeUnavailable,
    Outcome,
    Rejected,
    RejectReason,
    Unknown,
)
from tradecore.ports.repositories import Store

from .commands import Settling, look_up, settle
from .recorder import Recorder

InitialStop = Callable[[Position], Awaitable[Decimal | None]]


@attrs.frozen(kw_only=True)
class StopResult:
    """What `apply` did: the position as now stored, or why the stop could not be set."""

    ok: bool
    position: Position
    rejection: Rejected | None = None
    detail: str = ""

    @property
    def would_trigger(self) -> bool:
        return (
            self.rejection is not None
            and self.rejection.reason is RejectReason.WOULD_TRIGGER_IMMEDIATELY
        )


@attrs.frozen(kw_only=True)
class Protection:
    """What `ensure_protected` found and did for one position."""

    unprotected: bool = False  # the venue held it without a stop when the keeper looked
    fixed: bool = False  # something was wrong and is put right
    failed: bool = False  # something was wrong and could not be put right
    busy: bool = False  # an operation is in flight on the symbol: left to it
    detail: str = ""

    @property
    def protected(self) -> bool:
        return not self.failed and (not self.unprotected or self.fixed)


@attrs.frozen(kw_only=True)
class KeeperSettings:
    attempts: int = 3
    retry_delay_seconds: float = 0.5
    lookups: int = 3

    @property
    def settling(self) -> Settling:
        return Settling(
            attempts=self.attempts,
            lookups=self.lookups,
            retry_delay_seconds=self.retry_delay_seconds,
        )


class StopKeeper:
    """Serialises and applies every stop change; records who owns each stop."""

    def __init__(
        self,
        exchange: Exchange,
        store: Store,
        recorder: Recorder,
        clock: Clock,
        ids: IdGenerator,
        settings: KeeperSettings | None = None,
    ) -> None:
        self._exchange = exchange
        self._store = store
        self._recorder = recorder
        self._clock = clock
        self._ids = ids
        self._settings = settings or KeeperSettings()
        self._locks: dict[str, asyncio.Lock] = {}

    def _lock(self, symbol: str) -> asyncio.Lock:
        return self._locks.setdefault(symbol, asyncio.Lock())

    async def apply(
        self,
        position: Position,
        price: Decimal | None,
        *,
        owner: StopOwner,
        reason: str,
        replacing: str | None = None,
    ) -> StopResult:
        """Set the position's stop to `price` (None removes it), as `owner`, for `reason`.

        `replacing` names a stop order to retire once the new stop stands (a stop of the wrong
        quantity found by the guard); by default it is the position's recorded stop.
        """
        async with self._lock(position.symbol):
            current = await self._store.positions.get(position.id) or position
            return await self._apply(
                current, price, owner=owner, reason=reason, replacing=replacing
            )

    async def ensure_protected(
        self,
        position: Position,
        *,
        initial: InitialStop,
        heartbeats: Mapping[str, datetime] | None = None,
        params: ReconcileParams | None = None,
    ) -> Protection:
        """Make sure the venue holds one stop for the position's full quantity, at the level
        the bot last set — deciding on what the venue holds now, under the symbol's lock.

        `initial` prices a stop for a position the bot never set one for."""
        async with self._lock(position.symbol):
            current = await self._store.positions.get(position.id) or position
            if current.state not in (PositionState.ACTIVE, PositionState.CLOSING):
                return Protection(busy=current.state.is_opening, detail=current.state.value)
            try:
                snapshot = await self._read(current, heartbeats or {})
                if any(op.kind is OperationKind.REPLACE_STOP for op in snapshot.operations):
                    # Under this lock nothing of ours is in flight: a dead process's move.
                    await self._settle_interrupted(current.symbol)
                    current = await self._store.positions.get(current.id) or current
                    snapshot = await self._read(current, heartbeats or {})
            except ExchangeUnavailable as error:
                return Protection(failed=True, detail=f"the venue could not be read: {error}")
            held = [v for v in snapshot.venue_positions if v.side is current.side]
            if not held:
                return Protection(detail="the venue holds no position: the synchronizer's job")
            if any(op.in_flight for op in snapshot.operations):
                return Protection(busy=True, detail="an operation is in flight")
            if held[0].quantity != current.quantity:  # the venue is the truth
                self._recorder.record(
                    EventType.QUANTITY_MISMATCH_DETECTED,
                    position=current,
                    data={"journal": current.quantity, "venue": held[0].quantity},
                )
                current = await self._saved(
                    attrs.evolve(current, quantity=held[0].quantity, version=current.version + 1)
                )
                snapshot = attrs.evolve(snapshot, positions=(current,))
            actions = protect(snapshot, params or ReconcileParams())
            return await self._carry_out(current, snapshot, actions, initial)

    async def cancel_orphan(self, symbol: str, order_id: str) -> tuple[bool, str]:
        """Cancel an order that belongs to no position (a zombie): (gone, what happened).

        A stop-loss is cancelled only if, read again under the symbol's lock, the venue
        holds no position it could protect: no other component removes a stop-loss."""
        async with self._lock(symbol):
            try:
                orders = await self._exchange.fetch_open_orders(symbol)
                held = [v for v in await self._exchange.fetch_positions() if v.symbol == symbol]
            except ExchangeUnavailable as error:
                return False, f"not cancelled: the venue could not be read ({error})"
            order = next((o for o in orders if o.order_id == order_id), None)
            if order is None:
                return True, "already gone"
            if order.is_stop and any(order.side is v.side.exit for v in held):
                return False, "not cancelled: it protects the position the venue holds"
            return await self._cancel_order(symbol, order_id)

    async def take_over(self, position: Position, owner: StopOwner) -> Position:
        """Make `owner` the owner of the position's stop, as it stands."""
        async with self._lock(position.symbol):
            current = await self._store.positions.get(position.id) or position
            return await self._take_over(current, owner)

    async def resume(self) -> int:
        """After a restart: finish every stop replacement a crash interrupted (story 8)."""
        resumed = 0
        for operation in await self._store.operations.in_flight():
            if operation.kind is OperationKind.REPLACE_STOP and (
                operation.venue is self._exchange.venue
            ):
                async with self._lock(operation.symbol):
                    resumed += await self._settle_interrupted(operation.symbol)
        return resumed

    # -- deciding on a fresh read -----------------------------------------------------------

    async def _read(self, position: Position, heartbeats: Mapping[str, datetime]) -> Snapshot:
        held = [v for v in await self._exchange.fetch_positions() if v.symbol == position.symbol]
        orders = await self._exchange.fetch_open_orders(position.symbol)
        operations = [
            op
            for op in await self._store.operations.in_flight()
            if op.venue is position.venue and op.symbol == position.symbol
        ]
        return Snapshot(
            venues=frozenset({position.venue}),
            positions=(position,),
            venue_positions=tuple(held),
            orders=tuple(orders),
            now=self._clock.now(),
            operations=tuple(operations),
            trailing_heartbeats=dict(heartbeats),
        )

    async def _carry_out(
        self,
        position: Position,
        snapshot: Snapshot,
        actions: tuple[object, ...],
        initial: InitialStop,
    ) -> Protection:
        mine = [a for a in actions if getattr(a, "position_id", None) == position.id]
        if not mine:
            return Protection(detail="protected")
        unprotected = any(isinstance(a, PlaceStop) for a in mine)
        if unprotected:
            self._recorder.record(
                EventType.UNPROTECTED_POSITION_FOUND,
                position=position,
                data={"reason": "missing_stop", "detail": "no stop on the venue"},
            )
        ok, detail = True, ""
        current = position
        for action in mine:
            if isinstance(action, TakeOverStop):
                current = await self._take_over(current, StopOwner.PROTECTION)
                self._recorder.record(
                    EventType.PROTECTION_TOOK_OVER,
                    position=current,
                    data={
                        "from": position.stop_owner.value if position.stop_owner else None,
                        "detail": action.detail,
                    },
                )
            elif isinstance(action, CancelOrder):
                gone = await self._cancel(current, action.order_id, reason="duplicate stop")
                ok &= gone
            elif isinstance(action, ClearPositionStop):
                ok &= await self._clear_attached(current, reason="duplicate attached stop")
        placing = next((a for a in mine if isinstance(a, PlaceStop | ReplaceStop)), None)
        level_changed = next((a for a in mine if isinstance(a, StopLevelChanged)), None)
        if placing is not None or level_changed is not None:
            current = await self._store.positions.get(current.id) or current
            restored, detail = await self._restore(current, snapshot, placing, initial)
            ok &= restored
        return Protection(unprotected=unprotected, fixed=ok, failed=not ok, detail=detail)

    async def _restore(
        self,
        position: Position,
        snapshot: Snapshot,
        placing: PlaceStop | ReplaceStop | None,
        initial: InitialStop,
    ) -> tuple[bool, str]:
        """Put the stop at the bot's level (story 3): a person's tighter stop becomes the
        bot's level; a missing or looser one is put back; past the mark, close instead."""
        [held] = [v for v in snapshot.venue_positions if v.side is position.side]
        found = (
            None
            if isinstance(placing, PlaceStop)
            else standing_level(snapshot.orders, held, position)[0]
        )
        mark = held.mark_price
        if mark is None:
            try:
                mark = await self._exchange.fetch_mark_price(position.symbol)
            except ExchangeUnavailable:
                mark = None
        verdict = judge_level(position.side, position.stop_price, found, mark)
        replacing = placing.order_id if isinstance(placing, ReplaceStop) else None
        owner = StopOwner.PROTECTION  # the guard put it right: its stop now
        if isinstance(placing, ReplaceStop) and position.stop_owner is not None:
            owner = position.stop_owner  # only resized: whoever owned it still does
        if verdict is LevelVerdict.CLOSE:
            closed = await self._close_at_market(position, reason="the mark crossed the stop level")
            return closed, "closed at market: the mark crossed the stop level"
        if verdict is LevelVerdict.ADOPT and replacing is None:
            assert found is not None
            _, order = standing_level(snapshot.orders, held, position)
            stored = await self._saved(
                position.with_stop(
                    price=found,
                    order_id=order.order_id if order is not None else position.stop_order_id,
                    owner=owner,
                )
            )
            self._record_stop(
                stored,
                found,
                previous=position.stop_price,
                reason="manual change",
                method="adopted",
            )
            return True, "a person's tighter stop is the bot's level now"
        price = position.stop_price if verdict is not LevelVerdict.ADOPT else found
        if verdict is LevelVerdict.KEEP and replacing is not None:
            price = found
        if price is None:
            price = await initial(position)
            if price is None:
                return False, "no stop price: no market rules or no entry price"
        if found is not None and replacing is None and verdict is LevelVerdict.RESTORE:
            _, order = standing_level(snapshot.orders, held, position)
            replacing = order.order_id if order is not None else None
        result = await self._apply(
            position,
            price,
            owner=owner,
            reason="missing stop" if found is None else "stop moved by hand",
            replacing=replacing,
            verified=True,
        )
        return result.ok, result.detail

    # -- applying ---------------------------------------------------------------------------

    async def _apply(
        self,
        current: Position,
        price: Decimal | None,
        *,
        owner: StopOwner,
        reason: str,
        replacing: str | None = None,
        verified: bool = False,
    ) -> StopResult:
        """`verified`: the caller has just read the venue and knows the stop must be set."""
        if price is None:
            return await self._remove(current, reason=reason)
        if (
            owner is StopOwner.TRAILING
            and current.stop_price is not None
            and tighter(current.side, current.stop_price, price)
        ):
            # The trailing stop only ever tightens: a level a person tightened (now the
            # bot's) is never given back (issue 10, story 3).
            return StopResult(ok=True, position=current, detail="kept the tighter stop")
        unchanged = current.stop_price == price and current.stop_owner is owner
        if unchanged and replacing is None and not verified and await self._stands(current):
            return StopResult(ok=True, position=current, detail="unchanged")
        if self._exchange.capabilities.position_stop:
            result = await self._set_attached(current, price, owner=owner, reason=reason)
            if result.ok and replacing is not None:
                await self._cancel(result.position, replacing, reason=reason)
            return result
        if replacing is None and current.stop_order_id and self._exchange.capabilities.amend_stop:
            result = await self._amend(current, price, owner=owner, reason=reason)
            if result.ok or result.rejection is None:
                return result
            if result.rejection.reason is not RejectReason.ORDER_NOT_FOUND:
                return result
            current = await self._saved(current.with_stop(price=None, order_id=None, owner=None))
        return await self._create_then_cancel(
            current,
            price,
            owner=owner,
            reason=reason,
            old_id=replacing or current.stop_order_id,
        )

    async def _stands(self, position: Position) -> bool:
        """The venue holds the position's recorded stop at its recorded level (story 2).
        A venue that cannot be read is taken at the journal's word: nothing is sent blind."""
        try:
            orders = await self._exchange.fetch_open_orders(position.symbol)
            if self._exchange.capabilities.position_stop:
                for held in await self._exchange.fetch_positions():
                    if held.symbol == position.symbol and held.stop_price == position.stop_price:
                        return True
        except ExchangeUnavailable:
            return True
        return any(
            o.is_stop and o.trigger_price == position.stop_price and o.side is position.side.exit
            for o in orders
        )

    async def _take_over(self, current: Position, owner: StopOwner) -> Position:
        return await self._saved(
            current.with_stop(price=current.stop_price, order_id=current.stop_order_id, owner=owner)
        )

    async def _clear_attached(self, position: Position, *, reason: str) -> bool:
        """Remove a venue-attached stop that duplicates the position's stop order."""
        outcome = await self._send(
            lambda: self._exchange.set_position_stop(position.symbol, None), _nothing
        )
        cleared = isinstance(outcome, Accepted)
        self._recorder.record(
            EventType.STOP_LOSS_CANCELLED,
            position=position,
            severity=None if cleared else Severity.ERROR,
            error=None if cleared else _describe(outcome),
            data={"reason": reason, "cancelled": cleared, "attached": True},
        )
        return cleared

    async def close_at_market(self, position: Position, *, reason: str) -> bool:
        """Close the position reduce-only at market (the aged manager at its loss cap); True
        once the venue took the order. The synchronizer records the close."""
        async with self._lock(position.symbol):
            return await self._market_close(position, reason=reason)

    async def _close_at_market(self, position: Position, *, reason: str) -> bool:
        """The stop level is already behind the mark, so a stop there would fire at once:
        close at market instead, and say so."""
        closed = await self._market_close(position, reason=reason)
        self._recorder.record(
            EventType.POSITION_ROLLBACK,
            position=position,
            severity=Severity.WARNING if closed else Severity.ERROR,
            data={"cause": reason, "closed": closed, "quantity": position.quantity},
        )
        return closed

    async def _market_close(self, position: Position, *, reason: str) -> bool:
        operation = await self._start(position, OperationKind.CLOSE, OrderRole.EXIT)
        cid = operation.client_order_ids[0]

        def send() -> Awaitable[Outcome]:
            return self._exchange.create_market_order(
                position.symbol,
                position.side.exit,
                position.quantity,
                client_order_id=cid,
                reduce_only=True,
            )

        async def lookup() -> Order | None:
            return await self._exchange.fetch_order_by_client_id(position.symbol, cid)

        outcome = await settle(
            send,
            lookup,
            clock=self._clock,
            settling=self._settings.settling,
            on_retry=self._note_retry,
            resend_unknown=False,  # a market order: never twice
        )
        accepted = isinstance(outcome, Accepted)
        if isinstance(outcome, Accepted):
            await self._store.orders.record(
                outcome.order, role=OrderRole.EXIT, position_id=position.id
            )
        await self._finish(operation, "done" if accepted else f"failed: {_describe(outcome)}")
        return accepted

    # -- interrupted replacements (story 8) -------------------------------------------------

    async def _settle_interrupted(self, symbol: str) -> int:
        """Finish the stop replacements on `symbol` a crash left in flight.

        Under the symbol's lock nothing of this process is in flight, so any REPLACE_STOP
        operation found is a dead process's: if its new stop stands, it becomes the
        position's stop and the old one is cancelled; if not, the old one still stands."""
        settled = 0
        for operation in await self._store.operations.in_flight():
            if (
                operation.kind is not OperationKind.REPLACE_STOP
                or operation.venue is not self._exchange.venue
                or operation.symbol != symbol
            ):
                continue
            outcome = await self._adopt_interrupted(operation)
            await self._finish(operation, outcome)
            settled += 1
        return settled

    async def _adopt_interrupted(self, operation: Operation) -> str:
        position = (
            await self._store.positions.get(operation.position_id)
            if operation.position_id
            else None
        )
        if position is None or not operation.client_order_ids:
            return "interrupted"
        cid = operation.client_order_ids[0]

        async def lookup() -> Order | None:
            return await self._exchange.fetch_order_by_client_id(operation.symbol, cid)

        found = await look_up(lookup, clock=self._clock, settling=self._settings.settling)
        if found is None or not found.is_open or found.trigger_price is None:
            return "interrupted: the new stop is not on the venue"
        if position.stop_order_id == found.order_id:
            return "done"
        await self._store.orders.record(found, role=OrderRole.STOP, position_id=position.id)
        old = position.stop_order_id
        if old is not None:
            await self._cancel(position, old, reason="replaced (resumed)")
        await self._stored_stop(
            position,
            found.trigger_price,
            order_id=found.order_id,
            owner=position.stop_owner or StopOwner.PROTECTION,
            reason="resumed after a restart",
            method="create_then_cancel",
        )
        return "adopted after a restart"

    # -- the three ways to set a stop -------------------------------------------------------

    async def _set_attached(
        self, position: Position, price: Decimal, *, owner: StopOwner, reason: str
    ) -> StopResult:
        def send() -> Awaitable[Outcome]:
            return self._exchange.set_position_stop(position.symbol, price)

        async def verify() -> Order | None:
            return await self._attached_stop_at(position, price)

        outcome = await self._send(send, verify)
        if not isinstance(outcome, Accepted):
            return self._failed(position, outcome, price=price, reason=reason)
        await self._store.orders.record(outcome.order, role=OrderRole.STOP, position_id=position.id)
        return await self._stored_stop(
            position,
            price,
            order_id=outcome.order.order_id,
            owner=owner,
            reason=reason,
            method="position_stop",
        )

    async def _amend(
        self, position: Position, price: Decimal, *, owner: StopOwner, reason: str
    ) -> StopResult:
        order_id = position.stop_order_id
        assert order_id is not None

        def send() -> Awaitable[Outcome]:
            return self._exchange.amend_order(position.symbol, order_id, trigger_price=price)

        async def verify() -> Order | None:
            order = await self._find_open_stop(position, order_id=order_id)
            return order if order is not None and order.trigger_price == price else None

        outcome = await self._send(send, verify)
        if not isinstance(outcome, Accepted):
            return self._failed(position, outcome, price=price, reason=reason)
        return await self._stored_stop(
            position,
            price,
            order_id=outcome.order.order_id,
            owner=owner,
            reason=reason,
            method="amend",
        )

    async def _create_then_cancel(
        self,
        position: Position,
        price: Decimal,
        *,
        owner: StopOwner,
        reason: str,
        old_id: str | None,
    ) -> StopResult:
        operation = await self._start(position, OperationKind.REPLACE_STOP, OrderRole.STOP)
        cid = operation.client_order_ids[0]

        def send() -> Awaitable[Outcome]:
            return self._exchange.create_stop_order(
                position.symbol,
                position.side.exit,
                position.quantity,
                price,
                client_order_id=cid,
            )

        async def verify() -> Order | None:
            found = await self._exchange.fetch_order_by_client_id(position.symbol, cid)
            return found if found is not None and found.is_open else None

        outcome = await self._send(send, verify)
        if not isinstance(outcome, Accepted):
            await self._finish(operation, "failed")
            return self._failed(position, outcome, price=price, reason=reason)
        await self._store.orders.record(outcome.order, role=OrderRole.STOP, position_id=position.id)
        if old_id is not None:
            await self._cancel(position, old_id, reason="replaced")
        await self._finish(operation, "done")
        return await self._stored_stop(
            position,
            price,
            order_id=outcome.order.order_id,
            owner=owner,
            reason=reason,
            method="create_then_cancel" if old_id else "create",
        )

    async def _remove(self, position: Position, *, reason: str) -> StopResult:
        if self._exchange.capabilities.position_stop and position.stop_price is not None:
            outcome = await self._send(
                lambda: self._exchange.set_position_stop(position.symbol, None), _nothing
            )
            if isinstance(outcome, Rejected) and outcome.reason is not RejectReason.NO_POSITION:
                return self._failed(position, outcome, price=None, reason=reason)
            self._recorder.record(
                EventType.STOP_LOSS_CANCELLED,
                position=position,
                order_id=position.stop_order_id,
                data={"reason": reason, "cancelled": True, "attached": True},
            )
        elif position.stop_order_id is not None:
            await self._cancel(position, position.stop_order_id, reason=reason)
        stored = await self._saved(position.with_stop(price=None, order_id=None, owner=None))
        return StopResult(ok=True, position=stored, detail="removed")

    # -- sending, verifying, recording ------------------------------------------------------

    async def _send(
        self,
        send: Callable[[], Awaitable[Outcome]],
        verify: Callable[[], Awaitable[Order | None]],
    ) -> Outcome:
        """Send and settle the answer (`commands.settle`): Unknown and "already done" are
        resolved by verifying, never by sending blind."""
        return await settle(
            send,
            verify,
            clock=self._clock,
            settling=self._settings.settling,
            on_retry=self._note_retry,
        )

    def _note_retry(self, rejection: Rejected, attempt: int) -> None:
        if rejection.reason is RejectReason.RATE_LIMITED:
            self._recorder.record(
                EventType.RATE_LIMIT_HIT,
                exchange=self._exchange.venue.value,
                error=rejection.message,
                data={"code": rejection.code, "attempt": attempt + 1},
            )

    async def _start(self, position: Position, kind: OperationKind, role: OrderRole) -> Operation:
        """Journal an operation before its order is sent; the order's client id is made
        from the operation's fresh id, so no two attempts ever share one."""
        operation_id = self._ids.new_id()
        operation = Operation(
            id=operation_id,
            kind=kind,
            venue=position.venue,
            symbol=position.symbol,
            position_id=position.id,
            started_at=self._clock.now(),
            client_order_ids=(client_order_id(operation_id, role),),
        )
        await self._store.operations.start(operation)
        return operation

    async def _cancel(self, position: Position, order_id: str, *, reason: str) -> bool:
        gone, detail = await self._cancel_order(position.symbol, order_id)
        self._recorder.record(
            EventType.STOP_LOSS_CANCELLED,
            position=position,
            order_id=order_id,
            severity=None if gone else Severity.ERROR,
            error=None if gone else detail,
            data={"reason": reason, "cancelled": gone},
        )
        return gone

    async def _cancel_order(self, symbol: str, order_id: str) -> tuple[bool, str]:
        """Cancel with retries; "not found" counts as gone, an Unknown is settled by listing."""
        outcome: Outcome = Rejected(reason=RejectReason.OTHER, message="not sent")
        for attempt in range(self._settings.attempts):
            if attempt:
                await self._clock.sleep(self._settings.retry_delay_seconds * attempt)
            outcome = await self._exchange.cancel_order(symbol, order_id)
            if isinstance(outcome, Unknown):
                if await self._is_gone(symbol, order_id):
                    return True, "gone after an unknown outcome"
                continue
            if isinstance(outcome, Accepted):
                return True, "cancelled"
            if outcome.reason is RejectReason.ORDER_NOT_FOUND:
                return True, "already gone"
            if not outcome.retryable:
                break
        return False, _describe(outcome)

    async def _is_gone(self, symbol: str, order_id: str) -> bool:
        try:
            orders = await self._exchange.fetch_open_orders(symbol)
        except ExchangeUnavailable:
            return False
        return all(order.order_id != order_id for order in orders)

    async def _find_open_stop(self, position: Position, *, order_id: str) -> Order | None:
        for order in await self._exchange.fetch_open_orders(position.symbol):
            if order.order_id == order_id:
                return order
        return None

    async def _attached_stop_at(self, position: Position, price: Decimal) -> Order | None:
        for order in await self._exchange.fetch_open_orders(position.symbol):
            if order.type is OrderType.POSITION_STOP and order.trigger_price == price:
                return order
        for held in await self._exchange.fetch_positions():
            if held.symbol == position.symbol and held.stop_price == price:
                return _attached_order(position, price)
        return None

    async def _stored_stop(
        self,
        position: Position,
        price: Decimal,
        *,
        order_id: str | None,
        owner: StopOwner,
        reason: str,
        method: str,
    ) -> StopResult:
        stored = await self._saved(position.with_stop(price=price, order_id=order_id, owner=owner))
        self._record_stop(stored, price, previous=position.stop_price, reason=reason, method=method)
        return StopResult(ok=True, position=stored)

    def _record_stop(
        self,
        stored: Position,
        price: Decimal,
        *,
        previous: Decimal | None,
        reason: str,
        method: str,
    ) -> None:
        self._recorder.record(
            EventType.STOP_LOSS_PLACED if previous is None else EventType.STOP_LOSS_REPLACED,
            position=stored,
            order_id=stored.stop_order_id,
            data={
                "price": price,
                "previous_price": previous,
                "quantity": stored.quantity,
                "owner": stored.stop_owner.value if stored.stop_owner else None,
                "reason": reason,
                "method": method,
            },
        )

    def _failed(
        self, position: Position, outcome: Outcome, *, price: Decimal | None, reason: str
    ) -> StopResult:
        rejection = outcome if isinstance(outcome, Rejected) else None
        self._recorder.record(
            EventType.STOP_LOSS_FAILED,
            position=position,
            error=_describe(outcome),
            data={"price": price, "reason": reason},
        )
        return StopResult(
            ok=False, position=position, rejection=rejection, detail=_describe(outcome)
        )

    async def _saved(self, position: Position) -> Position:
        await self._store.positions.save(position)
        return position

    async def _finish(self, operation: Operation, outcome: str) -> None:
        await self._store.operations.finish(operation.id, at=self._clock.now(), outcome=outcome)


async def _nothing() -> Order | None:
    return None


def _describe(outcome: Outcome) -> str:
    if isinstance(outcome, Rejected):
        code = f" [{outcome.code}]" if outcome.code else ""
        return f"{outcome.reason.value}{code}: {outcome.message}"
    if isinstance(outcome, Unknown):
        return f"unknown outcome: {outcome.message}"
    return "accepted"


def _attached_order(position: Position, price: Decimal) -> Order:
    return Order(
        venue=position.venue,
        symbol=position.symbol,
        order_id=f"position-stop-{position.symbol}",
        client_order_id=None,
        side=position.side.exit,
        type=OrderType.POSITION_STOP,
        quantity=position.quantity,
        status=OrderStatus.OPEN,
        trigger_price=price,
        reduce_only=True,
        close_position=True,
    )
