"""The simulated venue's resting orders and positions, as the engine keeps them.

Mutable and slotted (the tick path touches them); `EngineOrder.snapshot()` gives the frozen domain
value. Resting stops and limits are kept per symbol in lists sorted by price (`SymbolIndex`),
so a tick compares the mark with the nearest trigger on each side.
"""

from datetime import datetime, timedelta
from decimal import Decimal

from sortedcontainers import SortedList

from tradecore.adapters.paper.books import PositionRecord
from tradecore.domain.model import OrderSide, Side, Venue
from tradecore.domain.numbers import ZERO
from tradecore.domain.orders import Order, OrderStatus, OrderType

ONE = Decimal(1)
# conditional orders: each counts against the venue's conditional-order cap
CAPPED = frozenset({OrderType.STOP_MARKET, OrderType.TAKE_PROFIT, OrderType.TRAILING_STOP})
# Both venues settle USDT perpetual funding every 8 hours at 00:00, 08:00 and 16:00 UTC for
# most contracts (Binance "Introduction to Binance Futures Funding Rates"; Bybit "Introduction
# to Funding Rate"). With no premium the rate is the interest component, 0.01 % per 8 hours on
# Binance: the default here (`paper.funding_rate`, docs/configuration.md).
FUNDING_INTERVAL = timedelta(hours=8)
DEFAULT_FUNDING_RATE = Decimal("0.0001")


class EngineOrder:
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
        "stop_loss",
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
        self.trail: Trail | None = None  # a trailing stop's rule and best mark
        self.stop_loss: Decimal | None = None  # the stop-loss an entry carries

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
            stop_loss=self.stop_loss,
        )


class EnginePosition:
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


class Trail:
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


class SymbolIndex:
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

    def lane(self, order: EngineOrder) -> SortedList:
        if order.type is OrderType.LIMIT:
            return self.buy_limits if order.side is OrderSide.BUY else self.sell_limits
        if order.type is OrderType.TAKE_PROFIT:
            return self.buy_profits if order.side is OrderSide.BUY else self.sell_profits
        if order.type is OrderType.TRAILING_STOP:
            return self.trailing
        return self.buy_stops if order.side is OrderSide.BUY else self.sell_stops


def next_funding_time(now: datetime) -> datetime:
    """The first 8-hour funding mark (00:00, 08:00, 16:00 UTC) after `now`."""
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    passed = (now - midnight) // FUNDING_INTERVAL
    return midnight + (passed + 1) * FUNDING_INTERVAL
