"""Aged position manager (SPEC §7): one exit order per aged position, moved as its target moves.

The domain says, from the position's age alone, which phase it is in and at what price it
should be offered (`aged.decide_aged`). This use case keeps exactly one reduce-only limit
exit order at that price — found on the venue by its client id after a restart, extras
cancelled, moved in place where the venue can amend — and at the loss cap closes the position
at market. The stop stays where it is throughout; exit-order changes hold the position's
writer lock so they never interleave with a stop change. Symbols refused for region reasons
(Bybit 170209) are skipped for 24 h.
"""

from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime, timedelta

from tradecore.domain.aged import AgedDecision, AgedPhase, decide_aged
from tradecore.domain.events import EventType, Severity
from tradecore.domain.orders import (
    Order,
    OrderRole,
    OrderType,
    attempt_of,
    client_order_id,
    operation_of,
    role_of,
)
from tradecore.domain.positions import Position, PositionState
from tradecore.domain.precision import MarketRules
from tradecore.ports.alerts import Alert, Alerter
from tradecore.ports.clock import Clock
from tradecore.ports.exchange import (
    Accepted,
    Exchange,
    ExchangeUnavailable,
    Outcome,
    RejectReason,
    Unknown,
)
from tradecore.ports.repositories import Store

from .commands import Settling, settle
from .recorder import Recorder
from .settings import AgedSettings
from .stop_keeper import StopKeeper

Closed = Callable[[Position, str], Awaitable[None]]


class AgedManager:
    def __init__(
        self,
        exchange: Exchange,
        store: Store,
        keeper: StopKeeper,
        recorder: Recorder,
        clock: Clock,
        rules: Mapping[str, MarketRules],
        settings: AgedSettings,
        *,
        on_closed: Closed | None = None,
        alerter: Alerter | None = None,
    ) -> None:
        self._exchange = exchange
        self._store = store
        self._keeper = keeper
        self._recorder = recorder
        self._clock = clock
        self._rules = rules
        self._settings = settings
        self._on_closed = on_closed
        self._alerter = alerter
        self._phases: dict[str, AgedPhase] = {}
        self._skip_until: dict[str, datetime] = {}
        self.exits_placed = 0
        self.closed_at_cap = 0

    async def check(self) -> int:
        """One pass over every active position; the number that are aged."""
        aged = 0
        for position in await self._store.positions.open_positions():
            if position.venue is not self._exchange.venue:
                continue
            if position.state is not PositionState.ACTIVE or position.entry_price is None:
                continue
            rules = self._rules.get(position.symbol)
            if rules is None or self._skipped(position.symbol):
                continue
            decision = decide_aged(
                entry_price=position.entry_price,
                side=position.side,
                quantity=position.quantity,
                opened_at=position.opened_at or position.created_at,
                now=self._clock.now(),
                params=self._settings.params,
                tick_size=rules.tick_size,
            )
            if decision.phase is AgedPhase.NOT_AGED:
                continue
            aged += 1
            self._note_phase(position, decision)
            if decision.close_at_market:
                await self._close_at_cap(position, decision)
            else:
                await self._keep_one_exit(position, decision)
        return aged

    # -- the exit order ---------------------------------------------------------------------

    async def _keep_one_exit(self, position: Position, decision: AgedDecision) -> None:
        assert decision.target_price is not None
        exits = await self._exit_orders(position)
        if exits is None:
            return
        keep, extras = (exits[-1], exits[:-1]) if exits else (None, [])
        for extra in extras:
            await self._exchange.cancel_order(position.symbol, extra.order_id)
        if keep is not None and keep.price == decision.target_price:
            return
        target = decision.target_price
        if keep is not None and self._exchange.capabilities.amend_limit:
            kept = keep

            def amend() -> Awaitable[Outcome]:
                return self._exchange.amend_order(position.symbol, kept.order_id, price=target)

            async def amended() -> Order | None:
                found = await self._exit_orders(position) or []
                return next(
                    (o for o in found if o.order_id == kept.order_id and o.price == target), None
                )

            # One place settles answers: "not modified" (34040) is done, Unknown looked up.
            if isinstance(await self._settle(amend, amended), Accepted):
                self._placed(position, decision, keep.order_id, moved=True)
                return
        attempt = _next_attempt(position, exits)
        cid = client_order_id(position.id, OrderRole.EXIT, attempt)

        def create() -> Awaitable[Outcome]:
            return self._exchange.create_limit_order(
                position.symbol,
                position.side.exit,
                position.quantity,
                target,
                client_order_id=cid,
                reduce_only=True,
            )

        async def created() -> Order | None:
            found = await self._exchange.fetch_order_by_client_id(position.symbol, cid)
            return found if found is not None and found.is_open else None

        order_id = await self._settled(position, cid, await self._settle(create, created))
        if order_id is None:
            return
        if keep is not None:  # replaced: the new order stands, the old one goes
            await self._exchange.cancel_order(position.symbol, keep.order_id)
        self._placed(position, decision, order_id, moved=keep is not None)

    async def _exit_orders(self, position: Position) -> list[Order] | None:
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

    async def _settled(self, position: Position, cid: str, outcome: Outcome) -> str | None:
        if isinstance(outcome, Accepted):
            await self._store.orders.record(
                outcome.order, role=OrderRole.EXIT, position_id=position.id
            )
            return outcome.order.order_id
        if isinstance(outcome, Unknown):
            return None  # settled already: not found; the next pass looks again
        if outcome.reason is RejectReason.REGION_RESTRICTED:
            self._skip_until[position.symbol] = self._clock.now() + timedelta(
                hours=self._settings.region_skip_hours
            )
            self._recorder.record(
                EventType.SYMBOL_UNAVAILABLE,
                position=position,
                error=outcome.message,
                data={
                    "reason": outcome.reason.value,
                    "code": outcome.code,
                    "skipped_hours": self._settings.region_skip_hours,
                },
            )
        return None

    async def _settle(
        self, send: Callable[[], Awaitable[Outcome]], lookup: Callable[[], Awaitable[Order | None]]
    ) -> Outcome:
        return await settle(
            send,
            lookup,
            clock=self._clock,
            settling=Settling(attempts=1, lookups=1),
            resend_unknown=False,
        )

    def _placed(
        self, position: Position, decision: AgedDecision, order_id: str, *, moved: bool
    ) -> None:
        self.exits_placed += not moved
        self._recorder.record(
            EventType.AGED_EXIT_ORDER_PLACED,
            position=position,
            order_id=order_id,
            data={
                "price": decision.target_price,
                "phase": decision.phase.value,
                "loss_percent": decision.loss_percent,
                "moved": moved,
            },
        )

    # -- at the cap -------------------------------------------------------------------------

    async def _close_at_cap(self, position: Position, decision: AgedDecision) -> None:
        for order in await self._exit_orders(position) or []:
            await self._exchange.cancel_order(position.symbol, order.order_id)
        # The keeper owns every order that protects or exits a position: it sends the close.
        if not await self._keeper.close_at_market(position, reason="aged: loss cap"):
            return  # tried again next pass; the stop still protects the position
        self.closed_at_cap += 1
        if self._alerter is not None:
            await self._alerter.send(
                Alert(
                    key=f"aged-cap:{position.id}",
                    severity=Severity.WARNING,
                    title=f"{position.symbol}: aged position closed at the loss cap",
                    text=f"{decision.loss_percent} % below breakeven after "
                    f"{decision.hours_past_grace} h past grace",
                ),
            )
        if self._on_closed is not None:
            await self._on_closed(position, "aged: closed at market at the loss cap")

    # -- bookkeeping ------------------------------------------------------------------------

    def _note_phase(self, position: Position, decision: AgedDecision) -> None:
        previous = self._phases.get(position.id)
        if previous is decision.phase:
            return
        self._phases[position.id] = decision.phase
        if previous is None:
            self._recorder.record(
                EventType.AGED_POSITION_DETECTED,
                position=position,
                data={"phase": decision.phase.value, "breakeven": decision.breakeven_price},
            )
        else:
            self._recorder.record(
                EventType.AGED_PHASE_CHANGED,
                position=position,
                severity=Severity.WARNING if decision.close_at_market else None,
                data={
                    "from": previous.value,
                    "to": decision.phase.value,
                    "loss_percent": decision.loss_percent,
                },
            )

    def _skipped(self, symbol: str) -> bool:
        until = self._skip_until.get(symbol)
        return until is not None and self._clock.now() < until

    def forget(self, position_id: str) -> None:
        self._phases.pop(position_id, None)


def _next_attempt(position: Position, exits: list[Order]) -> int:
    used = [attempt_of(o.client_order_id) or 0 for o in exits]
    return (max(used) + 1) if used else position.version
