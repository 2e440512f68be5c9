"""Aged position manager (SPEC §7): one exit order per aged position, moved as its target moves.

The domain says, from the position's age alone, which phase it is in and at what price it
should be offered (`aged.decide_aged`). This use case decides; the stop keeper — which owns
every order that protects or exits a position — keeps exactly one reduce-only limit exit
order at that price (`keep_exit`, see `exit_writer`) and at the loss cap closes the position
at market (`close_at_market`), both under the symbol's lock, so they never interleave with a
stop change. The stop stays where it is throughout: a close is recorded only once the venue
shows the position flat; what a close that filled part leaves keeps its stop and is closed
on the next pass. Symbols refused for region reasons
(Bybit 170209) are skipped for 24 h.
"""

from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime, timedelta

from tradecore.domain.aged import AgedDecision, AgedPhase, decide_aged
from tradecore.domain.events import EventType, Severity
from tradecore.domain.positions import Position, PositionState
from tradecore.domain.precision import MarketRules
from tradecore.ports.alerts import Alert, Alerter
from tradecore.ports.clock import Clock
from tradecore.ports.exchange import Exchange, Rejected, RejectReason
from tradecore.ports.repositories import Store

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
        # The keeper owns every order that protects or exits a position: it keeps the one
        # exit order, under the symbol's lock, so it never interleaves with a stop change.
        result = await self._keeper.keep_exit(position, decision.target_price)
        if result.rejection is not None:
            self._refused(position, result.rejection)
        elif result.order_id is not None:
            self._placed(position, decision, result.order_id, moved=result.moved)

    def _refused(self, position: Position, rejection: Rejected) -> None:
        if rejection.reason is not RejectReason.REGION_RESTRICTED:
            return
        self._skip_until[position.symbol] = self._clock.now() + timedelta(
            hours=self._settings.region_skip_hours
        )
        self._recorder.record(
            EventType.SYMBOL_UNAVAILABLE,
            position=position,
            error=rejection.message,
            data={
                "reason": rejection.reason.value,
                "code": rejection.code,
                "skipped_hours": self._settings.region_skip_hours,
            },
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
        # The keeper cancels the exit orders and sends the close, under the symbol's lock.
        if not await self._keeper.close_at_market(position, reason="aged: loss cap"):
            return  # not flat: tried again next pass; the stop still protects the rest
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
