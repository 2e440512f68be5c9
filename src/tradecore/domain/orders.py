"""Orders and positions as the venue reports them, and deterministic client order ids."""

import re
from datetime import datetime
from decimal import Decimal
from enum import StrEnum

import attrs

from tradecore.domain.errors import DomainError
from tradecore.domain.model import OrderSide, Side, Venue
from tradecore.domain.numbers import ZERO


class OrderType(StrEnum):
    """What an order is, as the venue reports it (docs/venues.md, "Order kinds").

    Only STOP_MARKET and POSITION_STOP are stop-losses: the only kinds counted as a
    position's protection. Every other conditional kind is a person's exit the bot leaves
    alone on a live position.
    """

    MARKET = "market"
    LIMIT = "limit"
    STOP_MARKET = "stop_market"  # a stop-loss: triggers when the price moves against it
    POSITION_STOP = "position_stop"  # Bybit trading-stop, attached to the position
    # A conditional exit that triggers when the price moves the position's way: a person's
    # take-profit. Never a stop-loss, so never counted as a position's protection.
    TAKE_PROFIT = "take_profit"
    # A venue-side trailing stop (Binance TRAILING_STOP_MARKET, Bybit TrailingStop). Its
    # level follows the mark and, before activation, it may have none: not counted as
    # protection; the bot keeps its own stop-loss beside it (docs/venues.md).
    TRAILING_STOP = "trailing_stop"
    # A conditional order of a kind tradecore does not know as a stop-loss (Bybit
    # MmRateClose, an orderType or stopOrderType a venue adds later): never protection.
    CONDITIONAL = "conditional"


_STOP_LOSSES = frozenset({OrderType.STOP_MARKET, OrderType.POSITION_STOP})
_CONDITIONALS = _STOP_LOSSES | {
    OrderType.TAKE_PROFIT,
    OrderType.TRAILING_STOP,
    OrderType.CONDITIONAL,
}


class OrderStatus(StrEnum):
    OPEN = "open"
    PARTIALLY_FILLED = "partially_filled"
    FILLED = "filled"
    CANCELED = "canceled"
    REJECTED = "rejected"
    EXPIRED = "expired"
    TRIGGERED = "triggered"

    @property
    def is_open(self) -> bool:
        return self in (OrderStatus.OPEN, OrderStatus.PARTIALLY_FILLED)


class OrderRole(StrEnum):
    """What an order is for, as tradecore placed it (`foreign` when someone else did)."""

    ENTRY = "entry"
    STOP = "stop"
    EXIT = "exit"
    FOREIGN = "foreign"


@attrs.frozen(kw_only=True)
class Order:
    """An order as the venue reports it. Quantities and prices are exact Decimals."""

    venue: Venue
    symbol: str
    order_id: str
    client_order_id: str | None
    side: OrderSide
    type: OrderType
    quantity: Decimal
    status: OrderStatus
    filled: Decimal = ZERO
    price: Decimal | None = None
    trigger_price: Decimal | None = None
    average_price: Decimal | None = None
    reduce_only: bool = False
    close_position: bool = False
    position_idx: int = 0
    created_at: datetime | None = None
    updated_at: datetime | None = None
    # the stop-loss the order carries for the position it opens (`Capabilities.entry_stop`:
    # Bybit `/v5/order/create` `stopLoss`), as the venue lists it with the order; None when
    # it carries none. The level the bot set on the entry, readable after a restart.
    stop_loss: Decimal | None = None

    @property
    def is_stop(self) -> bool:
        """A stop-loss: the only kind that counts as a position's protection."""
        return self.type in _STOP_LOSSES

    @property
    def only_closes(self) -> bool:
        """Can only shrink a position: reduce-only, close-position, or attached to the
        position (Bybit's trading-stop). A plain order could open one the other way."""
        return self.type is OrderType.POSITION_STOP or self.reduce_only or self.close_position

    @property
    def is_stop_loss(self) -> bool:
        """A stop that counts as a position's stop-loss — the one definition the guard, the
        keeper (adopting a person's tighter stop, checking its own stands) and the retiring
        of a second stop share: a stop-loss kind (`is_stop`) that only closes. A person's
        plain stop is theirs: never counted, never adopted, never retired (review finding 4).
        """
        return self.is_stop and self.only_closes

    @property
    def is_conditional(self) -> bool:
        """Rests until a trigger: a stop-loss, take-profit, trailing stop or other kind."""
        return self.type in _CONDITIONALS

    @property
    def is_conditional_exit(self) -> bool:
        """A conditional exit that is not a stop-loss (take-profit, trailing stop, other):
        the kinds the bot never places and never counts as protection."""
        return self.is_conditional and not self.is_stop

    @property
    def is_open(self) -> bool:
        return self.status.is_open

    @property
    def remaining(self) -> Decimal:
        return self.quantity - self.filled


@attrs.frozen(kw_only=True)
class VenuePosition:
    """An open position as the venue reports it (one-way mode: one per symbol)."""

    venue: Venue
    symbol: str
    side: Side
    quantity: Decimal
    entry_price: Decimal
    mark_price: Decimal | None = None
    position_idx: int = 0
    stop_price: Decimal | None = None  # a position-attached stop (Bybit trading-stop)
    liquidation_price: Decimal | None = None
    unrealized_pnl: Decimal | None = None


@attrs.frozen(kw_only=True)
class Balance:
    """USDT margin balance."""

    total: Decimal
    free: Decimal
    used: Decimal


@attrs.frozen(kw_only=True)
class MarkTick:
    """One mark price of one symbol at one moment."""

    venue: Venue
    symbol: str
    mark: Decimal
    at: datetime


@attrs.frozen(kw_only=True)
class MarkCandle:
    """The mark prices of one symbol over one interval (a venue's mark-price kline): the
    first, the highest, the lowest and the last. The interval in progress ends at
    `closes_at` and its `close` is the mark now."""

    opened_at: datetime
    closes_at: datetime
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal


CLIENT_ID_PREFIX = "tc"
_CLIENT_ID = re.compile(r"^[A-Za-z0-9_-]{1,36}$")
_ROLE_CODES = {OrderRole.ENTRY: "e", OrderRole.STOP: "s", OrderRole.EXIT: "x"}
_CODE_ROLES = {code: role for role, code in _ROLE_CODES.items()}


def client_order_id(operation_id: str, role: OrderRole, attempt: int = 0) -> str:
    """The deterministic client id of the `attempt`-th order of `role` for an operation.

    The same inputs give the same id, so a retry or a restart after a lost response finds
    the order on the venue instead of sending a second one. Valid on both venues
    (`[A-Za-z0-9_-]{1,36}`).
    """
    if role not in _ROLE_CODES:
        raise DomainError(f"tradecore places no orders of role {role.value!r}")
    if attempt < 0:
        raise DomainError(f"attempt must be >= 0, got {attempt}")
    cid = f"{CLIENT_ID_PREFIX}-{operation_id}-{_ROLE_CODES[role]}{attempt}"
    if not _CLIENT_ID.match(cid):
        raise DomainError(
            f"client order id {cid!r} is not valid on the venues "
            "(1-36 characters of A-Z a-z 0-9 _ -); use a shorter operation id"
        )
    return cid


def role_of(client_id: str | None) -> OrderRole:
    """The role encoded in a tradecore client id, or FOREIGN for anything else."""
    if not client_id or not client_id.startswith(CLIENT_ID_PREFIX + "-"):
        return OrderRole.FOREIGN
    tail = client_id.rsplit("-", 1)[-1]
    return _CODE_ROLES.get(tail[:1], OrderRole.FOREIGN)


def operation_of(client_id: str | None) -> str | None:
    """The operation id encoded in a tradecore client id, or None."""
    if role_of(client_id) is OrderRole.FOREIGN or client_id is None:
        return None
    return client_id[len(CLIENT_ID_PREFIX) + 1 :].rsplit("-", 1)[0]


def attempt_of(client_id: str | None) -> int | None:
    """The attempt number encoded in a tradecore client id (`tc-op-s3` -> 3), or None."""
    if role_of(client_id) is OrderRole.FOREIGN or client_id is None:
        return None
    digits = client_id.rsplit("-", 1)[-1][1:]
    return int(digits) if digits.isdigit() else None
