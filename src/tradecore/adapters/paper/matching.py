"""Matching: the simulated account's state, and how its orders meet the mark.

Fills, triggers (stops, take-profits, trailing stops), resting limits, positions, funding,
liquidation, and the books that record all of it. The same for every venue: where a venue
differs, its dialect (`venues/`) says so. Time comes from the `now` callable (a virtual clock
in tests), so nothing here waits.

Resting stops and limits are kept per symbol in lists sorted by price, so a tick compares
the mark with the nearest trigger on each side (O(1)) and only pops what it crosses
(O(log n) each); a tick that crosses nothing allocates nothing.
"""

import itertools
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timedelta
from decimal import ROUND_FLOOR, Decimal

from sortedcontainers import SortedList

from tradecore.adapters.paper.books import (
    Amendment,
    Books,
    Fill,
    Funding,
    OrderClosed,
    OrderRecord,
    PositionRecord,
)
from tradecore.adapters.paper.faults import FaultKind, FaultPlan, Op
from tradecore.adapters.paper.history import MarkHistory
from tradecore.adapters.paper.margin import MarginSettings
from tradecore.adapters.paper.resting import (
    CAPPED,
    DEFAULT_FUNDING_RATE,
    FUNDING_INTERVAL,
    ONE,
    EngineOrder,
    EnginePosition,
    SymbolIndex,
    next_funding_time,
)
from tradecore.adapters.paper.venues import PaperDialect
from tradecore.domain.leverage import MarginMode, isolated_liquidation_price, tier_for
from tradecore.domain.model import OrderSide
from tradecore.domain.numbers import ZERO
from tradecore.domain.orders import Balance, OrderStatus, OrderType
from tradecore.domain.precision import MarketRules

TickCallback = Callable[[str, Decimal, datetime], None]
_PARTIAL_KINDS = frozenset({FaultKind.PARTIAL_FILL})


class Matching:
    """One simulated account's state, and its orders matched against the mark."""

    def __init__(
        self,
        profile: PaperDialect,
        *,
        now: Callable[[], datetime],
        markets: Iterable[MarketRules],
        marks: Mapping[str, Decimal] | None = None,
        balance: Decimal = Decimal(10_000),
        leverage: Decimal = Decimal(10),
        slippage: Decimal = ZERO,
        partial_fill_ratio: Decimal | None = None,
        maintenance_margin_rate: Decimal = Decimal("0.005"),
        closed_order_retention: timedelta = timedelta(days=3),
        cancel_reduce_only_when_flat: bool = True,
        liquidations: bool = True,
        funding_rate: Decimal = DEFAULT_FUNDING_RATE,
        listing_lag: timedelta = timedelta(0),
        margin_mode: MarginMode = MarginMode.ISOLATED,
    ) -> None:
        self.profile = profile
        # How long after its creation a look-up by id or client id may still miss an order,
        # on a venue whose create only acknowledges (`Profile.acknowledges_only`). Bybit v5
        # "Get Order History": "As order creation/cancellation is asynchronous, the data
        # returned from this endpoint may delay"; "Get Open & Closed Orders": after a service
        # restart closed orders "should only be queried through order history". Zero: listed
        # at once. Only the look-ups lag (`listed`); the books and the engine never do.
        self.listing_lag = listing_lag
        self.funding_rate = funding_rate
        self.venue = profile.venue
        self.now = now
        self.faults = FaultPlan()
        self.books = Books()
        # called with a symbol after every change of that symbol's orders, position or mark
        self.observers: list[Callable[[str], None]] = []
        self._acting = "venue"  # who cancels: "api" or "manual" by request, else the venue
        self.slippage = slippage
        self.partial_fill_ratio = partial_fill_ratio
        self.maintenance_margin_rate = maintenance_margin_rate
        self.closed_order_retention = closed_order_retention
        self.cancel_reduce_only_when_flat = cancel_reduce_only_when_flat
        self.liquidations = liquidations
        self._wallet = balance
        self._markets: dict[str, MarketRules] = {rules.symbol: rules for rules in markets}
        self.margin = MarginSettings(
            profile,
            self._markets,
            leverage=leverage,
            maintenance_rate=maintenance_margin_rate,
            account_mode=margin_mode,
        )
        self._leverage = self.margin.leverage  # the same dict: one truth per symbol
        self._marks: dict[str, Decimal] = {}
        self._index = {symbol: SymbolIndex() for symbol in self._markets}
        self._positions: dict[str, EnginePosition] = {}
        self._orders: dict[str, EngineOrder] = {}
        self._open: dict[str, dict[str, EngineOrder]] = {symbol: {} for symbol in self._markets}
        self._open_client_ids: dict[str, str] = {}
        self._by_client: dict[str, list[str]] = {}
        self._stops_open: dict[str, int] = dict.fromkeys(self._markets, 0)
        self._stops_total = 0
        self._position_stops: dict[str, EngineOrder] = {}
        self._restricted: set[str] = set()
        self._subscribers: dict[str, list[TickCallback]] = {}
        self._order_numbers = itertools.count(1)
        self._position_numbers = itertools.count(1)
        self._sequence = itertools.count()
        self._trade_numbers = itertools.count(1)
        self._next_funding = next_funding_time(now())
        self.history = MarkHistory()  # every mark, as the venues' mark-price klines keep it
        for symbol, mark in (marks or {}).items():
            if symbol in self._markets:
                self._marks[symbol] = Decimal(mark)
                self.history.record(symbol, self._marks[symbol], now())

    def settle_funding(self) -> None:
        """Charge (or pay) funding on every position held at each 8-hour mark passed since
        the last call: longs pay shorts `size * mark * rate` when the rate is positive.

        The engine has no timer: this runs before every fill (so a position is charged before
        it changes) and every account read, never on the tick path.
        A payment is stamped at its 8-hour mark and priced at the mark current when it runs."""
        now = self.now()
        while now >= self._next_funding:
            at = self._next_funding
            self._next_funding = at + FUNDING_INTERVAL
            if not self.funding_rate:
                continue
            for symbol, position in self._positions.items():
                mark = self._marks.get(symbol, position.entry)
                amount = -position.qty * mark * self.funding_rate
                self._wallet += amount
                self.books.funding.append(
                    Funding(
                        at=at,
                        symbol=symbol,
                        amount=amount,
                        rate=self.funding_rate,
                        payment_id=f"F{next(self._trade_numbers)}",
                    )
                )

    def balance(self) -> Balance:
        self.settle_funding()
        unrealized = sum((self._unrealized(p) for p in self._positions.values()), ZERO)
        used = sum((p.size * p.entry / p.leverage for p in self._positions.values()), ZERO)
        total = self._wallet + unrealized
        return Balance(total=total, free=max(ZERO, total - used), used=used)

    def set_mark(self, symbol: str, mark: Decimal) -> None:
        """A new mark price: fires crossed stops, fills crossed limits, liquidates, notifies."""
        index = self._index[symbol]
        sells, buys = index.sell_stops, index.buy_stops
        bids, asks = index.buy_limits, index.sell_limits
        profits_up, profits_down = index.sell_profits, index.buy_profits
        if (
            (sells and sells[-1][0] >= mark)
            or (buys and buys[0][0] <= mark)
            or (bids and bids[-1][0] >= mark)
            or (asks and asks[0][0] <= mark)
            or (profits_up and profits_up[0][0] <= mark)
            or (profits_down and profits_down[-1][0] >= mark)
            or index.trailing
            or self._liquidating(symbol, mark)
        ):
            # this tick may fill: funding due first, at the marks before it
            self.settle_funding()
        self._marks[symbol] = mark
        now = self.now()
        self.history.record(symbol, mark, now)
        if (sells and sells[-1][0] >= mark) or (buys and buys[0][0] <= mark):
            self._fire_stops(symbol, index, mark)
        if (profits_up and profits_up[0][0] <= mark) or (
            profits_down and profits_down[-1][0] >= mark
        ):
            self._fire_take_profits(symbol, index, mark)
        if index.trailing:
            self._trail(symbol, index, mark)
        if (bids and bids[-1][0] >= mark) or (asks and asks[0][0] <= mark):
            self._fill_limits(symbol, index, mark)
        if self.liquidations:
            position = self._positions.get(symbol)
            if position is not None and self._beyond_liquidation(position, mark):
                self.liquidate(symbol)
        if self.observers:
            self._notify(symbol)
        subscribers = self._subscribers.get(symbol)
        if subscribers:
            for callback in tuple(subscribers):
                callback(symbol, mark, now)

    def liquidate(self, symbol: str) -> bool:
        """The venue takes the position over at the mark and cancels the symbol's orders."""
        position = self._positions.get(symbol)
        if position is None:
            return False
        for order in tuple(self._open[symbol].values()):
            self._cancel(order)
        order = self._new_order(
            symbol=symbol,
            side=position.side.exit,
            type=OrderType.MARKET,
            quantity=position.size,
            price=None,
            trigger=None,
            client_order_id=None,
            reduce_only=True,
            close_position=False,
            position_idx=0,
            origin="liquidation",
        )
        self._fill(order, position.size, self._marks[symbol], reason="liquidation")
        self._close_order(order, OrderStatus.FILLED)
        return True

    def _new_order(
        self,
        *,
        symbol: str,
        side: OrderSide,
        type: OrderType,
        quantity: Decimal,
        price: Decimal | None,
        trigger: Decimal | None,
        client_order_id: str | None,
        reduce_only: bool,
        close_position: bool,
        position_idx: int,
        origin: str,
    ) -> EngineOrder:
        now = self.now()
        order = EngineOrder(
            order_id=self.profile.new_order_id(next(self._order_numbers)),
            client_order_id=client_order_id,
            symbol=symbol,
            side=side,
            type=type,
            quantity=quantity,
            price=price,
            trigger_price=trigger,
            reduce_only=reduce_only,
            close_position=close_position,
            position_idx=position_idx,
            origin=origin,
            now=now,
        )
        self._orders[order.order_id] = order
        self._open[symbol][order.order_id] = order
        if client_order_id is not None:
            self._open_client_ids[client_order_id] = order.order_id
            self._by_client.setdefault(client_order_id, []).append(order.order_id)
        self.books.add_orders(
            OrderRecord(
                at=now,
                order_id=order.order_id,
                client_order_id=client_order_id,
                symbol=symbol,
                side=side,
                type=type,
                quantity=quantity,
                price=price,
                trigger_price=trigger,
                reduce_only=reduce_only,
                close_position=close_position,
                origin=origin,
            )
        )
        return order

    def _rest(self, order: EngineOrder, level: Decimal) -> None:
        order.key = (level, next(self._sequence), order.order_id)
        self._index[order.symbol].lane(order).add(order.key)
        if order.type in CAPPED:
            self._stops_open[order.symbol] += 1
            self._stops_total += 1
        self._touch(order.symbol)

    def _detach(self, order: EngineOrder) -> None:
        """Take an order off the book and out of the open set (it stops being open)."""
        self._open[order.symbol].pop(order.order_id, None)
        cid = order.client_order_id
        if cid is not None and self._open_client_ids.get(cid) == order.order_id:
            del self._open_client_ids[cid]
        if order.key is not None:
            self._index[order.symbol].lane(order).discard(order.key)
            order.key = None
            if order.type in CAPPED:
                self._stops_open[order.symbol] -= 1
                self._stops_total -= 1
        stop_of_position = self._position_stops.get(order.symbol) is order
        if order.type is OrderType.POSITION_STOP and stop_of_position:
            del self._position_stops[order.symbol]

    def _close_order(self, order: EngineOrder, status: OrderStatus) -> None:
        self._detach(order)
        order.status = status
        order.updated_at = order.closed_at = self.now()
        if status is not OrderStatus.FILLED:  # a fill is in `books.fills` already
            self.books.add_closes(
                OrderClosed(
                    at=order.closed_at,
                    order_id=order.order_id,
                    client_order_id=order.client_order_id,
                    symbol=order.symbol,
                    status=status,
                    origin=self._acting,
                )
            )
        self._touch(order.symbol)

    def _cancel(self, order: EngineOrder) -> None:
        self._close_order(order, OrderStatus.CANCELED)

    def _cancel_by(self, order: EngineOrder, origin: str) -> None:
        self._acting = origin
        try:
            self._cancel(order)
        finally:
            self._acting = "venue"

    def _move(
        self,
        order: EngineOrder,
        *,
        trigger: Decimal | None = None,
        price: Decimal | None = None,
        origin: str = "api",
    ) -> None:
        """Re-key a resting order in place: it never leaves the book, so no gap opens."""
        old_trigger, old_price = order.trigger_price, order.price
        lane = self._index[order.symbol].lane(order)
        assert order.key is not None
        lane.remove(order.key)
        if trigger is not None:
            order.trigger_price = trigger
        if price is not None:
            order.price = price
        new_level = trigger if trigger is not None else price
        assert new_level is not None
        order.key = (new_level, order.key[1], order.order_id)
        lane.add(order.key)
        order.updated_at = self.now()
        self.books.add_amendments(
            Amendment(
                at=order.updated_at,
                order_id=order.order_id,
                symbol=order.symbol,
                old_trigger=old_trigger,
                new_trigger=order.trigger_price,
                old_price=old_price,
                new_price=order.price,
                origin=origin,
            )
        )
        self._notify(order.symbol)

    def _fire_stops(self, symbol: str, index: SymbolIndex, mark: Decimal) -> None:
        fired = self._take_at_or_above(index.sell_stops, mark)
        self._trigger(fired + self._take_at_or_below(index.buy_stops, mark), mark)
        self._touch(symbol)

    def _fire_take_profits(self, symbol: str, index: SymbolIndex, mark: Decimal) -> None:
        fired = self._take_at_or_below(index.sell_profits, mark)
        self._trigger(fired + self._take_at_or_above(index.buy_profits, mark), mark)
        self._touch(symbol)

    def _take_at_or_above(self, levels: SortedList, mark: Decimal) -> list[str]:
        """Detach the orders of `levels` (sorted by level) whose level the mark reached from
        below, highest first; their ids."""
        taken: list[str] = []
        while levels and levels[-1][0] >= mark:
            taken.append(levels[-1][2])
            self._detach(self._orders[levels[-1][2]])
        return taken

    def _take_at_or_below(self, levels: SortedList, mark: Decimal) -> list[str]:
        """Detach the orders of `levels` (sorted by level) whose level the mark reached from
        above, lowest first; their ids."""
        taken: list[str] = []
        while levels and levels[0][0] <= mark:
            taken.append(levels[0][2])
            self._detach(self._orders[levels[0][2]])
        return taken

    def _trigger(self, order_ids: list[str], mark: Decimal) -> None:
        for order_id in order_ids:
            order = self._orders[order_id]
            order.status = OrderStatus.TRIGGERED
            self._execute_stop(order, mark)

    def _trail(self, symbol: str, index: SymbolIndex, mark: Decimal) -> None:
        """Move every trailing stop of `symbol` with the mark; fire those it came back to."""
        fired: list[EngineOrder] = []
        for _, _, order_id in tuple(index.trailing):
            order = self._orders[order_id]
            trail = order.trail
            assert trail is not None
            selling = order.side is OrderSide.SELL
            if trail.best is None:
                start = trail.activation
                if start is not None and ((mark < start) if selling else (mark > start)):
                    continue  # not active yet
                trail.best = mark
            elif (mark > trail.best) if selling else (mark < trail.best):
                trail.best = mark
            level = trail.level(order.side)
            if level != order.trigger_price:
                order.trigger_price = level
                order.updated_at = self.now()
            if level is not None and ((mark <= level) if selling else (mark >= level)):
                fired.append(order)
        for order in fired:
            self._detach(order)
            order.status = OrderStatus.TRIGGERED
            self._execute_stop(order, mark)
        if fired:
            self._touch(symbol)

    def _execute_stop(self, order: EngineOrder, price: Decimal) -> None:
        """A fired stop becomes a market order filled at the tick's price (a gap fills worse)."""
        position = self._positions.get(order.symbol)
        if order.reduce_only:
            if position is None or position.side.exit is not order.side:
                self._close_order(order, OrderStatus.EXPIRED)
                return
            quantity = position.size if order.close_position else min(order.quantity, position.size)
            if order.close_position:
                order.quantity = quantity
        else:
            quantity = order.quantity
        self._fill(order, quantity, self._slipped(price, order.side), reason="stop")
        self._close_order(
            order, OrderStatus.FILLED if order.filled >= order.quantity else OrderStatus.EXPIRED
        )

    def _fill_limits(self, symbol: str, index: SymbolIndex, mark: Decimal) -> None:
        crossed = self._take_at_or_above(index.buy_limits, mark)
        crossed += self._take_at_or_below(index.sell_limits, mark)
        for order_id in crossed:
            order = self._orders[order_id]
            quantity = self._fillable(symbol, order, ONE)
            if quantity > ZERO:
                assert order.price is not None
                self._fill(order, quantity, order.price, reason=order.origin)
            self._close_order(
                order, OrderStatus.FILLED if order.filled >= order.quantity else OrderStatus.EXPIRED
            )

    def _liquidating(self, symbol: str, mark: Decimal) -> bool:
        position = self._positions.get(symbol) if self.liquidations else None
        return position is not None and self._beyond_liquidation(position, mark)

    def _beyond_liquidation(self, position: EnginePosition, mark: Decimal) -> bool:
        if position.qty > 0:
            return mark <= position.liquidation
        return mark >= position.liquidation

    def _fill_ratio(self, symbol: str, origin: str) -> Decimal:
        if origin == "api":
            fault = self.faults.take(Op.MARKET_ORDER, symbol, _PARTIAL_KINDS)
            if fault is not None and fault.fill_ratio is not None:
                return fault.fill_ratio
        return self.partial_fill_ratio if self.partial_fill_ratio is not None else ONE

    def _fillable(self, symbol: str, order: EngineOrder, ratio: Decimal) -> Decimal:
        """How much of `order` fills now: cut to the position if reduce-only, then by `ratio`."""
        quantity = order.quantity
        if order.reduce_only:
            position = self._positions.get(symbol)
            if position is None or position.side.exit is not order.side:
                return ZERO
            quantity = min(quantity, position.size)
        if ratio < ONE:
            step = self._markets[symbol].step_size
            quantity = (quantity * ratio / step).to_integral_value(rounding=ROUND_FLOOR) * step
        return quantity

    def _slipped(self, price: Decimal, side: OrderSide) -> Decimal:
        if not self.slippage:
            return price
        return price * (ONE + self.slippage if side is OrderSide.BUY else ONE - self.slippage)

    def _fill(self, order: EngineOrder, quantity: Decimal, price: Decimal, *, reason: str) -> None:
        self.settle_funding()  # on the position as it was until now
        fee = quantity * price * self.profile.taker_fee
        self.books.add_fills(
            Fill(
                at=self.now(),
                order_id=order.order_id,
                client_order_id=order.client_order_id,
                symbol=order.symbol,
                side=order.side,
                quantity=quantity,
                price=price,
                reason=reason,
                fee=fee,
                trade_id=f"T{next(self._trade_numbers)}",
            )
        )
        previous = order.filled
        order.filled = previous + quantity
        paid = (order.average_price or ZERO) * previous + price * quantity
        order.average_price = paid / order.filled
        order.updated_at = self.now()
        self._wallet -= fee
        signed = quantity if order.side is OrderSide.BUY else -quantity
        self._apply(order.symbol, signed, price, reason)

    def _apply(self, symbol: str, signed: Decimal, price: Decimal, reason: str) -> None:
        position = self._positions.get(symbol)
        if position is None:
            self._open_position(symbol, signed, price)
            return
        if (position.qty > 0) == (signed > 0):
            size = position.size + abs(signed)
            position.entry = (position.entry * position.size + price * abs(signed)) / size
            position.qty += signed
            self._set_liquidation(position)
            return
        closing = min(abs(signed), position.size)
        self._wallet += (price - position.entry) * closing * (1 if position.qty > 0 else -1)
        if closing < position.size:
            position.qty += signed
            return
        self._close_position(symbol, reason)
        rest = abs(signed) - closing
        if rest > ZERO:
            self._open_position(symbol, rest if signed > 0 else -rest, price)

    def _open_position(self, symbol: str, signed: Decimal, price: Decimal) -> None:
        position = EnginePosition(symbol, signed, price, self._leverage[symbol])
        self._set_liquidation(position)
        position.record = PositionRecord(
            position_id=f"{symbol}-{next(self._position_numbers)}",
            symbol=symbol,
            side=position.side,
            opened_at=self.now(),
        )
        self.books.positions.append(position.record)
        self._positions[symbol] = position
        # reduce-only orders resting on the new position's entry side would now increase it
        for order in tuple(self._open[symbol].values()):
            if order.reduce_only and order.side is position.side.entry and order.key is not None:
                self._cancel(order)
        self._touch(symbol)

    def _close_position(self, symbol: str, reason: str) -> None:
        position = self._positions.pop(symbol)
        assert position.record is not None
        position.record.close(self.now(), reason)
        for order in tuple(self._open[symbol].values()):
            if order.type is OrderType.MARKET:
                continue  # the order closing it, still being filled
            if order.type is OrderType.POSITION_STOP or (
                order.reduce_only and self.cancel_reduce_only_when_flat
            ):
                self._cancel(order)

    def _set_liquidation(self, position: EnginePosition) -> None:
        """Where the venue liquidates it: the isolated formula on the symbol's tier (a cross
        position is simulated as if isolated: the engine holds no account-wide margin)."""
        tiers = self.margin.tiers(position.symbol)
        tier = tier_for(tiers, position.size * position.entry)
        assert tier is not None
        position.liquidation = isolated_liquidation_price(
            position.side, position.entry, position.size, position.leverage, tier
        )

    def _touch(self, symbol: str) -> None:
        """Record how many stops protect the symbol's position right now."""
        if self.observers:
            self._notify(symbol)
        position = self._positions.get(symbol)
        if position is None or position.record is None:
            return
        index = self._index[symbol]
        count = len(index.sell_stops if position.qty > 0 else index.buy_stops)
        position.record.observe(self.now(), count)

    def _notify(self, symbol: str) -> None:
        """Tell every observer that `symbol`'s state on the venue changed (cheap when none)."""
        for observer in self.observers:
            observer(symbol)

    def _unrealized(self, position: EnginePosition) -> Decimal:
        mark = self._marks.get(position.symbol, position.entry)
        return (mark - position.entry) * position.qty
