"""Bybit linear (v5, unified account) as the simulated venue speaks it.

Codes and messages are the venue's own: Bybit v5 "Error Codes"
(bybit-exchange.github.io/docs/v5/error) and ccxt's bybit.py; tests/unit/test_venue_codes.py
holds them to what ccxt raises and the adapter maps. Position-attached stops (trading-stop),
conditional orders amended in place, 10 open conditional orders per symbol, UUID order ids,
an orderLinkId never reusable, a create that only acknowledges, the margin mode the unified
account's (not a symbol's). Bybit answers most bad values with its generic 10001.
"""

from collections.abc import Mapping
from decimal import Decimal

import attrs

from tradecore.adapters.paper.venues import PaperDialect, catalogue, market, register
from tradecore.domain.model import OrderSide, Side, Venue
from tradecore.ports.exchange import Applied, Capabilities, Rejected, RejectReason

R = RejectReason

ERRORS: Mapping[RejectReason, tuple[str | None, str]] = {
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


# Every refusal code `adapters/ccxt/errors.py` maps, with the venue's text (see binance.py).
REJECTIONS = catalogue(
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


# A few real-looking markets: BTC and ETH, and a 7-decimal-tick contract.
MARKETS = (
    market("BTCUSDT", "0.1", "0.001", "0.001", "5", 100),
    market("ETHUSDT", "0.01", "0.01", "0.01", "5", 100),
    market("SOLUSDT", "0.01", "0.1", "0.1", "5", 50),
    market("1000PEPEUSDT", "0.0000001", "100", "100", "5", 50),
)


@attrs.frozen(kw_only=True)
class BybitDialect(PaperDialect):
    """Bybit's own words where its answer is not its generic code for the reason."""

    def new_order_id(self, number: int) -> str:
        """Bybit ids are UUIDs (made deterministic here)."""
        return f"{number:08x}-0000-4000-8000-{self.order_id_start + number:012x}"

    def invalid_side(self, side: object) -> Rejected:
        return self.refusal(R.OTHER, code="10001", what=f"Invalid side {side!r}.")

    def quantity_below_minimum(self) -> Rejected:
        return self.refusal(
            R.INVALID_QUANTITY, message="The number of contracts exceeds minimum limit allowed"
        )

    def price_unreadable(self, field: str) -> Rejected:
        return self.refusal(R.INVALID_PRICE, message=f"params error: {field} invalid")

    def invalid_client_id(self) -> Rejected:
        return self.refusal(R.OTHER, code="10001", what="params error: orderLinkId invalid")

    def position_index_refused(self, position_idx: int) -> Rejected | None:
        if position_idx == 0:
            return None
        return self.refusal(R.OTHER, code="10001", what="position idx not match position mode")

    def reduce_only_without_position(self) -> Rejected | None:
        return self.refusal(
            R.REDUCE_ONLY_WOULD_INCREASE,
            message="current position is zero, cannot fix reduce-only order qty",
        )

    def would_trigger(self, side: OrderSide, trigger: Decimal, mark: Decimal) -> Rejected:
        if side is OrderSide.BUY:
            return self.refusal(
                R.WOULD_TRIGGER_IMMEDIATELY,
                code="110092",
                message=f"expect Rising, but trigger_price[{trigger}] <= current[{mark}]"
                "??MarkPrice",
            )
        return super().would_trigger(side, trigger, mark)

    def position_stop_would_trigger(self, side: Side, trigger: Decimal, mark: Decimal) -> Rejected:
        if side is Side.LONG:
            text = f"StopLoss:{trigger} set for Buy position should lower than base_price:{mark}"
        else:
            text = f"StopLoss:{trigger} set for Sell position should higher than base_price:{mark}"
        return self.refusal(R.WOULD_TRIGGER_IMMEDIATELY, code="10001", message=text + "??MarkPrice")

    def stop_unchanged(self) -> Rejected:
        return self.refusal(
            R.NOT_MODIFIED,
            code="10001",
            message="The order remains unchanged as the parameters entered "
            "match the existing ones.",
        )

    def leverage_unchanged(self) -> Applied | Rejected:
        return self.refusal(R.NOT_MODIFIED, code="110043", message="Set leverage not modified")


BYBIT = register(
    BybitDialect(
        venue=Venue.BYBIT,
        capabilities=Capabilities(
            amend_stop=True,
            position_stop=True,
            # /v5/order/create takes `stopLoss` (+ `slTriggerBy`, `tpslMode`, `slOrderType`):
            # the entry carries its stop, attached to the position as it fills (v5 Place Order)
            entry_stop=True,
            amend_limit=True,
            max_conditional_orders=10,
            conditional_cap_per_symbol=True,
            margin_mode_per_symbol=False,  # a unified account's margin mode is account-wide
        ),
        errors=ERRORS,
        rejections=REJECTIONS,
        markets=MARKETS,
        close_position_stops=False,
        # orderLinkId "should be unique" (v5 Place Order): any id used before is refused (110072)
        client_ids_free_once_closed=False,
        # v5 Place Order answers `orderId` and `orderLinkId` only: "The ack of create order
        # request indicates that the request is successfully accepted. Please use websocket
        # order stream to confirm the order status" (bybit-exchange.github.io/docs/v5/order/
        # create-order). The order's state is then read back (the engine's `listing_lag`).
        acknowledges_only=True,
        taker_fee=Decimal("0.00055"),
        order_id_start=0,
        whole_leverage=False,  # POST /v5/position/set-leverage: 0.01 steps
    )
)
