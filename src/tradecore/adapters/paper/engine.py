"""The simulated venue: state and rules, with no transport in front of it.

One account in one-way mode on one venue profile (Binance USDⓈ-M or Bybit linear): markets,
a USDT wallet, positions, orders, mark prices. Every command returns `Accepted` or the
venue's own `Rejected`; bad input is a rejection, never an exception. Time comes from the
`now` callable (a virtual clock in tests), so the engine itself never waits.

Resting stops and limits are kept per symbol in lists sorted by price, so a tick compares
the mark with the nearest trigger on each side (O(1)) and only pops what it crosses
(O(log n) each); a tick that crosses nothing allocates nothing.
"""

import itertools
import re
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timedelta
from decimal import ROUND_FLOOR, Decimal, InvalidOperation

from sortedcontainers import SortedList

from tradecore.adapters.paper.books import (
    Amendment,
    Books,
    Fill,
    Funding,
    OrderClosed,
    OrderRecord,
    PositionRecord,
    Refusal,
)
from tradecore.adapters.paper.faults import FaultKind, FaultPlan, Op
from tradecore.adapters.paper.margin import MarginSettings
from tradecore.adapters.paper.profiles import Profile
from tradecore.domain.leverage import (
    LeverageTier,
    MarginMode,
    isolated_liquidation_price,
    tier_for,
)
from tradecore.domain.model import OrderSide, Side, Venue
from tradecore.domain.numbers import ZERO
from tradecore.domain.orders import Balance, Order, OrderStatus, OrderType, VenuePosition
from tradecore.domain.pnl import SETTLE_ASSET, FundingPayment
from tradecore.domain.pnl import Fill as TradeFill
from tradecore.domain.precision import MarketRules
from tradecore.ports.exchange import Accepted, Applied, Rejected, RejectReason

R = RejectReason
Result = Accepted | Rejected
TickCallback = Callable[[str, Decimal, datetime], None]

_CLIENT_ID = re.compile(r"^[A-Za-z0-9_-]{1,36}$")
_ILLEGAL = (
    "Illegal characters found in parameter '{field}'; "
    "legal range is '^([0-9]{{1,20}})(\\.[0-9]{{1,20}})?$'."
)
_PRECISION = "Precision is over the maximum defined for this asset."
# Above any real contract's maximum; keeps Decimal arithmetic away from overflow.
_LIMIT = Decimal(10) ** 12
_REJECT_KINDS = frozenset({FaultKind.REJECT})
_PARTIAL_KINDS = frozenset({FaultKind.PARTIAL_FILL})
# conditional orders: each counts against the venue's conditional-order cap
_CAPPED = frozenset({OrderType.STOP_MARKET, OrderType.TAKE_PROFIT, OrderType.TRAILING_STOP})
ONE = Decimal(1)
# Both venues settle USDT perpetual funding every 8 hours at 00:00, 08:00 and 16:00 UTC for
# most contracts (Binance "Introduction to Binance Futures Funding Rates"; Bybit "Introduction
# to Funding Rate"). With no premium the rate is the interest component, 0.01 % per 8 hours on
# Binance: the default here (`paper.funding_rate`, docs/configuration.md).
FUNDING_INTERVAL = timedelta(hours=8)
DEFAULT_FUNDING_RATE = Decimal("0.0001")


class _Order:
    """The engine's mutable order; `snapshot()` gives the frozen domain value."""

    __slots__ = (
        "average_price",
        "client_order_id",
        "close_position",
        "closed_at",
        "created_at",
        "filled",
        "key",
        "order_id",
        "origin",
        "position_idx",
        "price",
        "quantity",
        "reduce_only",
        "side",
        "status",
        "symbol",
        "trail",
        "trigger_price",
        "type",
        "updated_at",
    )

    def __init__(
        self,
        *,
        order_id: str,
        client_order_id: str | None,
        symbol: str,
        side: OrderSide,
        type: OrderType,
        quantity: Decimal,
        price: Decimal | None,
        trigger_price: Decimal | None,
        reduce_only: bool,
        close_position: bool,
        position_idx: int,
        origin: str,
        now: datetime,
    ) -> None:
        self.order_id = order_id
        self.client_order_id = client_order_id
        self.symbol = symbol
        self.side = side
        self.type = type
        self.quantity = quantity
        self.price = price
        self.trigger_price = trigger_price
        self.reduce_only = reduce_only
        self.close_position = close_position
        self.position_idx = position_idx
        self.origin = origin
        self.status = OrderStatus.OPEN
        self.filled = ZERO
        self.average_price: Decimal | None = None
        self.created_at = now
        self.updated_at = now
        self.closed_at: datetime | None = None
        self.key: tuple[Decimal, int, str] | None = None  # its entry in a sorted index
        self.trail: _Trail | None = None  # a trailing stop's rule and best mark

    def snapshot(self, venue: Venue) -> Order:
        return Order(
            venue=venue,
            symbol=self.symbol,
            order_id=self.order_id,
            client_order_id=self.client_order_id,
            side=self.side,
            type=self.type,
            quantity=self.quantity,
            status=self.status,
            filled=self.filled,
            price=self.price,
            trigger_price=self.trigger_price,
            average_price=self.average_price,
            reduce_only=self.reduce_only,
            close_position=self.close_position,
            position_idx=self.position_idx,
            created_at=self.created_at,
            updated_at=self.updated_at,
        )


class _Position:
    __slots__ = ("entry", "leverage", "liquidation", "qty", "record", "symbol")

    def __init__(self, symbol: str, qty: Decimal, entry: Decimal, leverage: Decimal) -> None:
        self.symbol = symbol
        self.qty = qty  # signed: > 0 long, < 0 short
        self.entry = entry
        self.leverage = leverage
        self.liquidation = ZERO
        self.record: PositionRecord | None = None

    @property
    def side(self) -> Side:
        return Side.LONG if self.qty > 0 else Side.SHORT

    @property
    def size(self) -> Decimal:
        return abs(self.qty)


class _Trail:
    """A trailing stop's rule: active from `activation` (at once if None), it fires once the
    mark comes back from its best by `rate` (Binance callbackRate) or `distance` (Bybit
    trailingStop)."""

    __slots__ = ("activation", "best", "distance", "rate")

    def __init__(
        self, activation: Decimal | None, rate: Decimal | None, distance: Decimal | None
    ) -> None:
        self.activation = activation
        self.rate = rate
        self.distance = distance
        self.best: Decimal | None = None  # the best mark since activation

    def level(self, side: OrderSide) -> Decimal | None:
        if self.best is None:
            return None
        sign = ONE if side is OrderSide.SELL else -ONE
        back = self.best * self.rate if self.rate is not None else self.distance or ZERO
        return self.best - sign * back


class _SymbolIndex:
    """Resting orders of one symbol by price: (price, sequence, order id)."""

    __slots__ = (
        "buy_limits",
        "buy_profits",
        "buy_stops",
        "sell_limits",
        "sell_profits",
        "sell_stops",
        "trailing",
    )

    def __init__(self) -> None:
        self.sell_stops: SortedList = SortedList()  # fire when mark <= trigger
        self.buy_stops: SortedList = SortedList()  # fire when mark >= trigger
        self.buy_limits: SortedList = SortedList()  # fill when mark <= price
        self.sell_limits: SortedList = SortedList()  # fill when mark >= price
        self.sell_profits: SortedList = SortedList()  # take-profits: fire when mark >= trigger
        self.buy_profits: SortedList = SortedList()  # take-profits: fire when mark <= trigger
        self.trailing: SortedList = SortedList()  # trailing stops, checked on every tick

    def lane(self, order: _Order) -> SortedList:
        if order.type is OrderType.LIMIT:
            return self.buy_limits if order.side is OrderSide.BUY else self.sell_limits
        if order.type is OrderType.TAKE_PROFIT:
            return self.buy_profits if order.side is OrderSide.BUY else self.sell_profits
        if order.type is OrderType.TRAILING_STOP:
            return self.trailing
        return self.buy_stops if order.side is OrderSide.BUY else self.sell_stops


def _finite(value: object) -> Decimal | None:
    """`value` as a finite Decimal, or None for NaN, infinities, booleans and non-numbers."""
    if isinstance(value, bool):
        return None
    if isinstance(value, float):
        value = repr(value)
    try:
        result = value if isinstance(value, Decimal) else Decimal(value)  # type: ignore[arg-type]
    except (InvalidOperation, TypeError, ValueError):
        return None
    return result if result.is_finite() else None


def _multiple(value: Decimal, unit: Decimal) -> bool:
    try:
        return value % unit == ZERO
    except InvalidOperation:  # the quotient has more digits than the context holds
        return False


def _next_funding_time(now: datetime) -> datetime:
    """The first 8-hour funding mark (00:00, 08:00, 16:00 UTC) after `now`."""
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    passed = (now - midnight) // FUNDING_INTERVAL
    return midnight + (passed + 1) * FUNDING_INTERVAL


def _exponent(value: Decimal) -> int:
    exponent = value.normalize().as_tuple().exponent
    return exponent if isinstance(exponent, int) else 0


class VenueEngine:
    """One simulated account on one venue profile."""

    def __init__(
        self,
        profile: Profile,
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
        self._index = {symbol: _SymbolIndex() for symbol in self._markets}
        self._positions: dict[str, _Position] = {}
        self._orders: dict[str, _Order] = {}
        self._open: dict[str, dict[str, _Order]] = {symbol: {} for symbol in self._markets}
        self._open_client_ids: dict[str, str] = {}
        self._by_client: dict[str, list[str]] = {}
        self._stops_open: dict[str, int] = dict.fromkeys(self._markets, 0)
        self._stops_total = 0
        self._position_stops: dict[str, _Order] = {}
        self._restricted: set[str] = set()
        self._subscribers: dict[str, list[TickCallback]] = {}
        self._order_numbers = itertools.count(1)
        self._position_numbers = itertools.count(1)
        self._sequence = itertools.count()
        self._trade_numbers = itertools.count(1)
        self._next_funding = _next_funding_time(now())
        for symbol, mark in (marks or {}).items():
            if symbol in self._markets:
                self._marks[symbol] = Decimal(mark)

    # ----------------------------------------------------------------- queries

    @property
    def markets(self) -> Mapping[str, MarketRules]:
        return dict(self._markets)

    def mark(self, symbol: str) -> Decimal | None:
        return self._marks.get(symbol)

    def fills(self, symbol: str, since: datetime) -> list[TradeFill]:
        """The account's fills on `symbol` at or after `since`, oldest first."""
        self.settle_funding()
        return [
            TradeFill(
                symbol=f.symbol,
                order_id=f.order_id,
                client_order_id=f.client_order_id,
                side=f.side,
                price=f.price,
                quantity=f.quantity,
                fee=f.fee,
                fee_asset=SETTLE_ASSET,
                at=f.at,
                trade_id=f.trade_id,
            )
            for f in self.books.fills
            if f.symbol == symbol and f.at >= since
        ]

    def funding(self, symbol: str, since: datetime) -> list[FundingPayment]:
        """Funding settled on `symbol` at or after `since`, oldest first."""
        self.settle_funding()
        return [
            FundingPayment(
                symbol=f.symbol,
                amount=f.amount,
                asset=SETTLE_ASSET,
                at=f.at,
                payment_id=f.payment_id,
            )
            for f in self.books.funding
            if f.symbol == symbol and f.at >= since
        ]

    def settle_funding(self) -> None:
        """Charge (or pay) funding on every position held at each 8-hour mark passed since
        the last call: longs pay shorts `size * mark * rate` when the rate is positive.

        The engine has no timer: this runs before every fill (so a position is charged before
        it changes) and every account read, never on the tick path (a tick reads no clock).
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

    def positions(self) -> list[VenuePosition]:
        self.settle_funding()
        return [self._report(position) for position in self._positions.values()]

    def position(self, symbol: str) -> VenuePosition | None:
        position = self._positions.get(symbol)
        return None if position is None else self._report(position)

    def position_record(self, symbol: str) -> PositionRecord | None:
        """The books' record of the position open on `symbol` now (None when flat)."""
        position = self._positions.get(symbol)
        return None if position is None else position.record

    def open_orders(self, symbol: str | None = None) -> list[Order]:
        symbols = self._open if symbol is None else {symbol: self._open.get(symbol, {})}
        return [o.snapshot(self.venue) for orders in symbols.values() for o in orders.values()]

    def order(self, order_id: str) -> Order | None:
        found = self._orders.get(order_id)
        return None if found is None else found.snapshot(self.venue)

    def listed(self, order: Order | None) -> Order | None:
        """`order` as a look-up by id or client id shows it: missing while `listing_lag` has
        not passed since its creation on a venue whose create only acknowledges."""
        if order is None or not self.listing_lag or not self.profile.acknowledges_only:
            return order
        created = order.created_at
        return order if created is None or self.now() - created >= self.listing_lag else None

    def all_orders(self) -> list[Order]:
        return [order.snapshot(self.venue) for order in self._orders.values()]

    def order_by_client_id(self, symbol: str, client_order_id: str) -> Order | None:
        """The latest order with this client id: open, filled, or closed within retention."""
        for order_id in reversed(self._by_client.get(client_order_id, ())):
            order = self._orders[order_id]
            if order.symbol != symbol:
                continue
            if order.status.is_open or order.filled > ZERO:
                return order.snapshot(self.venue)
            closed = order.closed_at or order.updated_at
            if self.now() - closed <= self.closed_order_retention:
                return order.snapshot(self.venue)
            return None
        return None

    # ----------------------------------------------------------------- market data

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
            now = self.now()
            for callback in tuple(subscribers):
                callback(symbol, mark, now)

    def subscribe(self, symbols: Iterable[str], callback: TickCallback) -> Callable[[], None]:
        """Call `callback(symbol, mark, at)` on every tick of `symbols`; returns unsubscribe."""
        chosen = tuple(dict.fromkeys(symbols))
        for symbol in chosen:
            self._subscribers.setdefault(symbol, []).append(callback)

        def unsubscribe() -> None:
            for symbol in chosen:
                listeners = self._subscribers.get(symbol, [])
                if callback in listeners:
                    listeners.remove(callback)

        return unsubscribe

    # ----------------------------------------------------------------- venue operator

    def set_symbol_available(self, symbol: str, available: bool) -> None:
        """A symbol taken out of trading (opening refused, reducing allowed) or back in."""
        rules = self._markets[symbol]
        self._markets[symbol] = MarketRules(
            symbol=rules.symbol,
            tick_size=rules.tick_size,
            step_size=rules.step_size,
            min_quantity=rules.min_quantity,
            min_notional=rules.min_notional,
            max_leverage=rules.max_leverage,
            active=available,
        )

    def restrict_region(self, symbol: str, restricted: bool = True) -> None:
        """Refuse every order on `symbol` as the venue does for the account's region."""
        if restricted:
            self._restricted.add(symbol)
        else:
            self._restricted.discard(symbol)

    def set_wallet(self, amount: Decimal) -> None:
        self._wallet = amount

    def set_leverage(self, symbol: str, leverage: Decimal) -> None:
        self._leverage[symbol] = min(leverage, self._markets[symbol].max_leverage)

    # ----------------------------------------------------------------- leverage, margin mode

    def change_leverage(self, symbol: str, leverage: Decimal) -> Applied | Rejected:
        """The account's request to change the symbol's leverage (see `margin.py`)."""
        forced = self._forced(Op.SET_LEVERAGE, symbol)
        return forced or self.margin.change_leverage(symbol, leverage)

    def change_margin_mode(self, symbol: str, mode: MarginMode) -> Applied | Rejected:
        forced = self._forced(Op.SET_MARGIN_MODE, symbol)
        position_open = symbol in self._positions or bool(self._open.get(symbol))
        return forced or self.margin.change_mode(symbol, mode, position_open=position_open)

    def _forced(self, op: Op, symbol: str) -> Rejected | None:
        """A refusal a test scripted for this request (`Fault.reject`), if any."""
        forced = self.faults.take(op, symbol, _REJECT_KINDS)
        if forced is None or forced.reason is None:
            return None
        return self._reason(forced.reason, code=forced.code, message=forced.message)

    def leverage(self, symbol: str) -> Decimal | None:
        return self._leverage.get(symbol)

    def margin_mode(self, symbol: str) -> MarginMode | None:
        return self.margin.mode(symbol) if symbol in self._markets else None

    def leverage_tiers(self, symbol: str) -> tuple[LeverageTier, ...]:
        return self.margin.tiers(symbol) if symbol in self._markets else ()

    # ----------------------------------------------------------------- commands

    def place_market(
        self,
        symbol: str,
        side: object,
        quantity: object,
        *,
        client_order_id: str | None = None,
        reduce_only: bool = False,
        position_idx: int = 0,
        origin: str = "api",
    ) -> Result:
        op = Op.MARKET_ORDER
        checked = self._check_order(
            op,
            symbol,
            side,
            quantity,
            client_order_id,
            position_idx,
            opening=not reduce_only,
            origin=origin,
        )
        if isinstance(checked, Rejected):
            return checked
        rules, order_side, qty = checked
        mark = self._marks[symbol]
        problem = self._check_exposure(rules, order_side, qty, mark, reduce_only=reduce_only)
        if problem is not None:
            return self._refuse(op, symbol, problem)
        order = self._new_order(
            symbol=symbol,
            side=order_side,
            type=OrderType.MARKET,
            quantity=qty,
            price=None,
            trigger=None,
            client_order_id=client_order_id,
            reduce_only=reduce_only,
            close_position=False,
            position_idx=position_idx,
            origin=origin,
        )
        fill = self._fillable(symbol, order, self._fill_ratio(symbol, origin))
        if fill > ZERO:
            self._fill(order, fill, self._slipped(mark, order_side), reason=origin)
        self._close_order(order, OrderStatus.FILLED if order.filled == qty else OrderStatus.EXPIRED)
        return Accepted(order=order.snapshot(self.venue))

    def place_limit(
        self,
        symbol: str,
        side: object,
        quantity: object,
        price: object,
        *,
        client_order_id: str | None = None,
        reduce_only: bool = True,
        position_idx: int = 0,
        origin: str = "api",
    ) -> Result:
        op = Op.LIMIT_ORDER
        checked = self._check_order(
            op,
            symbol,
            side,
            quantity,
            client_order_id,
            position_idx,
            opening=not reduce_only,
            origin=origin,
        )
        if isinstance(checked, Rejected):
            return checked
        rules, order_side, qty = checked
        limit = self._check_price(rules, price, "price")
        if isinstance(limit, Rejected):
            return self._refuse(op, symbol, limit)
        problem = self._check_exposure(rules, order_side, qty, limit, reduce_only=reduce_only)
        if problem is not None:
            return self._refuse(op, symbol, problem)
        order = self._new_order(
            symbol=symbol,
            side=order_side,
            type=OrderType.LIMIT,
            quantity=qty,
            price=limit,
            trigger=None,
            client_order_id=client_order_id,
            reduce_only=reduce_only,
            close_position=False,
            position_idx=position_idx,
            origin=origin,
        )
        mark = self._marks[symbol]
        crosses = limit >= mark if order_side is OrderSide.BUY else limit <= mark
        if crosses:  # marketable: takes at the mark, as a taker would
            fill = self._fillable(symbol, order, ONE)
            if fill > ZERO:
                self._fill(order, fill, mark, reason=origin)
            self._close_order(
                order, OrderStatus.FILLED if order.filled == qty else OrderStatus.EXPIRED
            )
        else:
            self._rest(order, limit)
        return Accepted(order=order.snapshot(self.venue))

    def place_stop(
        self,
        symbol: str,
        side: object,
        quantity: object,
        trigger_price: object,
        *,
        client_order_id: str | None = None,
        reduce_only: bool = True,
        close_position: bool = False,
        position_idx: int = 0,
        origin: str = "api",
    ) -> Result:
        """A stop-market order that fires when the mark crosses `trigger_price`."""
        op = Op.STOP_ORDER
        if close_position and not self.profile.close_position_stops:
            return self._refuse(
                op, symbol, self._reason(R.NOT_SUPPORTED, what="closePosition stops")
            )
        checked = self._check_order(
            op,
            symbol,
            side,
            quantity,
            client_order_id,
            position_idx,
            opening=not (reduce_only or close_position),
            origin=origin,
            whole_position=close_position,
        )
        if isinstance(checked, Rejected):
            return checked
        rules, order_side, qty = checked
        trigger = self._check_price(rules, trigger_price, "stopPrice")
        if isinstance(trigger, Rejected):
            return self._refuse(op, symbol, trigger)
        problem = self._stop_problem(symbol, order_side, trigger, reduce_only or close_position)
        if problem is None and close_position and self._has_close_position_stop(symbol, order_side):
            problem = self._reason(R.STOP_ALREADY_EXISTS)
        if problem is not None:
            return self._refuse(op, symbol, problem)
        order = self._new_order(
            symbol=symbol,
            side=order_side,
            type=OrderType.STOP_MARKET,
            quantity=ZERO if close_position else qty,
            price=None,
            trigger=trigger,
            client_order_id=client_order_id,
            reduce_only=reduce_only or close_position,
            close_position=close_position,
            position_idx=position_idx,
            origin=origin,
        )
        self._rest(order, trigger)
        return Accepted(order=order.snapshot(self.venue))

    def place_take_profit(
        self,
        symbol: str,
        side: object,
        quantity: object,
        trigger_price: object,
        *,
        client_order_id: str | None = None,
        reduce_only: bool = True,
        close_position: bool = False,
        position_idx: int = 0,
        origin: str = "api",
    ) -> Result:
        """A take-profit-market order: fires when the mark moves to `trigger_price` the
        position's way (a sell when it rises to it, a buy when it falls to it)."""
        return self._place_conditional(
            OrderType.TAKE_PROFIT,
            symbol,
            side,
            quantity,
            trigger_price,
            client_order_id=client_order_id,
            reduce_only=reduce_only,
            close_position=close_position,
            position_idx=position_idx,
            origin=origin,
        )

    def place_trailing_stop(
        self,
        symbol: str,
        side: object,
        quantity: object,
        *,
        rate: Decimal | None = None,
        distance: Decimal | None = None,
        activation: object | None = None,
        client_order_id: str | None = None,
        position_idx: int = 0,
        origin: str = "api",
    ) -> Result:
        """A reduce-only trailing-stop-market order: from `activation` (at once if None) it
        follows the best mark and fires once the mark comes back by `rate` (a fraction:
        Binance's callbackRate / 100) or by `distance` (Bybit's trailingStop)."""
        if (rate is None) == (distance is None) or (rate or distance or ZERO) <= ZERO:
            return self._refuse(
                Op.STOP_ORDER,
                symbol,
                self._reason(R.OTHER, what="a trailing stop needs one callback rate or distance"),
            )
        return self._place_conditional(
            OrderType.TRAILING_STOP,
            symbol,
            side,
            quantity,
            activation,
            client_order_id=client_order_id,
            reduce_only=True,
            close_position=False,
            position_idx=position_idx,
            origin=origin,
            trail=(rate, distance),
        )

    def _place_conditional(
        self,
        kind: OrderType,
        symbol: str,
        side: object,
        quantity: object,
        trigger_price: object | None,
        *,
        client_order_id: str | None,
        reduce_only: bool,
        close_position: bool,
        position_idx: int,
        origin: str,
        trail: tuple[Decimal | None, Decimal | None] | None = None,
    ) -> Result:
        op = Op.STOP_ORDER
        checked = self._check_order(
            op,
            symbol,
            side,
            quantity,
            client_order_id,
            position_idx,
            opening=not (reduce_only or close_position),
            origin=origin,
            whole_position=close_position,
        )
        if isinstance(checked, Rejected):
            return checked
        rules, order_side, qty = checked
        trigger: Decimal | None = None
        if trigger_price is not None or trail is None:
            level = self._check_price(rules, trigger_price, "triggerPrice")
            if isinstance(level, Rejected):
                return self._refuse(op, symbol, level)
            trigger = level
        problem = self._profit_problem(symbol, order_side, trigger, reduce_only or close_position)
        if problem is not None:
            return self._refuse(op, symbol, problem)
        order = self._new_order(
            symbol=symbol,
            side=order_side,
            type=kind,
            quantity=ZERO if close_position else qty,
            price=None,
            trigger=trigger if trail is None else None,
            client_order_id=client_order_id,
            reduce_only=reduce_only or close_position,
            close_position=close_position,
            position_idx=position_idx,
            origin=origin,
        )
        if trail is not None:
            order.trail = _Trail(trigger, *trail)
        self._rest(order, trigger if trail is None and trigger is not None else ZERO)
        if trail is not None:
            self._trail(symbol, self._index[symbol], self._marks[symbol])
        return Accepted(order=order.snapshot(self.venue))

    def _profit_problem(
        self, symbol: str, side: OrderSide, trigger: Decimal | None, reduce_only: bool
    ) -> Rejected | None:
        """A take-profit (or a trailing stop's activation) on the wrong side of the mark
        would fire at once: refused as the venue refuses a stop past the mark."""
        mark = self._marks[symbol]
        if trigger is not None and (
            (trigger <= mark) if side is OrderSide.SELL else (trigger >= mark)
        ):
            opposite = OrderSide.BUY if side is OrderSide.SELL else OrderSide.SELL
            return self._would_trigger(opposite, trigger, mark)
        position = self._positions.get(symbol)
        if reduce_only and position is not None and position.side.entry is side:
            return self._reason(R.REDUCE_ONLY_WOULD_INCREASE)
        stops = (
            self._stops_open[symbol]
            if self.profile.conditional_cap_per_symbol
            else (self._stops_total)
        )
        cap = self.profile.conditional_cap
        if cap is not None and stops >= cap:
            return self._reason(R.TOO_MANY_CONDITIONAL_ORDERS)
        return None

    def set_position_stop(
        self, symbol: str, trigger_price: object | None, *, origin: str = "api"
    ) -> Result:
        """Attach, move in place, or (None) remove the position's own stop (Bybit trading-stop)."""
        op = Op.POSITION_STOP
        problem = self._entry_problem(op, symbol, origin, opening=False)
        if problem is None and not self.profile.capabilities.position_stop:
            problem = self._reason(R.NOT_SUPPORTED, what="position-attached stops")
        position = self._positions.get(symbol) if problem is None else None
        if problem is None and position is None:
            problem = self._reason(R.NO_POSITION, symbol=symbol)
        if problem is not None:
            return self._refuse(op, symbol, problem)
        assert position is not None
        existing = self._position_stops.get(symbol)
        if trigger_price is None:
            if existing is None:
                return self._refuse(op, symbol, self._reason(R.NOT_MODIFIED))
            self._cancel_by(existing, origin)
            return Accepted(order=existing.snapshot(self.venue))
        trigger = self._check_price(self._markets[symbol], trigger_price, "stopLoss")
        if isinstance(trigger, Rejected):
            return self._refuse(op, symbol, trigger)
        problem = self._position_stop_problem(position, trigger)
        if problem is None and existing is not None and existing.trigger_price == trigger:
            problem = self._reason(R.NOT_MODIFIED)
        if problem is not None:
            return self._refuse(op, symbol, problem)
        if existing is not None:
            self._move(existing, trigger=trigger, origin=origin)
            return Accepted(order=existing.snapshot(self.venue))
        order = self._new_order(
            symbol=symbol,
            side=position.side.exit,
            type=OrderType.POSITION_STOP,
            quantity=ZERO,
            price=None,
            trigger=trigger,
            client_order_id=None,
            reduce_only=True,
            close_position=True,
            position_idx=0,
            origin=origin,
        )
        self._position_stops[symbol] = order
        self._rest(order, trigger)
        return Accepted(order=order.snapshot(self.venue))

    def amend(
        self,
        symbol: str,
        order_id: str,
        *,
        trigger_price: object | None = None,
        price: object | None = None,
        origin: str = "api",
    ) -> Result:
        """Move a resting order in place (a stop's trigger, a limit's price)."""
        op = Op.AMEND
        problem = self._entry_problem(op, symbol, origin, opening=False)
        order = self._open_order(symbol, order_id) if problem is None else None
        if problem is None and order is None:
            problem = self._reason(R.ORDER_NOT_FOUND)
        if problem is not None:
            return self._refuse(op, symbol, problem)
        assert order is not None
        if order.type is OrderType.POSITION_STOP:
            return self.set_position_stop(symbol, trigger_price, origin=origin)
        if order.type is OrderType.STOP_MARKET:
            return self._amend_stop(order, trigger_price, origin)
        if order.type is not OrderType.LIMIT:
            return self._refuse(op, symbol, self._reason(R.NOT_SUPPORTED, what="amend"))
        return self._amend_limit(order, price, origin)

    def cancel(self, symbol: str, order_id: str, *, origin: str = "api") -> Result:
        op = Op.CANCEL
        problem = self._entry_problem(op, symbol, origin, opening=False)
        order = self._open_order(symbol, order_id) if problem is None else None
        if problem is None and order is None:
            problem = self._reason(R.ORDER_NOT_FOUND)
        if problem is not None:
            return self._refuse(op, symbol, problem)
        assert order is not None
        self._cancel_by(order, origin)
        return Accepted(order=order.snapshot(self.venue))

    def _open_order(self, symbol: str, order_id: object) -> _Order | None:
        return self._open[symbol].get(order_id) if isinstance(order_id, str) else None

    # ----------------------------------------------------------------- outside actions

    def manual_close(self, symbol: str) -> Result:
        """Someone closes the position by hand on the venue's website."""
        position = self._positions.get(symbol)
        if position is None:
            return self._reason(R.NO_POSITION, symbol=symbol)
        return self.place_market(
            symbol, position.side.exit, position.size, reduce_only=True, origin="manual"
        )

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

    # ----------------------------------------------------------------- checks

    def _check_order(
        self,
        op: Op,
        symbol: str,
        side: object,
        quantity: object,
        client_order_id: str | None,
        position_idx: int,
        *,
        opening: bool,
        origin: str,
        whole_position: bool = False,
    ) -> tuple[MarketRules, OrderSide, Decimal] | Rejected:
        problem = self._entry_problem(op, symbol, origin, opening=opening)
        if problem is not None:
            return self._refuse(op, symbol, problem)
        rules = self._markets[symbol]
        order_side = self._side(side)
        result: Rejected | Decimal
        if order_side is None:
            result = self._reason(
                R.OTHER, code="-1117" if self._binance else "10001", what=f"Invalid side {side!r}."
            )
        elif whole_position:  # a closePosition stop: the venue takes the position's size
            result = ZERO
        else:
            result = self._check_quantity(rules, quantity)
        if not isinstance(result, Rejected):
            result = self._check_identity(client_order_id, position_idx) or result
        if isinstance(result, Rejected):
            return self._refuse(op, symbol, result)
        assert order_side is not None
        return rules, order_side, result

    def _entry_problem(self, op: Op, symbol: str, origin: str, *, opening: bool) -> Rejected | None:
        if origin == "api":
            forced = self.faults.take(op, symbol, _REJECT_KINDS)
            if forced is not None and forced.reason is not None:
                return self._reason(
                    forced.reason,
                    code=forced.code,
                    message=forced.message,
                    symbol=symbol,
                    trigger="?",
                    mark="?",
                )
        if not isinstance(symbol, str) or symbol not in self._markets:
            return self._reason(R.UNKNOWN_SYMBOL, symbol=symbol)
        if symbol in self._restricted:
            return self._reason(R.REGION_RESTRICTED, symbol=symbol)
        if opening and not self._markets[symbol].active:
            return self._reason(R.SYMBOL_UNAVAILABLE, symbol=symbol)
        if symbol not in self._marks:
            return self._reason(R.VENUE_UNAVAILABLE, symbol=symbol)
        return None

    @staticmethod
    def _side(side: object) -> OrderSide | None:
        if isinstance(side, OrderSide):
            return side
        try:
            return OrderSide(str(side).lower())
        except ValueError:
            return None

    def _check_quantity(self, rules: MarketRules, raw: object) -> Decimal | Rejected:
        qty = _finite(raw)
        if qty is None:
            if self._binance:
                return self._reason(
                    R.INVALID_QUANTITY, code="-1100", message=_ILLEGAL.format(field="quantity")
                )
            return self._reason(R.INVALID_QUANTITY)
        if qty <= ZERO:
            return self._reason(R.INVALID_QUANTITY)
        if qty > _LIMIT:
            return self._binance_or_bybit(
                R.INVALID_QUANTITY, "-4005", "Quantity greater than max quantity."
            )
        if not _multiple(qty, rules.step_size):
            if _exponent(qty) < _exponent(rules.step_size):
                return self._binance_or_bybit(R.INVALID_QUANTITY, "-1111", _PRECISION)
            return self._binance_or_bybit(
                R.INVALID_QUANTITY, "-4023", "Quantity not increased by step size."
            )
        if qty < rules.min_quantity:
            if self._binance:
                return self._reason(
                    R.INVALID_QUANTITY, code="-4004", message="Quantity less than min qty."
                )
            return self._reason(
                R.INVALID_QUANTITY, message="The number of contracts exceeds minimum limit allowed"
            )
        return qty

    def _check_price(self, rules: MarketRules, raw: object, field: str) -> Decimal | Rejected:
        price = _finite(raw)
        stop = field != "price"
        if price is None:
            if self._binance:
                return self._reason(
                    R.INVALID_PRICE, code="-1100", message=_ILLEGAL.format(field=field)
                )
            return self._reason(R.INVALID_PRICE, message=f"params error: {field} invalid")
        if price <= ZERO:
            if self._binance:
                return self._reason(
                    R.INVALID_PRICE,
                    code="-4006" if stop else "-4001",
                    message="Stop price less than zero." if stop else "Price less than 0.",
                )
            return self._reason(R.INVALID_PRICE, message=f"params error: {field} invalid")
        if price > _LIMIT:
            if self._binance:
                return self._reason(
                    R.INVALID_PRICE,
                    code="-4007" if stop else "-4002",
                    message="Stop price greater than max price."
                    if stop
                    else "Price greater than max price.",
                )
            return self._reason(R.INVALID_PRICE, message=f"params error: {field} invalid")
        if not _multiple(price, rules.tick_size):
            if self._binance and _exponent(price) < _exponent(rules.tick_size):
                return self._reason(R.INVALID_PRICE, code="-1111", message=_PRECISION)
            return self._reason(R.INVALID_PRICE, field=field, value=price, tick=rules.tick_size)
        return price

    def _binance_or_bybit(self, reason: RejectReason, code: str, message: str) -> Rejected:
        """Binance's specific code and text; Bybit answers these with its generic default."""
        if self._binance:
            return self._reason(reason, code=code, message=message)
        return self._reason(reason)

    def _check_identity(self, client_order_id: str | None, position_idx: int) -> Rejected | None:
        if client_order_id is not None:
            if not isinstance(client_order_id, str) or not _CLIENT_ID.match(client_order_id):
                if self._binance:
                    return self._reason(R.OTHER, code="-4015", what="Client order id is not valid.")
                return self._reason(R.OTHER, code="10001", what="params error: orderLinkId invalid")
            used = (
                self._open_client_ids
                if self.profile.client_ids_free_once_closed
                else self._by_client
            )
            if client_order_id in used:
                return self._reason(R.DUPLICATE_CLIENT_ID)
        if position_idx != 0 and not self._binance:
            return self._reason(R.OTHER, code="10001", what="position idx not match position mode")
        return None

    def _check_exposure(
        self,
        rules: MarketRules,
        side: OrderSide,
        qty: Decimal,
        price: Decimal,
        *,
        reduce_only: bool,
    ) -> Rejected | None:
        position = self._positions.get(rules.symbol)
        reducing = position is not None and position.side.exit is side
        if reduce_only:
            if position is None and not self._binance:
                return self._reason(
                    R.REDUCE_ONLY_WOULD_INCREASE,
                    message="current position is zero, cannot fix reduce-only order qty",
                )
            return None if reducing else self._reason(R.REDUCE_ONLY_WOULD_INCREASE)
        if qty * price < rules.min_notional:
            return self._reason(R.BELOW_MIN_NOTIONAL, min_notional=rules.min_notional)
        opening = qty - (position.size if reducing and position is not None else ZERO)
        needed = max(ZERO, opening) * price / self._leverage[rules.symbol]
        fee = qty * price * self.profile.taker_fee
        if needed + fee > self.balance().free:
            return self._reason(R.INSUFFICIENT_BALANCE)
        return None

    def _stop_problem(
        self, symbol: str, side: OrderSide, trigger: Decimal, reduce_only: bool
    ) -> Rejected | None:
        mark = self._marks[symbol]
        if (trigger >= mark) if side is OrderSide.SELL else (trigger <= mark):
            return self._would_trigger(side, trigger, mark)
        position = self._positions.get(symbol)
        if reduce_only and position is not None and position.side.entry is side:
            return self._reason(R.REDUCE_ONLY_WOULD_INCREASE)
        stops = (
            self._stops_open[symbol]
            if self.profile.conditional_cap_per_symbol
            else (self._stops_total)
        )
        cap = self.profile.conditional_cap
        if cap is not None and stops >= cap:
            return self._reason(R.TOO_MANY_CONDITIONAL_ORDERS)
        return None

    def _would_trigger(self, side: OrderSide, trigger: Decimal, mark: Decimal) -> Rejected:
        if self._binance:
            return self._reason(R.WOULD_TRIGGER_IMMEDIATELY)
        if side is OrderSide.BUY:
            return self._reason(
                R.WOULD_TRIGGER_IMMEDIATELY,
                code="110092",
                message=f"expect Rising, but trigger_price[{trigger}] <= current[{mark}]"
                "??MarkPrice",
            )
        return self._reason(R.WOULD_TRIGGER_IMMEDIATELY, trigger=trigger, mark=mark)

    def _position_stop_problem(self, position: _Position, trigger: Decimal) -> Rejected | None:
        mark = self._marks[position.symbol]
        if position.side is Side.LONG and trigger >= mark:
            text = f"StopLoss:{trigger} set for Buy position should lower than base_price:{mark}"
        elif position.side is Side.SHORT and trigger <= mark:
            text = f"StopLoss:{trigger} set for Sell position should higher than base_price:{mark}"
        else:
            return None
        return self._reason(R.WOULD_TRIGGER_IMMEDIATELY, code="10001", message=text + "??MarkPrice")

    def _has_close_position_stop(self, symbol: str, side: OrderSide) -> bool:
        return any(
            order.close_position and order.side is side and order.type is OrderType.STOP_MARKET
            for order in self._open[symbol].values()
        )

    @property
    def _binance(self) -> bool:
        return self.venue is Venue.BINANCE

    def _reason(
        self,
        reason: RejectReason,
        *,
        code: str | None = None,
        message: str | None = None,
        **detail: object,
    ) -> Rejected:
        return self.profile.refusal(reason, code=code, message=message, **detail)

    def _refuse(self, op: Op, symbol: object, rejected: Rejected) -> Rejected:
        plain = symbol if isinstance(symbol, str) else None
        self.books.refusals.append(
            Refusal(at=self.now(), op=op.value, symbol=plain, rejected=rejected)
        )
        return rejected

    # ----------------------------------------------------------------- amend

    def _amend_stop(self, order: _Order, raw_trigger: object | None, origin: str) -> Result:
        op = Op.AMEND
        if not self.profile.capabilities.amend_stop:
            return self._refuse(
                op,
                order.symbol,
                self._reason(
                    R.NOT_SUPPORTED,
                    what="amending a conditional order; "
                    "create the new stop, then cancel the old one",
                ),
            )
        trigger = self._check_price(self._markets[order.symbol], raw_trigger, "triggerPrice")
        if isinstance(trigger, Rejected):
            return self._refuse(op, order.symbol, trigger)
        mark = self._marks[order.symbol]
        if (trigger >= mark) if order.side is OrderSide.SELL else (trigger <= mark):
            return self._refuse(op, order.symbol, self._would_trigger(order.side, trigger, mark))
        if trigger == order.trigger_price:
            return self._refuse(
                op,
                order.symbol,
                self._reason(
                    R.NOT_MODIFIED,
                    code="10001",
                    message="The order remains unchanged as the parameters entered "
                    "match the existing ones.",
                ),
            )
        self._move(order, trigger=trigger, origin=origin)
        return Accepted(order=order.snapshot(self.venue))

    def _amend_limit(self, order: _Order, raw_price: object | None, origin: str) -> Result:
        op = Op.AMEND
        if not self.profile.capabilities.amend_limit:
            return self._refuse(op, order.symbol, self._reason(R.NOT_SUPPORTED, what="amend"))
        price = self._check_price(self._markets[order.symbol], raw_price, "price")
        if isinstance(price, Rejected):
            return self._refuse(op, order.symbol, price)
        self._move(order, price=price, origin=origin)
        mark = self._marks[order.symbol]
        if (price >= mark) if order.side is OrderSide.BUY else (price <= mark):
            self._fill_limits(order.symbol, self._index[order.symbol], mark)
        return Accepted(order=order.snapshot(self.venue))

    def _move(
        self,
        order: _Order,
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

    # ----------------------------------------------------------------- order life

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
    ) -> _Order:
        now = self.now()
        order = _Order(
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

    def _rest(self, order: _Order, level: Decimal) -> None:
        order.key = (level, next(self._sequence), order.order_id)
        self._index[order.symbol].lane(order).add(order.key)
        if order.type in _CAPPED:
            self._stops_open[order.symbol] += 1
            self._stops_total += 1
        self._touch(order.symbol)

    def _detach(self, order: _Order) -> None:
        """Take an order off the book and out of the open set (it stops being open)."""
        self._open[order.symbol].pop(order.order_id, None)
        cid = order.client_order_id
        if cid is not None and self._open_client_ids.get(cid) == order.order_id:
            del self._open_client_ids[cid]
        if order.key is not None:
            self._index[order.symbol].lane(order).discard(order.key)
            order.key = None
            if order.type in _CAPPED:
                self._stops_open[order.symbol] -= 1
                self._stops_total -= 1
        stop_of_position = self._position_stops.get(order.symbol) is order
        if order.type is OrderType.POSITION_STOP and stop_of_position:
            del self._position_stops[order.symbol]

    def _close_order(self, order: _Order, status: OrderStatus) -> None:
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

    def _cancel(self, order: _Order) -> None:
        self._close_order(order, OrderStatus.CANCELED)

    def _cancel_by(self, order: _Order, origin: str) -> None:
        self._acting = origin
        try:
            self._cancel(order)
        finally:
            self._acting = "venue"

    # ----------------------------------------------------------------- ticks

    def _fire_stops(self, symbol: str, index: _SymbolIndex, mark: Decimal) -> None:
        fired: list[str] = []
        sells, buys = index.sell_stops, index.buy_stops
        while sells and sells[-1][0] >= mark:
            fired.append(sells[-1][2])
            self._detach(self._orders[sells[-1][2]])
        while buys and buys[0][0] <= mark:
            fired.append(buys[0][2])
            self._detach(self._orders[buys[0][2]])
        for order_id in fired:
            order = self._orders[order_id]
            order.status = OrderStatus.TRIGGERED
            self._execute_stop(order, mark)
        self._touch(symbol)

    def _fire_take_profits(self, symbol: str, index: _SymbolIndex, mark: Decimal) -> None:
        fired: list[str] = []
        ups, downs = index.sell_profits, index.buy_profits
        while ups and ups[0][0] <= mark:
            fired.append(ups[0][2])
            self._detach(self._orders[ups[0][2]])
        while downs and downs[-1][0] >= mark:
            fired.append(downs[-1][2])
            self._detach(self._orders[downs[-1][2]])
        for order_id in fired:
            order = self._orders[order_id]
            order.status = OrderStatus.TRIGGERED
            self._execute_stop(order, mark)
        self._touch(symbol)

    def _trail(self, symbol: str, index: _SymbolIndex, mark: Decimal) -> None:
        """Move every trailing stop of `symbol` with the mark; fire those it came back to."""
        fired: list[_Order] = []
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

    def _execute_stop(self, order: _Order, price: Decimal) -> None:
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

    def _fill_limits(self, symbol: str, index: _SymbolIndex, mark: Decimal) -> None:
        crossed: list[str] = []
        bids, asks = index.buy_limits, index.sell_limits
        while bids and bids[-1][0] >= mark:
            crossed.append(bids[-1][2])
            self._detach(self._orders[bids[-1][2]])
        while asks and asks[0][0] <= mark:
            crossed.append(asks[0][2])
            self._detach(self._orders[asks[0][2]])
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

    def _beyond_liquidation(self, position: _Position, mark: Decimal) -> bool:
        if position.qty > 0:
            return mark <= position.liquidation
        return mark >= position.liquidation

    # ----------------------------------------------------------------- fills and positions

    def _fill_ratio(self, symbol: str, origin: str) -> Decimal:
        if origin == "api":
            fault = self.faults.take(Op.MARKET_ORDER, symbol, _PARTIAL_KINDS)
            if fault is not None and fault.fill_ratio is not None:
                return fault.fill_ratio
        return self.partial_fill_ratio if self.partial_fill_ratio is not None else ONE

    def _fillable(self, symbol: str, order: _Order, ratio: Decimal) -> Decimal:
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

    def _fill(self, order: _Order, quantity: Decimal, price: Decimal, *, reason: str) -> None:
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
        position = _Position(symbol, signed, price, self._leverage[symbol])
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

    def _set_liquidation(self, position: _Position) -> None:
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

    def _unrealized(self, position: _Position) -> Decimal:
        mark = self._marks.get(position.symbol, position.entry)
        return (mark - position.entry) * position.qty

    def _report(self, position: _Position) -> VenuePosition:
        stop = self._position_stops.get(position.symbol)
        return VenuePosition(
            venue=self.venue,
            symbol=position.symbol,
            side=position.side,
            quantity=position.size,
            entry_price=position.entry,
            mark_price=self._marks.get(position.symbol),
            position_idx=0,
            stop_price=None if stop is None else stop.trigger_price,
            liquidation_price=position.liquidation,
            unrealized_pnl=self._unrealized(position),
        )
