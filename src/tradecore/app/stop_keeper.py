"""The stop keeper: the single writer of every position's stop.

Every change to a stop — initial, trailing, protection, aged, removal on close — goes through
`StopKeeper.apply`, which serialises changes per position (one asyncio lock each) and applies
them the venue's safe way:

- a venue that can attach a stop to the position (`position_stop`, Bybit) moves it in place;
- a venue that can amend a resting stop (`amend_stop`) moves its trigger in place;
- otherwise (Binance) the new reduce-only stop is created and confirmed first, and only then is
  the old one cancelled — never cancel-then-create, so there is no window without a stop.

An `Unknown` outcome is resolved by looking the deterministic client id up, never by sending a
second order. Before a replacement is sent, an operation naming both client ids is written, so
a restart finds a half-done replacement and finishes it.
"""

import asyncio
from collections.abc import Awaitable, Callable
from decimal import Decimal

import attrs

from tradecore.domain.events import EventType, Severity
from tradecore.domain.orders import Order, OrderRole, OrderStatus, OrderType, client_order_id
from tradecore.domain.positions import Operation, OperationKind, Position, StopOwner
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

from .recorder import Recorder


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
class KeeperSettings:
    attempts: int = 3
    retry_delay_seconds: float = 0.5
    lookups: int = 3


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

    def _lock(self, position_id: str) -> asyncio.Lock:
        return self._locks.setdefault(position_id, asyncio.Lock())

    def forget(self, position_id: str) -> None:
        """Drop the lock of a closed position."""
        self._locks.pop(position_id, None)

    def exclusive(self, position_id: str) -> asyncio.Lock:
        """The position's writer lock, for a use case (aged exits) that must not interleave
        with stop changes. Never call `apply` while holding it."""
        return self._lock(position_id)

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
        async with self._lock(position.id):
            current = await self._store.positions.get(position.id) or position
            if price is None:
                return await self._remove(current, reason=reason)
            unchanged = current.stop_price == price and current.stop_owner is owner
            if unchanged and replacing is None:
                return StopResult(ok=True, position=current, detail="unchanged")
            if self._exchange.capabilities.position_stop:
                result = await self._set_attached(current, price, owner=owner, reason=reason)
                if result.ok and replacing is not None:
                    await self._cancel(result.position, replacing, reason=reason)
                return result
            if (
                replacing is None
                and current.stop_order_id
                and self._exchange.capabilities.amend_stop
            ):
                result = await self._amend(current, price, owner=owner, reason=reason)
                if result.ok or result.rejection is None:
                    return result
                if result.rejection.reason is not RejectReason.ORDER_NOT_FOUND:
                    return result
                current = await self._saved(
                    current.with_stop(price=None, order_id=None, owner=None)
                )
            return await self._create_then_cancel(
                current,
                price,
                owner=owner,
                reason=reason,
                old_id=replacing or current.stop_order_id,
            )

    async def cancel(self, position: Position, order_id: str, *, reason: str) -> bool:
        """Cancel one of the position's stop orders (a duplicate); True once it is gone."""
        async with self._lock(position.id):
            current = await self._store.positions.get(position.id) or position
            gone = await self._cancel(current, order_id, reason=reason)
            if gone and current.stop_order_id == order_id:
                await self._saved(current.with_stop(price=None, order_id=None, owner=None))
            return gone

    async def clear_attached(self, position: Position, *, reason: str) -> bool:
        """Remove a venue-attached stop that duplicates the position's stop order."""
        async with self._lock(position.id):
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

    async def cancel_orphan(self, symbol: str, order_id: str) -> tuple[bool, str]:
        """Cancel an order that belongs to no position (a zombie): (gone, what happened)."""
        async with self._lock(f"orphan:{symbol}"):
            return await self._cancel_order(symbol, order_id)

    async def take_over(self, position: Position, owner: StopOwner) -> Position:
        """Make `owner` the owner of the position's stop, as it stands."""
        async with self._lock(position.id):
            current = await self._store.positions.get(position.id) or position
            return await self._saved(
                current.with_stop(
                    price=current.stop_price, order_id=current.stop_order_id, owner=owner
                )
            )

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
        cid = client_order_id(position.id, OrderRole.STOP, position.version)
        operation = Operation(
            id=self._ids.new_id(),
            kind=OperationKind.REPLACE_STOP,
            venue=position.venue,
            symbol=position.symbol,
            position_id=position.id,
            started_at=self._clock.now(),
            client_order_ids=(cid,),
        )
        await self._store.operations.start(operation)

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
        """Send up to `attempts` times; resolve Unknown by verifying, never by sending blind."""
        outcome: Outcome = Rejected(reason=RejectReason.OTHER, message="not sent")
        for attempt in range(self._settings.attempts):
            if attempt:
                await self._clock.sleep(self._settings.retry_delay_seconds * attempt)
            outcome = await send()
            if isinstance(outcome, Unknown):
                found = await self._resolve(verify)
                if found is not None:
                    return Accepted(order=found)
                continue
            if isinstance(outcome, Accepted) or not outcome.retryable:
                return outcome
            if outcome.reason is RejectReason.RATE_LIMITED:
                self._recorder.record(
                    EventType.RATE_LIMIT_HIT,
                    exchange=self._exchange.venue.value,
                    error=outcome.message,
                    data={"code": outcome.code, "attempt": attempt + 1},
                )
        return outcome

    async def _resolve(self, verify: Callable[[], Awaitable[Order | None]]) -> Order | None:
        for attempt in range(self._settings.lookups):
            if attempt:
                await self._clock.sleep(self._settings.retry_delay_seconds * attempt)
            try:
                return await verify()
            except ExchangeUnavailable:
                continue
        return None

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
        previous = position.stop_price
        stored = await self._saved(position.with_stop(price=price, order_id=order_id, owner=owner))
        self._recorder.record(
            EventType.STOP_LOSS_PLACED if previous is None else EventType.STOP_LOSS_REPLACED,
            position=stored,
            order_id=order_id,
            data={
                "price": price,
                "previous_price": previous,
                "quantity": position.quantity,
                "owner": owner.value,
                "reason": reason,
                "method": method,
            },
        )
        return StopResult(ok=True, position=stored)

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
