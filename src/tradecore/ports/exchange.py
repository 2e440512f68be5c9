"""The exchange port: what tradecore needs of a venue, and the three outcomes of a command.

Queries (markets, balance, positions, orders, mark price) return values or raise
`ExchangeUnavailable`. Commands (orders, stops, cancels) never raise for venue or network
trouble: they return `Accepted`, `Rejected` or `Unknown`. `Unknown` means the request may or
may not have reached the venue: the caller resolves it by looking the client id up, never by
sending again.
"""

from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import datetime
from decimal import Decimal
from enum import IntEnum, StrEnum
from typing import Protocol, runtime_checkable

import attrs

from tradecore.domain.leverage import LeverageTier, MarginMode
from tradecore.domain.model import OrderSide, Venue
from tradecore.domain.orders import Balance, MarkCandle, MarkTick, Order, VenuePosition
from tradecore.domain.pnl import Fill, FundingPayment
from tradecore.domain.precision import MarketRules


class RejectReason(StrEnum):
    WOULD_TRIGGER_IMMEDIATELY = "would_trigger_immediately"
    BELOW_MIN_NOTIONAL = "below_min_notional"
    INSUFFICIENT_BALANCE = "insufficient_balance"
    SYMBOL_UNAVAILABLE = "symbol_unavailable"
    UNKNOWN_SYMBOL = "unknown_symbol"
    REGION_RESTRICTED = "region_restricted"
    REDUCE_ONLY_WOULD_INCREASE = "reduce_only_would_increase"
    INVALID_PRICE = "invalid_price"
    INVALID_QUANTITY = "invalid_quantity"
    DUPLICATE_CLIENT_ID = "duplicate_client_id"
    ORDER_NOT_FOUND = "order_not_found"
    TOO_MANY_CONDITIONAL_ORDERS = "too_many_conditional_orders"
    STOP_ALREADY_EXISTS = "stop_already_exists"
    NO_POSITION = "no_position"
    NOT_SUPPORTED = "not_supported"
    NOT_MODIFIED = "not_modified"  # the venue already has exactly this (Bybit 34040): done
    INVALID_LEVERAGE = "invalid_leverage"  # outside the symbol's range (Binance -4028)
    # a margin mode cannot change while the symbol has a position or open orders (-4048, -4047)
    MARGIN_MODE_LOCKED = "margin_mode_locked"
    RATE_LIMITED = "rate_limited"
    VENUE_UNAVAILABLE = "venue_unavailable"
    NETWORK_ERROR = "network_error"
    AUTHENTICATION = "authentication"
    OTHER = "other"


class RequestPriority(IntEnum):
    """Which request goes first when the venue's rate limits make requests wait (lower first).

    A stop (placing, replacing, the cancel that completes a replacement) before a close, a
    close before an entry, an entry before a query, a query before a sweep (zombie cleanup,
    account-wide listings, market loads). docs/venues.md, "Rate limits".
    """

    STOP = 0
    CLOSE = 1
    ENTRY = 2
    QUERY = 3
    SWEEP = 4


_PRIORITY: ContextVar[RequestPriority | None] = ContextVar("request_priority", default=None)


def current_priority() -> RequestPriority | None:
    """The priority the calls in this context were given, if any."""
    return _PRIORITY.get()


@contextmanager
def request_priority(priority: RequestPriority) -> Iterator[None]:
    """Every venue request made inside (and in tasks started inside) has `priority`.

    The outermost scope wins: a use case that declares its work a sweep keeps it a sweep even
    where an adapter would have judged one of its calls a stop.
    """
    if _PRIORITY.get() is not None:
        yield
        return
    token = _PRIORITY.set(priority)
    try:
        yield
    finally:
        _PRIORITY.reset(token)


RETRYABLE_REASONS = frozenset(
    {
        RejectReason.RATE_LIMITED,
        RejectReason.VENUE_UNAVAILABLE,
        RejectReason.NETWORK_ERROR,
    }
)


@attrs.frozen(kw_only=True)
class Accepted:
    """The venue took the command; `order` is its state right after."""

    order: Order


@attrs.frozen(kw_only=True)
class Rejected:
    """The venue refused (or the request provably never reached it)."""

    reason: RejectReason
    message: str
    retryable: bool = False
    code: str | None = None  # the venue's own error code, e.g. "-4130" or "170209"


@attrs.frozen(kw_only=True)
class Unknown:
    """The request may or may not have reached the venue (e.g. the response was lost)."""

    message: str
    client_order_id: str | None = None


Outcome = Accepted | Rejected | Unknown


@attrs.frozen(kw_only=True)
class Applied:
    """The venue holds the setting (leverage, margin mode) asked for. `changed` is False
    when it already did: Binance -4046 "No need to change margin type.", Bybit 110043 "Set
    leverage not modified" are this, not a refusal."""

    changed: bool = True


SettingOutcome = Applied | Rejected | Unknown


class ExchangeUnavailable(Exception):
    """A query could not be answered (network, rate limit, 5xx). Retrying may help."""

    def __init__(self, message: str, *, retryable: bool = True, rate_limited: bool = False):
        super().__init__(message)
        self.retryable = retryable
        self.rate_limited = rate_limited


@attrs.frozen(kw_only=True)
class Capabilities:
    """What a venue can do, so callers pick the safe path per venue.

    `amend_stop`: a resting stop's trigger can be moved in place (Bybit amend).
    `position_stop`: a stop can be attached to the position and moved in place (Bybit
    trading-stop). Without either, a stop is replaced by create-confirm-cancel (Binance).
    `close_position_stop`: a stop can be sent without a quantity, closing the whole position
    when it fires (Binance `closePosition=true`, New Algo Order: "quantity ... Cannot be sent
    with closePosition=true(Close-All)"); one such stop per direction (-4130). The stop writer
    sends it for a quantity below the market's minimum, which no quantity stop can carry.
    `entry_stop`: an entry can carry its stop-loss, set on the position the instant the entry
    fills (Bybit `/v5/order/create` `stopLoss`): a fill the venue lists late is never bare.
    `max_conditional_orders`: the venue's cap on open conditional (stop) orders, per account,
    or per symbol when `conditional_cap_per_symbol`; None when it has none.
    """

    amend_stop: bool
    position_stop: bool
    amend_limit: bool = True
    max_conditional_orders: int | None = None
    close_position_stop: bool = False
    conditional_cap_per_symbol: bool = False
    hedge_mode: bool = False
    # False where the margin mode is the account's, not each symbol's (a Bybit unified
    # account): it is read at start and never set per symbol.
    margin_mode_per_symbol: bool = True
    entry_stop: bool = False


@runtime_checkable
class Exchange(Protocol):
    """One account on one venue."""

    @property
    def venue(self) -> Venue: ...

    @property
    def capabilities(self) -> Capabilities: ...

    async def load_markets(self) -> Mapping[str, MarketRules]:
        """Market rules keyed by plain symbol (`BTCUSDT`)."""
        ...

    async def fetch_balance(self) -> Balance: ...

    async def fetch_positions(self) -> Sequence[VenuePosition]:
        """Every open (non-zero) position."""
        ...

    async def fetch_open_orders(self, symbol: str | None = None) -> Sequence[Order]:
        """Every open order, conditional (stop) orders included, all pages."""
        ...

    async def fetch_order_by_client_id(self, symbol: str, client_order_id: str) -> Order | None:
        """The order with this client id, open or recently closed; None if the venue has none."""
        ...

    async def fetch_order(self, symbol: str, order_id: str) -> Order | None:
        """The order with this exchange id (stops and position-attached stops included),
        open or recently closed; None if the venue has none."""
        ...

    async def fetch_mark_price(self, symbol: str) -> Decimal: ...

    async def fetch_fills(
        self, symbol: str, *, since: datetime, order_ids: Sequence[str] | None = None
    ) -> Sequence[Fill]:
        """The account's own fills (trades) on `symbol` at or after `since`, oldest first, all
        pages; with `order_ids`, only those orders' fills. Binance `GET /fapi/v1/userTrades`,
        Bybit `GET /v5/execution/list` (ccxt `fetch_my_trades`)."""
        ...

    async def fetch_mark_candles(self, symbol: str, *, since: datetime) -> Sequence[MarkCandle]:
        """The symbol's mark-price candles from the one `since` falls in to the one in
        progress (whose close is the mark now), oldest first, each interval present
        (Binance `GET /fapi/v1/markPriceKlines`, Bybit `GET /v5/market/mark-price-kline`).
        One minute each where that takes a few requests, longer for a longer span."""
        ...

    async def fetch_funding(self, symbol: str, *, since: datetime) -> Sequence[FundingPayment]:
        """Funding paid or received on `symbol` at or after `since`, oldest first. Binance
        `GET /fapi/v1/income` (incomeType FUNDING_FEE), Bybit `/v5/execution/list`
        (execType Funding) (ccxt `fetch_funding_history`)."""
        ...

    def watch_mark_prices(self, symbols: Sequence[str]) -> AsyncIterator[MarkTick]:
        """For the given plain symbols: each one's current mark first, then its mark as it
        changes — as the venues' streams open (Binance pushes `<symbol>@markPrice` "every 3
        seconds or every second", Bybit's `tickers.{symbol}` starts with a snapshot), so a
        subscriber never waits for the next move to learn the mark (a restart's trailing on a
        flat mark: simulator, binance seed 2099)."""
        ...

    async def create_market_order(
        self,
        symbol: str,
        side: OrderSide,
        quantity: Decimal,
        *,
        client_order_id: str,
        reduce_only: bool = False,
        stop_loss: Decimal | None = None,
    ) -> Outcome:
        """A market order. `stop_loss` (needs `entry_stop`): the stop-loss the entry carries,
        a whole-position stop triggered by the mark, set on the position as the entry fills."""
        ...

    async def create_limit_order(
        self,
        symbol: str,
        side: OrderSide,
        quantity: Decimal,
        price: Decimal,
        *,
        client_order_id: str,
        reduce_only: bool = True,
    ) -> Outcome: ...

    async def create_stop_order(
        self,
        symbol: str,
        side: OrderSide,
        quantity: Decimal,
        trigger_price: Decimal,
        *,
        client_order_id: str,
        close_position: bool = False,
    ) -> Outcome:
        """A reduce-only stop-market order triggered by the mark price. With
        `close_position` (needs `capabilities.close_position_stop`) it is sent without a
        quantity (`quantity` is not sent) and closes the whole position when it fires."""
        ...

    async def set_position_stop(self, symbol: str, trigger_price: Decimal | None) -> Outcome:
        """Attach (or move, or with None remove) the position's own stop. Needs `position_stop`."""
        ...

    async def amend_order(
        self,
        symbol: str,
        order_id: str,
        *,
        trigger_price: Decimal | None = None,
        price: Decimal | None = None,
    ) -> Outcome:
        """Move a resting order in place. Stops need `amend_stop`, limits `amend_limit`."""
        ...

    async def cancel_order(self, symbol: str, order_id: str) -> Outcome:
        """Cancel an order (stops included). A missing order is Rejected(ORDER_NOT_FOUND)."""
        ...

    async def set_leverage(self, symbol: str, leverage: Decimal) -> SettingOutcome:
        """Set the symbol's leverage for new positions. Binance `POST /fapi/v1/leverage`,
        Bybit `POST /v5/position/set-leverage` (ccxt `set_leverage`)."""
        ...

    async def fetch_leverage(self, symbol: str) -> Decimal:
        """The leverage the venue holds for the symbol. Binance `GET /fapi/v1/symbolConfig`,
        Bybit `GET /v5/position/list?symbol=` (ccxt `fetch_leverage`)."""
        ...

    async def set_margin_mode(self, symbol: str, mode: MarginMode) -> SettingOutcome:
        """Set the symbol's margin mode. Needs `margin_mode_per_symbol` (else Rejected
        NOT_SUPPORTED). Binance `POST /fapi/v1/marginType` (ccxt `set_margin_mode`)."""
        ...

    async def fetch_margin_mode(self, symbol: str) -> MarginMode:
        """The margin mode positions on `symbol` get: the symbol's own (Binance `GET
        /fapi/v1/symbolConfig`) or the account's (Bybit `GET /v5/account/info`)."""
        ...

    async def fetch_leverage_tiers(self, symbol: str) -> Sequence[LeverageTier]:
        """The symbol's risk tiers, smallest first. Binance `GET /fapi/v1/leverageBracket`
        (ccxt `fetch_leverage_tiers`), Bybit `GET /v5/market/risk-limit?symbol=`."""
        ...

    async def close(self) -> None: ...
