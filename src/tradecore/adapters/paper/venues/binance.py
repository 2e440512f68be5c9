"""Binance USDⓈ-M as the simulated venue speaks it.

Codes and messages are the venue's own: Binance USDⓈ-M "Error Codes"
(developers.binance.com/docs/derivatives/usds-margined-futures/error-code) and ccxt's
binance.py `exceptions` tables; tests/unit/test_venue_codes.py holds them to what ccxt raises
and the adapter maps. Separate stop orders (no position-attached stop, no amend of a
conditional order), 200 open conditional orders per account, closePosition stops (one per
direction), integer order ids, a client id unique among open orders only.
"""

from collections.abc import Mapping
from decimal import Decimal

import attrs

from tradecore.adapters.paper.venues import PaperDialect, catalogue, market, register
from tradecore.domain.model import Venue
from tradecore.ports.exchange import Applied, Capabilities, Rejected, RejectReason

R = RejectReason

_ILLEGAL = (
    "Illegal characters found in parameter '{field}'; "
    "legal range is '^([0-9]{{1,20}})(\\.[0-9]{{1,20}})?$'."
)
_PRECISION = "Precision is over the maximum defined for this asset."

ERRORS: Mapping[RejectReason, tuple[str | None, str]] = {
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

# Every refusal code `adapters/ccxt/errors.py` maps, with the venue's text: Binance USDⓈ-M
# "Error Codes" (developers.binance.com/docs/derivatives/usds-margined-futures/error-code)
# and ccxt's binance.py `exceptions` tables; Bybit v5 "Error Codes"
# (bybit-exchange.github.io/docs/v5/error) and ccxt's bybit.py. A simulator injects them with
# `Fault.reject(r.reason, op, code=r.code, message=r.message)`;
# tests/unit/test_venue_codes.py holds them to what ccxt raises and the adapter maps.
REJECTIONS = catalogue(
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
    (R.INVALID_QUANTITY, "-4004", "Quantity less than min quantity."),
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


# A few real-looking markets: BTC and ETH, and a 7-decimal-tick contract.
MARKETS = (
    market("BTCUSDT", "0.1", "0.001", "0.001", "100", 125),
    market("ETHUSDT", "0.01", "0.001", "0.001", "20", 100),
    market("SOLUSDT", "0.01", "1", "1", "5", 50),
    market("1000PEPEUSDT", "0.0000001", "1", "1", "5", 50),
)


@attrs.frozen(kw_only=True)
class BinanceDialect(PaperDialect):
    """Binance names the offending field and answers most bad values with a code of its own."""

    def invalid_side(self, side: object) -> Rejected:
        return self.refusal(R.OTHER, code="-1117", what=f"Invalid side {side!r}.")

    def quantity_unreadable(self) -> Rejected:
        return self.refusal(
            R.INVALID_QUANTITY, code="-1100", message=_ILLEGAL.format(field="quantity")
        )

    def quantity_too_large(self) -> Rejected:
        return self.refusal(
            R.INVALID_QUANTITY, code="-4005", message="Quantity greater than max quantity."
        )

    def quantity_too_precise(self) -> Rejected:
        return self.refusal(R.INVALID_QUANTITY, code="-1111", message=_PRECISION)

    def quantity_off_step(self) -> Rejected:
        return self.refusal(
            R.INVALID_QUANTITY, code="-4023", message="Quantity not increased by step size."
        )

    def quantity_below_minimum(self) -> Rejected:
        # -4004 QTY_LESS_THAN_MIN_QTY (USDⓈ-M "Error Codes")
        return self.refusal(
            R.INVALID_QUANTITY, code="-4004", message="Quantity less than min quantity."
        )

    def price_unreadable(self, field: str) -> Rejected:
        return self.refusal(R.INVALID_PRICE, code="-1100", message=_ILLEGAL.format(field=field))

    def price_not_positive(self, field: str, *, stop: bool) -> Rejected:
        return self.refusal(
            R.INVALID_PRICE,
            code="-4006" if stop else "-4001",
            message="Stop price less than zero." if stop else "Price less than 0.",
        )

    def price_too_large(self, field: str, *, stop: bool) -> Rejected:
        return self.refusal(
            R.INVALID_PRICE,
            code="-4007" if stop else "-4002",
            message="Stop price greater than max price."
            if stop
            else "Price greater than max price.",
        )

    def price_off_tick(
        self, field: str, price: Decimal, tick: Decimal, *, too_precise: bool
    ) -> Rejected:
        if too_precise:
            return self.refusal(R.INVALID_PRICE, code="-1111", message=_PRECISION)
        return super().price_off_tick(field, price, tick, too_precise=too_precise)

    def invalid_client_id(self) -> Rejected:
        return self.refusal(R.OTHER, code="-4015", what="Client order id is not valid.")

    def leverage_unchanged(self) -> Applied | Rejected:
        return Applied(changed=False)  # POST /fapi/v1/leverage answers the same leverage again

    def margin_mode_unchanged(self) -> Rejected:
        return self.refusal(R.NOT_MODIFIED, code="-4046", message="No need to change margin type.")


BINANCE = register(
    BinanceDialect(
        venue=Venue.BINANCE,
        capabilities=Capabilities(
            amend_stop=False,
            position_stop=False,
            amend_limit=True,
            max_conditional_orders=200,
            close_position_stop=True,  # closePosition=true (New Algo Order), one per direction
        ),
        errors=ERRORS,
        rejections=REJECTIONS,
        markets=MARKETS,
        close_position_stops=True,
        # newClientOrderId is "a unique id among open orders" (USDⓈ-M New Order): a closed
        # order's id is free again (-4116 only while it is open)
        client_ids_free_once_closed=True,
        acknowledges_only=False,  # New Order answers with the order itself
        taker_fee=Decimal("0.0005"),
        order_id_start=4_000_000_000,
        whole_leverage=True,  # POST /fapi/v1/leverage takes a whole number (-4028 otherwise)
    )
)
