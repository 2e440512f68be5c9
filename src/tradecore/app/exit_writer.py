"""How the stop keeper keeps an aged position's one reduce-only limit exit order.

Unlocked like `stop_writer`: only the `StopKeeper` builds and calls it, under the symbol's
lock, so an exit order never interleaves with a stop change (the keeper owns every order
that protects or exits a position). The aged manager decides the price; this keeps exactly
one exit order at it — found on the venue by its client id after a restart, extras
cancelled, moved in place where the venue can amend, else replaced (new first).
"""

from collections.abc import Awaitable, Callable
from decimal import Decimal

import attrs

from tradecore.domain.orders import (
    Order,
    OrderRole,
    OrderType,
    attempt_of,
    client_order_id,
    operation_of,
    role_of,
)
from tradecore.domain.positions import Position
from tradecore.ports.clock import Clock
from tradecore.ports.exchange import Accepted, Exchange, ExchangeUnavailable, Outcome, Rejected
from tradecore.ports.repositories import Store

from .commands import Settling, settle


@attrs.frozen(kw_only=True)
class ExitResult:
    """The exit order that now stands (None: unchanged or not placed), and any refusal."""

    order_id: str | None = None
    moved: bool = False  # an existing exit order was moved or replaced
    rejection: Rejected | None = None


class ExitWriter:
    def __init__(self, exchange: Exchange, store: Store, clock: Clock) -> None:
        self._exchange = exchange
        self._store = store
        self._clock = clock

    async def keep(self, position: Position, price: Decimal) -> ExitResult:
        exits = await self.exit_orders(position)
        if exits is None:
            return ExitResult()
        keep, extras = (exits[-1], exits[:-1]) if exits else (None, [])
        for extra in extras:
            await self._exchange.cancel_order(position.symbol, extra.order_id)
        if keep is not None and keep.price == price:
            return ExitResult()
        amendable = keep is not None and self._exchange.capabilities.amend_limit
        if amendable and keep is not None and await self._amended(position, keep, price):
            return ExitResult(order_id=keep.order_id, moved=True)
        cid = client_order_id(position.id, OrderRole.EXIT, _next_attempt(position, exits))

        def create() -> Awaitable[Outcome]:
            return self._exchange.create_limit_order(
                position.symbol,
                position.side.exit,
                position.quantity,
                price,
                client_order_id=cid,
                reduce_only=True,
            )

        async def created() -> Order | None:
            found = await self._exchange.fetch_order_by_client_id(position.symbol, cid)
            return found if found is not None and found.is_open else None

        outcome = await self._settle(create, created)
        if isinstance(outcome, Rejected):
            return ExitResult(rejection=outcome)
        if not isinstance(outcome, Accepted):
            return ExitResult()  # not found: the next pass looks again
        await self._store.orders.record(outcome.order, role=OrderRole.EXIT, position_id=position.id)
        if keep is not None:  # replaced: the new order stands, the old one goes
            await self._exchange.cancel_order(position.symbol, keep.order_id)
        return ExitResult(order_id=outcome.order.order_id, moved=keep is not None)

    async def cancel_all(self, position: Position) -> None:
        for order in await self.exit_orders(position) or []:
            await self._exchange.cancel_order(position.symbol, order.order_id)

    async def exit_orders(self, position: Position) -> list[Order] | None:
        """The position's own limit exit orders, oldest attempt first; None if unreadable."""
        try:
            orders = await self._exchange.fetch_open_orders(position.symbol)
        except ExchangeUnavailable:
            return None
        mine = [
            o
            for o in orders
            if role_of(o.client_order_id) is OrderRole.EXIT
            and operation_of(o.client_order_id) == position.id
            and o.type is OrderType.LIMIT
        ]
        return sorted(mine, key=lambda o: attempt_of(o.client_order_id) or 0)

    async def _amended(self, position: Position, keep: Order, price: Decimal) -> bool:
        def amend() -> Awaitable[Outcome]:
            return self._exchange.amend_order(position.symbol, keep.order_id, price=price)

        async def amended() -> Order | None:
            found = await self.exit_orders(position) or []
            return next(
                (o for o in found if o.order_id == keep.order_id and o.price == price), None
            )

        # One place settles answers: "not modified" (34040) is done, Unknown looked up.
        return isinstance(await self._settle(amend, amended), Accepted)

    async def _settle(
        self, send: Callable[[], Awaitable[Outcome]], lookup: Callable[[], Awaitable[Order | None]]
    ) -> Outcome:
        # One send and one look-up, as the aged manager always did: its next pass retries.
        return await settle(
            send,
            lookup,
            clock=self._clock,
            settling=Settling(attempts=1, lookups=1),
            resend_unknown=False,
        )


def _next_attempt(position: Position, exits: list[Order]) -> int:
    used = [attempt_of(o.client_order_id) or 0 for o in exits]
    return (max(used) + 1) if used else position.version
