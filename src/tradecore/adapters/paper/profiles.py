"""Venue profiles: what differs between Binance USDⓈ-M and Bybit linear, and their error texts.

Codes and messages are the venues' own (as listed in ccxt's error tables and the venues'
API docs), so code that handles a `Rejected` from the simulated venue handles the real one.
Where a venue's text varies with the request, the message names the offending value.
"""

from collections.abc import Mapping
from decimal import Decimal

import attrs

from tradecore.domain.model import Venue
from tradecore.domain.precision import MarketRules
from tradecore.ports.exchange import RETRYABLE_REASONS, Capabilities, Rejected, RejectReason

R = RejectReason

_BINANCE_ERRORS: Mapping[RejectReason, tuple[str | None, str]] = {
    R.WOULD_TRIGGER_IMMEDIATELY: ("-2021", "Order would immediately trigger."),
    R.BELOW_MIN_NOTIONAL: (
        "-4164",
        "Order's notional must be no smaller than {min_notional} (unless you choose reduce only).",
    ),
    R.INSUFFICIENT_BALANCE: ("-2019", "Margin is insufficient."),
    R.SYMBOL_UNAVAILABLE: ("-4140", "Invalid symbol status for opening position."),
    R.UNKNOWN_SYMBOL: ("-1121", "Invalid symbol."),
    R.REGION_RESTRICTED: (
        "451",
        "Service unavailable from a restricted location according to 'b. Eligibility' in "
        "https://www.binance.com/en/terms.",
    ),
    R.REDUCE_ONLY_WOULD_INCREASE: ("-2022", "ReduceOnly Order is rejected."),
    R.INVALID_PRICE: ("-4014", "Price not increased by tick size."),
    R.INVALID_QUANTITY: ("-4003", "Quantity less than or equal to zero."),
    R.DUPLICATE_CLIENT_ID: ("-4116", "ClientOrderId is duplicated."),
    R.ORDER_NOT_FOUND: ("-2011", "Unknown order sent."),
    R.TOO_MANY_CONDITIONAL_ORDERS: ("-4045", "Reach max stop order limit."),
    R.STOP_ALREADY_EXISTS: (
        "-4130",
        "An open stop or take profit order with GTE and closePosition in the direction is "
        "existing.",
    ),
    # Binance answers a reduce-only order without a position with -2022 like any other
    # reduce-only refusal: on the wire it reads as REDUCE_ONLY_WOULD_INCREASE
    R.NO_POSITION: (None, "ReduceOnly Order is rejected."),
    R.NOT_SUPPORTED: (None, "binance does not support {what}"),
    R.NOT_MODIFIED: ("-5027", "No need to modify the order."),
    R.INVALID_LEVERAGE: ("-4028", "Leverage {leverage} is not valid"),
    R.MARGIN_MODE_LOCKED: ("-4048", "Margin type cannot be changed if there exists position."),
    R.RATE_LIMITED: (
        "-1003",
        "Too many requests; current limit is 2400 requests per minute. Please use the "
        "websocket for live updates to avoid polling the API.",
    ),
    # -1001 / -1000 / -1006 / -1007 leave an order's execution unknown (story 9); -1008 is
    # Binance refusing the request while overloaded
    R.VENUE_UNAVAILABLE: (
        "-1008",
        "Server is currently overloaded with other requests. Please try again in a few minutes.",
    ),
    R.NETWORK_ERROR: (None, "connection failed before the request was sent"),
    R.AUTHENTICATION: ("-2015", "Invalid API-key, IP, or permissions for action."),
    R.OTHER: (None, "{what}"),
}

_BYBIT_ERRORS: Mapping[RejectReason, tuple[str | None, str]] = {
    R.WOULD_TRIGGER_IMMEDIATELY: (
        "110093",
        "expect Falling, but trigger_price[{trigger}] >= current[{mark}]??MarkPrice",
    ),
    R.BELOW_MIN_NOTIONAL: ("110094", "Order does not meet minimum order value {min_notional}USDT"),
    R.INSUFFICIENT_BALANCE: ("110007", "ab not enough for new order"),
    R.SYMBOL_UNAVAILABLE: ("10001", "params error: symbol {symbol} is not trading"),
    R.UNKNOWN_SYMBOL: ("10001", "params error: symbol invalid"),
    R.REGION_RESTRICTED: (
        "170209",
        "This trading pair is only available to the Brunei,Kampuchea (Cambodia),Indonesia,Laos,"
        "Malaysia,Burma,Philippines,Thailand,Timor-Leste,Vietnam region.",
    ),
    R.REDUCE_ONLY_WOULD_INCREASE: ("110017", "Reduce-only rule not satisfied"),
    R.INVALID_PRICE: ("10001", "params error: {field} {value} is not a multiple of tick {tick}"),
    R.INVALID_QUANTITY: ("10001", "params error: Qty invalid"),
    R.DUPLICATE_CLIENT_ID: ("110072", "OrderLinkedID is duplicate"),
    R.ORDER_NOT_FOUND: ("110001", "order not exists or too late to cancel"),
    R.TOO_MANY_CONDITIONAL_ORDERS: (
        "110009",
        "The number of stop orders exceeds maximum limit allowed",
    ),
    R.STOP_ALREADY_EXISTS: (None, "bybit has no closePosition stop to collide with"),
    R.NO_POSITION: ("10001", "can not set tp/sl/ts for zero position"),
    R.NOT_SUPPORTED: (None, "bybit does not support {what}"),
    R.NOT_MODIFIED: ("34040", "not modified"),
    R.INVALID_LEVERAGE: ("110013", "Due to risk limit, cannot set leverage"),
    R.RATE_LIMITED: ("10006", "Too many visits!"),
    # 10000 / 10016 leave an order's execution unknown (story 9); 429 is Bybit refusing it
    R.VENUE_UNAVAILABLE: (
        "429",
        "The trading service is experiencing a high server load. Please retry if you "
        "encounter this issue.",
    ),
    R.NETWORK_ERROR: (None, "connection failed before the request was sent"),
    R.AUTHENTICATION: ("10003", "API key is invalid."),
    R.OTHER: (None, "{what}"),
}


@attrs.frozen(kw_only=True)
class VenueRejection:
    """One refusal a venue answers and the ccxt adapter maps: the reason, code and text."""

    reason: RejectReason
    code: str
    message: str


def _catalogue(*rows: tuple[RejectReason, str, str]) -> tuple[VenueRejection, ...]:
    return tuple(VenueRejection(reason=r, code=c, message=m) for r, c, m in rows)


# Every refusal code `adapters/ccxt/errors.py` maps, with the venue's text: Binance USDⓈ-M
# "Error Codes" (developers.binance.com/docs/derivatives/usds-margined-futures/error-code)
# and ccxt's binance.py `exceptions` tables; Bybit v5 "Error Codes"
# (bybit-exchange.github.io/docs/v5/error) and ccxt's bybit.py. A simulator injects them with
# `Fault.reject(r.reason, op, code=r.code, message=r.message)`;
# tests/unit/test_venue_codes.py holds them to what ccxt raises and the adapter maps.
BINANCE_REJECTIONS = _catalogue(
    (R.WOULD_TRIGGER_IMMEDIATELY, "-2021", "Order would immediately trigger."),
    (R.ORDER_NOT_FOUND, "-2011", "Unknown order sent."),
    (R.ORDER_NOT_FOUND, "-2013", "Order does not exist."),
    (R.DUPLICATE_CLIENT_ID, "-4116", "ClientOrderId is duplicated."),
    (R.REDUCE_ONLY_WOULD_INCREASE, "-2022", "ReduceOnly Order is rejected."),
    (
        R.BELOW_MIN_NOTIONAL,
        "-4164",
        "Order's notional must be no smaller than 100 (unless you choose reduce only).",
    ),
    (R.INSUFFICIENT_BALANCE, "-2019", "Margin is insufficient."),
    (R.INVALID_PRICE, "-4014", "Price not increased by tick size."),
    (R.INVALID_PRICE, "-4001", "Price less than 0."),
    (R.INVALID_PRICE, "-4002", "Price greater than max price."),
    (R.INVALID_PRICE, "-4006", "Stop price less than zero."),
    (R.INVALID_PRICE, "-4007", "Stop price greater than max price."),
    (R.INVALID_PRICE, "-1111", "Precision is over the maximum defined for this asset."),
    (R.INVALID_PRICE, "-1100", "Illegal characters found in parameter 'price'."),
    (R.INVALID_QUANTITY, "-1100", "Illegal characters found in parameter 'quantity'."),
    (R.INVALID_QUANTITY, "-4003", "Quantity less than or equal to zero."),
    (R.INVALID_QUANTITY, "-4004", "Quantity less than or equal to min quantity."),
    (R.INVALID_QUANTITY, "-4005", "Quantity greater than max quantity."),
    (R.INVALID_QUANTITY, "-4023", "Quantity not increased by step size."),
    (R.UNKNOWN_SYMBOL, "-1121", "Invalid symbol."),
    (R.SYMBOL_UNAVAILABLE, "-4140", "Invalid symbol status for opening position."),
    (R.TOO_MANY_CONDITIONAL_ORDERS, "-4045", "Reach max stop order limit."),
    (
        R.STOP_ALREADY_EXISTS,
        "-4130",
        "An open stop or take profit order with GTE and closePosition in the direction is "
        "existing.",
    ),
    (R.NOT_MODIFIED, "-5027", "No need to modify the order."),
    (R.NOT_MODIFIED, "-4046", "No need to change margin type."),
    (R.INVALID_LEVERAGE, "-4028", "Leverage 150 is not valid"),
    (
        R.MARGIN_MODE_LOCKED,
        "-4047",
        "Margin type cannot be changed if there exists open orders.",
    ),
    (
        R.MARGIN_MODE_LOCKED,
        "-4048",
        "Margin type cannot be changed if there exists position.",
    ),
    (
        R.RATE_LIMITED,
        "-1003",
        "Too many requests; current limit is 2400 requests per minute. Please use the "
        "websocket for live updates to avoid polling the API.",
    ),
    (
        R.VENUE_UNAVAILABLE,
        "-1008",
        "Server is currently overloaded with other requests. Please try again in a few minutes.",
    ),
    (R.AUTHENTICATION, "-2015", "Invalid API-key, IP, or permissions for action."),
    (R.AUTHENTICATION, "-2014", "API-key format invalid."),
    (
        R.REGION_RESTRICTED,
        "451",
        "Service unavailable from a restricted location according to 'b. Eligibility' in "
        "https://www.binance.com/en/terms.",
    ),
)

BYBIT_REJECTIONS = _catalogue(
    (
        R.WOULD_TRIGGER_IMMEDIATELY,
        "110092",
        "expect Rising, but trigger_price[50000] <= current[50100]??MarkPrice",
    ),
    (
        R.WOULD_TRIGGER_IMMEDIATELY,
        "110093",
        "expect Falling, but trigger_price[50100] >= current[50000]??MarkPrice",
    ),
    (
        R.WOULD_TRIGGER_IMMEDIATELY,
        "10001",
        "StopLoss:50100 set for Buy position should lower than base_price:50000??MarkPrice",
    ),
    (R.ORDER_NOT_FOUND, "110001", "order not exists or too late to cancel"),
    (R.DUPLICATE_CLIENT_ID, "110072", "OrderLinkedID is duplicate"),
    (R.REDUCE_ONLY_WOULD_INCREASE, "110017", "Reduce-only rule not satisfied"),
    (R.BELOW_MIN_NOTIONAL, "110094", "Order does not meet minimum order value 5USDT"),
    (R.INSUFFICIENT_BALANCE, "110007", "ab not enough for new order"),
    (
        R.TOO_MANY_CONDITIONAL_ORDERS,
        "110009",
        "The number of stop orders exceeds maximum limit allowed",
    ),
    (
        R.REGION_RESTRICTED,
        "170209",
        "This trading pair is only available to the Brunei,Kampuchea (Cambodia),Indonesia,Laos,"
        "Malaysia,Burma,Philippines,Thailand,Timor-Leste,Vietnam region.",
    ),
    (R.NOT_MODIFIED, "34040", "not modified"),
    (R.NOT_MODIFIED, "110043", "Set leverage not modified"),
    (R.INVALID_LEVERAGE, "110013", "Due to risk limit, cannot set leverage"),
    (
        R.NOT_MODIFIED,
        "10001",
        "The order remains unchanged as the parameters entered match the existing ones.",
    ),
    (R.NO_POSITION, "10001", "can not set tp/sl/ts for zero position"),
    (R.SYMBOL_UNAVAILABLE, "10001", "params error: symbol BTCUSDT is not trading"),
    (R.UNKNOWN_SYMBOL, "10001", "params error: symbol invalid"),
    (R.INVALID_QUANTITY, "10001", "params error: Qty invalid"),
    (R.INVALID_PRICE, "10001", "params error: triggerPrice 48000.05 is not a multiple of tick 0.1"),
    (R.RATE_LIMITED, "10006", "Too many visits!"),
    (
        R.VENUE_UNAVAILABLE,
        "429",
        "The trading service is experiencing a high server load. Please retry if you "
        "encounter this issue.",
    ),
    (R.AUTHENTICATION, "10003", "API key is invalid."),
    (R.AUTHENTICATION, "10004", "Error sign, please check your signature generation algorithm."),
    (R.AUTHENTICATION, "10005", "Permission denied, please check your API key permissions."),
)


class _Blank(dict[str, object]):
    """Template values; a field a message names but the caller did not give prints as '?'."""

    def __missing__(self, key: str) -> str:
        return "?"


@attrs.frozen(kw_only=True)
class Profile:
    """The rules of one venue that the simulated engine follows."""

    venue: Venue
    capabilities: Capabilities
    errors: Mapping[RejectReason, tuple[str | None, str]]
    # every refusal the venue answers and the ccxt adapter maps (see BINANCE_REJECTIONS)
    rejections: tuple[VenueRejection, ...]
    close_position_stops: bool  # Binance closePosition=true stops (one per direction)
    # Binance: newClientOrderId is "a unique id among open orders" (USDⓈ-M New Order), so a
    # closed order's id is free again (-4116 only while it is open). Bybit: orderLinkId
    # "should be unique" (v5 Place Order): any id used before is refused with 110072.
    client_ids_free_once_closed: bool
    # Bybit v5 Place Order answers `orderId` and `orderLinkId` only: "The ack of create order
    # request indicates that the request is successfully accepted. Please use websocket order
    # stream to confirm the order status" (bybit-exchange.github.io/docs/v5/order/create-order).
    # The order's state is then read back, and a look-up may not list it yet (`listing_lag`).
    # Binance's New Order answers with the order itself.
    acknowledges_only: bool
    taker_fee: Decimal
    order_id_start: int

    @property
    def conditional_cap(self) -> int | None:
        """Open conditional orders allowed per account (Binance) or per symbol (Bybit)."""
        return self.capabilities.max_conditional_orders

    @property
    def conditional_cap_per_symbol(self) -> bool:
        return self.capabilities.conditional_cap_per_symbol

    def refusal(
        self,
        reason: RejectReason,
        *,
        code: str | None = None,
        message: str | None = None,
        **detail: object,
    ) -> Rejected:
        """The venue's rejection for `reason`, its message filled in with `detail`."""
        default_code, template = self.errors.get(reason, (None, "{what}"))
        text = message if message is not None else template.format_map(_Blank(detail))
        return Rejected(
            reason=reason,
            message=text,
            retryable=reason in RETRYABLE_REASONS,
            code=code if code is not None else default_code,
        )

    def new_order_id(self, number: int) -> str:
        """Binance ids are integers; Bybit ids are UUIDs (made deterministic here)."""
        if self.venue is Venue.BINANCE:
            return str(self.order_id_start + number)
        return f"{number:08x}-0000-4000-8000-{self.order_id_start + number:012x}"


BINANCE = Profile(
    venue=Venue.BINANCE,
    capabilities=Capabilities(
        amend_stop=False, position_stop=False, amend_limit=True, max_conditional_orders=200
    ),
    errors=_BINANCE_ERRORS,
    rejections=BINANCE_REJECTIONS,
    close_position_stops=True,
    client_ids_free_once_closed=True,
    acknowledges_only=False,
    taker_fee=Decimal("0.0005"),
    order_id_start=4_000_000_000,
)

BYBIT = Profile(
    venue=Venue.BYBIT,
    capabilities=Capabilities(
        amend_stop=True,
        position_stop=True,
        amend_limit=True,
        max_conditional_orders=10,
        conditional_cap_per_symbol=True,
        margin_mode_per_symbol=False,  # a unified account's margin mode is account-wide
    ),
    errors=_BYBIT_ERRORS,
    rejections=BYBIT_REJECTIONS,
    close_position_stops=False,
    client_ids_free_once_closed=False,
    acknowledges_only=True,
    taker_fee=Decimal("0.00055"),
    order_id_start=0,
)

PROFILES = {Venue.BINANCE: BINANCE, Venue.BYBIT: BYBIT}


def _rules(symbol: str, tick: str, step: str, min_qty: str, notional: str, lev: int) -> MarketRules:
    return MarketRules(
        symbol=symbol,
        tick_size=Decimal(tick),
        step_size=Decimal(step),
        min_quantity=Decimal(min_qty),
        min_notional=Decimal(notional),
        max_leverage=Decimal(lev),
    )


def default_markets(venue: Venue) -> tuple[MarketRules, ...]:
    """A few real-looking markets: BTC and ETH, and a 7-decimal-tick contract."""
    if venue is Venue.BINANCE:
        return (
            _rules("BTCUSDT", "0.1", "0.001", "0.001", "100", 125),
            _rules("ETHUSDT", "0.01", "0.001", "0.001", "20", 100),
            _rules("SOLUSDT", "0.01", "1", "1", "5", 50),
            _rules("1000PEPEUSDT", "0.0000001", "1", "1", "5", 50),
        )
    return (
        _rules("BTCUSDT", "0.1", "0.001", "0.001", "5", 100),
        _rules("ETHUSDT", "0.01", "0.01", "0.01", "5", 100),
        _rules("SOLUSDT", "0.01", "0.1", "0.1", "5", 50),
        _rules("1000PEPEUSDT", "0.0000001", "100", "100", "5", 50),
    )


DEFAULT_MARKS = {
    "BTCUSDT": Decimal("50000"),
    "ETHUSDT": Decimal("3000"),
    "SOLUSDT": Decimal("150"),
    "1000PEPEUSDT": Decimal("0.0123456"),
}
