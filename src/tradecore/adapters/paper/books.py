"""The books that prove the promise: every order placed, and for every position the number
of stops it had at each moment and every interval during which it had none.

The engine writes them as it changes state; tests and post-run reports read them.
"""

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal

import attrs

from tradecore.domain.model import OrderSide, Side
from tradecore.domain.orders import OrderStatus, OrderType
from tradecore.ports.exchange import Rejected


@attrs.frozen(kw_only=True)
class Interval:
    """[start, end) during which a position had no stop; `end` None while still open."""

    start: datetime
    end: datetime | None

    def seconds(self, now: datetime) -> float:
        return ((self.end or now) - self.start).total_seconds()


@attrs.frozen(kw_only=True)
class OrderRecord:
    """An order as it was placed (its later life is in the engine's order table)."""

    at: datetime
    order_id: str
    client_order_id: str | None
    symbol: str
    side: OrderSide
    type: OrderType
    quantity: Decimal
    price: Decimal | None
    trigger_price: Decimal | None
    reduce_only: bool
    close_position: bool
    origin: str  # "api", "manual" (someone on the venue's website), "liquidation"


@attrs.frozen(kw_only=True)
class Amendment:
    at: datetime
    order_id: str
    symbol: str
    old_trigger: Decimal | None
    new_trigger: Decimal | None
    old_price: Decimal | None
    new_price: Decimal | None
    origin: str = "api"  # "api" or "manual"


@attrs.frozen(kw_only=True)
class OrderClosed:
    """An order left the book without (fully) filling: cancelled, expired or rejected."""

    at: datetime
    order_id: str
    client_order_id: str | None
    symbol: str
    status: OrderStatus
    origin: str  # "api" or "manual" (a cancel request), "venue" (the venue did it)


@attrs.frozen(kw_only=True)
class Fill:
    """A (partial) fill of an order at one moment."""

    at: datetime
    order_id: str
    client_order_id: str | None
    symbol: str
    side: OrderSide
    quantity: Decimal
    price: Decimal
    reason: str  # "api", "manual", "stop", "liquidation"
    fee: Decimal = Decimal(0)  # paid, in USDT (the profile's taker rate)
    trade_id: str | None = None


@attrs.frozen(kw_only=True)
class Funding:
    """A funding settlement on the position held in `symbol` (received +, paid -)."""

    at: datetime
    symbol: str
    amount: Decimal
    rate: Decimal
    payment_id: str


@attrs.frozen(kw_only=True)
class Refusal:
    at: datetime
    op: str
    symbol: str | None
    rejected: Rejected
    mark: Decimal | None = None  # the symbol's mark when it was refused (None: none yet)


@attrs.define(kw_only=True)
class PositionRecord:
    """The protection history of one position, from open to close."""

    position_id: str
    symbol: str
    side: Side
    opened_at: datetime
    closed_at: datetime | None = None
    close_reason: str | None = None
    stop_counts: list[tuple[datetime, int]] = attrs.field(factory=list)
    gaps: list[Interval] = attrs.field(factory=list)
    _open_gap: datetime | None = None
    _last_count: int = -1

    def observe(self, now: datetime, count: int) -> None:
        """Record that the position has `count` stops on the venue from `now` on."""
        if count == self._last_count:
            return
        self._last_count = count
        self.stop_counts.append((now, count))
        if count == 0 and self._open_gap is None:
            self._open_gap = now
        elif count > 0 and self._open_gap is not None:
            self.gaps.append(Interval(start=self._open_gap, end=now))
            self._open_gap = None

    def close(self, now: datetime, reason: str) -> None:
        if self._open_gap is not None:
            self.gaps.append(Interval(start=self._open_gap, end=now))
            self._open_gap = None
        self.closed_at = now
        self.close_reason = reason

    def unprotected(self) -> tuple[Interval, ...]:
        """Every interval without a stop, the current one (end None) included."""
        current = () if self._open_gap is None else (Interval(start=self._open_gap, end=None),)
        return (*self.gaps, *current)

    def unprotected_seconds(self, now: datetime) -> float:
        return sum(gap.seconds(now) for gap in self.unprotected())

    @property
    def max_stops(self) -> int:
        return max((count for _, count in self.stop_counts), default=0)

    def stops_at(self, moment: datetime) -> int:
        """How many stops the position had at `moment` (the last change at or before it)."""
        result = 0
        for at, count in self.stop_counts:
            if at > moment:
                break
            result = count
        return result


class Books:
    """Everything the venue did, kept for inspection."""

    def __init__(self) -> None:
        self.orders: list[OrderRecord] = []
        self.amendments: list[Amendment] = []
        self.closes: list[OrderClosed] = []
        self.fills: list[Fill] = []
        self.log: list[OrderRecord | Amendment | OrderClosed | Fill] = []  # all, in order
        self.refusals: list[Refusal] = []
        self.positions: list[PositionRecord] = []
        self.funding: list[Funding] = []

    def add_orders(self, record: OrderRecord) -> None:
        self.orders.append(record)
        self.log.append(record)

    def add_amendments(self, record: Amendment) -> None:
        self.amendments.append(record)
        self.log.append(record)

    def add_closes(self, record: OrderClosed) -> None:
        self.closes.append(record)
        self.log.append(record)

    def add_fills(self, record: Fill) -> None:
        self.fills.append(record)
        self.log.append(record)

    def orders_for(self, symbol: str) -> tuple[OrderRecord, ...]:
        return tuple(order for order in self.orders if order.symbol == symbol)

    def history(self, symbol: str) -> list[OrderRecord | Amendment | OrderClosed | Fill]:
        """Every placement, amendment, cancel (or expiry) and fill on `symbol`, in order."""
        return [entry for entry in self.log if entry.symbol == symbol]

    def positions_for(self, symbol: str) -> tuple[PositionRecord, ...]:
        return tuple(record for record in self.positions if record.symbol == symbol)

    def unprotected_intervals(self, symbol: str | None = None) -> tuple[Interval, ...]:
        records: Sequence[PositionRecord] = (
            self.positions if symbol is None else self.positions_for(symbol)
        )
        return tuple(gap for record in records for gap in record.unprotected())

    def unprotected_seconds(self, now: datetime, symbol: str | None = None) -> float:
        return sum(gap.seconds(now) for gap in self.unprotected_intervals(symbol))

    def longest_unprotected(self, now: datetime, symbol: str | None = None) -> float:
        """The longest single interval any position (of `symbol`) spent without a stop, in
        seconds: the figure promise 1 bounds by one round trip."""
        return max((gap.seconds(now) for gap in self.unprotected_intervals(symbol)), default=0.0)

    def max_stops(self, symbol: str | None = None) -> int:
        """The most stops any position (of `symbol`) ever had at one moment."""
        records = self.positions if symbol is None else self.positions_for(symbol)
        return max((record.max_stops for record in records), default=0)
