"""A public fake exchange for tests: a strict simulated Binance or Bybit account in virtual time.

    venue = FakeVenue.binance(marks={"BTCUSDT": "50000"})
    exchange = venue.exchange            # tradecore's Exchange port
    await venue.set_mark("BTCUSDT", "48000")   # fires stops the mark crosses
    await venue.advance(60)              # virtual time: sleepers wake, price paths tick
    venue.inject(Fault.lost_response(Op.STOP_ORDER))
    venue.books.unprotected_intervals("BTCUSDT")

See docs/testing.md.
"""

import itertools
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Protocol, runtime_checkable

from tradecore.adapters.clock import SequentialIds, VirtualClock, settle
from tradecore.adapters.paper import (
    BINANCE,
    BYBIT,
    DEFAULT_MARKS,
    Books,
    Fault,
    FaultKind,
    Interval,
    ListPath,
    Op,
    PaperExchange,
    PathPlayer,
    PricePath,
    Profile,
    RandomWalk,
    VenueEngine,
    default_markets,
)
from tradecore.domain.events import Event, EventType
from tradecore.domain.model import OrderSide, Side
from tradecore.domain.numbers import to_decimal
from tradecore.domain.orders import Order, OrderType, VenuePosition
from tradecore.domain.precision import MarketRules
from tradecore.ports.exchange import Accepted, Exchange, Outcome, Rejected, RejectReason, Unknown

__all__ = [
    "Accepted",
    "EventLog",
    "FakeVenue",
    "Fault",
    "FaultKind",
    "FreeLock",
    "Interval",
    "ListPath",
    "Op",
    "RandomWalk",
    "RejectReason",
    "Rejected",
    "SequentialIds",
    "TradingApp",
    "Unknown",
    "VenueHarness",
    "VirtualClock",
]


class FreeLock:
    """An `InstanceLock` nobody else holds, for tests and notebooks that run one instance."""

    def __init__(self) -> None:
        self.held_by: str | None = None

    async def acquire(self, account: str) -> None:
        self.held_by = account

    async def release(self) -> None:
        self.held_by = None


class EventLog:
    """An `EventSink` that keeps every event in memory, for tests to read back."""

    def __init__(self) -> None:
        self.events: list[Event] = []

    def emit(self, event: Event) -> None:
        self.events.append(event)

    async def flush(self) -> None:
        return None

    async def close(self) -> None:
        return None

    def of(self, event_type: EventType) -> list[Event]:
        """The events of one type, in the order they were emitted."""
        return [event for event in self.events if event.type is event_type]

    def types(self) -> list[EventType]:
        return [event.type for event in self.events]


@runtime_checkable
class VenueHarness(Protocol):
    """An exchange adapter under test plus the control surface of the venue behind it.

    The contract suite drives every adapter through this: the paper adapter directly, the
    ccxt adapters through loopback servers wrapping the same engine.
    """

    @property
    def exchange(self) -> Exchange: ...

    @property
    def books(self) -> Books: ...

    def now(self) -> datetime: ...

    async def set_mark(self, symbol: str, mark: Decimal | str | int) -> None:
        """Move the mark (stops it crosses fire) and let subscribers see the tick."""
        ...

    async def advance(self, seconds: float) -> None: ...

    def inject(self, *faults: Fault) -> None: ...

    def lag_listing(self, seconds: float) -> None:
        """Look-ups by id miss an order for `seconds` after its creation (on a venue whose
        create only acknowledges: Bybit)."""
        ...

    def rules(self, symbol: str) -> MarketRules: ...

    async def close(self) -> None: ...


class FakeVenue:
    """A simulated account on Binance USDⓈ-M or Bybit linear, with its clock and its books."""

    def __init__(
        self,
        profile: Profile,
        *,
        markets: Iterable[MarketRules] | None = None,
        marks: Mapping[str, Decimal | str | int] | None = None,
        balance: Decimal | str | int = "10000",
        clock: VirtualClock | None = None,
        latency: float = 0.0,
        **engine_options: Any,
    ) -> None:
        self.clock = clock or VirtualClock()
        chosen = tuple(markets) if markets is not None else default_markets(profile.venue)
        prices = dict(DEFAULT_MARKS)
        prices.update({s: to_decimal(m, name=f"mark of {s}") for s, m in (marks or {}).items()})
        self.engine = VenueEngine(
            profile,
            now=self.clock.now,
            markets=chosen,
            marks={r.symbol: prices[r.symbol] for r in chosen if r.symbol in prices},
            balance=to_decimal(balance, name="balance"),
            **engine_options,
        )
        self._exchange = PaperExchange(self.engine, clock=self.clock, latency=latency)
        self._players: list[PathPlayer] = []
        self._ids = itertools.count(1)

    @classmethod
    def binance(cls, **options: Any) -> "FakeVenue":
        """A Binance USDⓈ-M account: separate stop orders, no amend, 200 conditional orders."""
        return cls(BINANCE, **options)

    @classmethod
    def bybit(cls, **options: Any) -> "FakeVenue":
        """A Bybit linear account: position-attached stops, amendable conditional orders."""
        return cls(BYBIT, **options)

    # ----------------------------------------------------------------- the harness surface

    @property
    def exchange(self) -> PaperExchange:
        return self._exchange

    @property
    def books(self) -> Books:
        return self.engine.books

    def now(self) -> datetime:
        return self.clock.now()

    async def set_mark(self, symbol: str, mark: Decimal | str | int) -> None:
        self.engine.set_mark(symbol, to_decimal(mark, name="mark"))
        await settle()

    async def advance(self, seconds: float) -> None:
        await self.clock.advance(seconds)

    def inject(self, *faults: Fault) -> None:
        self.engine.faults.add(*faults)

    def lag_listing(self, seconds: float) -> None:
        """From now on a look-up by id misses an order for `seconds` after its creation, as
        Bybit's may (its create only acknowledges; see `VenueEngine.listing_lag`)."""
        self.engine.listing_lag = timedelta(seconds=seconds)

    def rules(self, symbol: str) -> MarketRules:
        return self.engine.markets[symbol]

    async def close(self) -> None:
        for player in self._players:
            player.stop()
        await self._exchange.close()

    # ----------------------------------------------------------------- helpers

    def play(self, paths: Mapping[str, PricePath]) -> PathPlayer:
        """Start feeding price paths to the venue as the clock advances."""
        player = PathPlayer(self.engine, self.clock, paths)
        player.start()
        self._players.append(player)
        return player

    def mark(self, symbol: str) -> Decimal:
        mark = self.engine.mark(symbol)
        if mark is None:
            raise KeyError(f"{symbol} has no mark price on this venue")
        return mark

    def position(self, symbol: str) -> VenuePosition | None:
        return self.engine.position(symbol)

    def stops(self, symbol: str) -> list[Order]:
        """The stops resting on `symbol` now (position-attached ones included)."""
        return [order for order in self.engine.open_orders(symbol) if order.is_stop]

    async def open_position(
        self,
        symbol: str,
        side: Side,
        quantity: Decimal | str,
        *,
        client_order_id: str | None = None,
    ) -> Order:
        """Open (or add to) a position at the mark through the exchange port; fail loudly."""
        cid = client_order_id or f"fake-entry-{next(self._ids)}"
        outcome = await self._exchange.create_market_order(
            symbol, side.entry, Decimal(quantity), client_order_id=cid
        )
        return _accepted(outcome)

    async def place_stop(
        self,
        symbol: str,
        side: OrderSide,
        quantity: Decimal | str,
        trigger: Decimal | str,
        *,
        client_order_id: str | None = None,
    ) -> Order:
        cid = client_order_id or f"fake-stop-{next(self._ids)}"
        outcome = await self._exchange.create_stop_order(
            symbol, side, Decimal(quantity), Decimal(trigger), client_order_id=cid
        )
        return _accepted(outcome)

    def manual_close(self, symbol: str) -> Outcome:
        """Someone closes the position by hand on the venue's website."""
        return self.engine.manual_close(symbol)

    def manual_order(
        self, symbol: str, side: OrderSide, quantity: Decimal | str, *, reduce_only: bool = False
    ) -> Outcome:
        """Someone places a market order by hand (no client id tradecore knows)."""
        return self.engine.place_market(
            symbol, side, Decimal(quantity), reduce_only=reduce_only, origin="manual"
        )

    def manual_stop(
        self, symbol: str, side: OrderSide, quantity: Decimal | str, trigger: Decimal | str
    ) -> Outcome:
        """Someone places a stop by hand."""
        return self.engine.place_stop(
            symbol, side, Decimal(quantity), Decimal(trigger), origin="manual"
        )

    def liquidate(self, symbol: str) -> bool:
        return self.engine.liquidate(symbol)

    # ----------------------------------------------------------------- a person on the website
    # What someone with the account's login does by hand; each returns the venue's answer
    # (`Accepted` or its `Rejected`), and the books record it with origin "manual".

    def cancel_stop(self, symbol: str) -> list[Outcome]:
        """Someone cancels every stop protecting `symbol` (a position stop is removed)."""
        results: list[Outcome] = []
        for stop in self.stops(symbol):
            if stop.type is OrderType.POSITION_STOP:
                results.append(self.engine.set_position_stop(symbol, None, origin="manual"))
            else:
                results.append(self.engine.cancel(symbol, stop.order_id, origin="manual"))
        return results

    def move_stop(self, symbol: str, trigger: Decimal | str) -> list[Outcome]:
        """Someone drags every stop of `symbol` to `trigger` (tighter or looser)."""
        level = Decimal(trigger)
        results: list[Outcome] = []
        for stop in self.stops(symbol):
            if stop.type is OrderType.POSITION_STOP:
                results.append(self.engine.set_position_stop(symbol, level, origin="manual"))
            else:
                results.append(
                    self.engine.amend(symbol, stop.order_id, trigger_price=level, origin="manual")
                    if self.engine.profile.capabilities.amend_stop
                    else self._replace_by_hand(stop, level)
                )
        return results

    def _replace_by_hand(self, stop: Order, level: Decimal) -> Outcome:
        """Where the website cannot amend a stop (Binance), a person cancels and re-places."""
        self.engine.cancel(stop.symbol, stop.order_id, origin="manual")
        return self.engine.place_stop(
            stop.symbol,
            stop.side,
            stop.quantity,
            level,
            close_position=stop.close_position,
            origin="manual",
        )

    def add_take_profit(self, symbol: str, price: Decimal | str, *, limit: bool = False) -> Outcome:
        """Someone adds a take-profit for the whole position, as the venues' own TP/SL
        tools do: a reduce-only take-profit-market order that fires when the mark reaches
        `price` the position's way (Binance TAKE_PROFIT_MARKET, Bybit TakeProfit); with
        `limit`, a reduce-only limit order at `price` instead."""
        held = self.position(symbol)
        if held is None:
            return self.engine.profile.refusal(RejectReason.NO_POSITION, symbol=symbol)
        if limit:
            return self.engine.place_limit(
                symbol, held.side.exit, held.quantity, Decimal(price), origin="manual"
            )
        return self.engine.place_take_profit(
            symbol, held.side.exit, held.quantity, Decimal(price), origin="manual"
        )

    def add_trailing_stop(
        self,
        symbol: str,
        *,
        rate: Decimal | str | None = None,
        distance: Decimal | str | None = None,
        activation: Decimal | str | None = None,
    ) -> Outcome:
        """Someone adds the venue's own trailing stop for the whole position: it comes back
        `rate` (a fraction, Binance) or `distance` (a price, Bybit) from the best mark since
        `activation` (at once without one). Not a stop-loss: the bot keeps its own."""
        held = self.position(symbol)
        if held is None:
            return self.engine.profile.refusal(RejectReason.NO_POSITION, symbol=symbol)
        return self.engine.place_trailing_stop(
            symbol,
            held.side.exit,
            held.quantity,
            rate=None if rate is None else Decimal(rate),
            distance=None if distance is None else Decimal(distance),
            activation=None if activation is None else Decimal(activation),
            origin="manual",
        )

    def open_by_hand(self, symbol: str, side: Side, quantity: Decimal | str) -> Outcome:
        """Someone opens (or adds to) a position by hand, with no stop."""
        return self.engine.place_market(symbol, side.entry, Decimal(quantity), origin="manual")

    def close_by_hand(self, symbol: str) -> Outcome:
        """Someone closes the whole position at market."""
        return self.engine.manual_close(symbol)

    def partly_close_by_hand(self, symbol: str, quantity: Decimal | str) -> Outcome:
        """Someone closes `quantity` of the position at market (reduce-only)."""
        held = self.position(symbol)
        if held is None:
            return self.engine.profile.refusal(RejectReason.NO_POSITION, symbol=symbol)
        return self.engine.place_market(
            symbol, held.side.exit, Decimal(quantity), reduce_only=True, origin="manual"
        )

    def unprotected_intervals(self, symbol: str | None = None) -> tuple[Interval, ...]:
        return self.books.unprotected_intervals(symbol)


def _accepted(outcome: Outcome) -> Order:
    if not isinstance(outcome, Accepted):
        raise AssertionError(f"the venue did not accept the order: {outcome!r}")
    return outcome.order


def __getattr__(name: str) -> Any:
    if name == "TradingApp":  # imported on first use: it needs the application layer
        from tradecore.testing.app import TradingApp

        return TradingApp
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
