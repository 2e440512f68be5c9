"""The venues' raw JSON (ccxt's `info`) as domain values, exact: strings to Decimal, never float.

ccxt's unified fields are floats; its `info` keeps the venue's own strings, so every number
tradecore reads comes from there.
"""

from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

import attrs

from tradecore.domain.model import OrderSide, Side, Venue
from tradecore.domain.numbers import ZERO
from tradecore.domain.orders import Balance, Order, OrderStatus, OrderType, VenuePosition
from tradecore.domain.pnl import Fill, FundingPayment
from tradecore.domain.precision import MarketRules

Raw = Mapping[str, Any]


class Unreadable(ValueError):
    """The venue sent something that does not parse; the text carries the raw payload."""


def dec(value: object, *, name: str = "number") -> Decimal:
    """An exact Decimal from the venue's text (or int); floats never reach here."""
    if isinstance(value, (bool, float)):
        raise Unreadable(f"{name}: expected a decimal string, got {value!r}")
    try:
        result = Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        raise Unreadable(f"{name}: not a number: {str(value)[:200]!r}") from None
    if not result.is_finite():
        raise Unreadable(f"{name}: not finite: {value!r}")
    return result


def opt_dec(value: object) -> Decimal | None:
    """A Decimal, or None for the venues' spellings of 'none' ("", "0", null)."""
    if value in (None, ""):
        return None
    result = dec(value)
    return None if result == ZERO else result


def _obj(value: object, name: str) -> Mapping[str, Any]:
    """A JSON object the venue must have sent; a missing one reads as empty."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise Unreadable(f"{name}: expected an object, got {str(value)[:200]!r}")
    return value


def _objects(value: object, name: str) -> list[Mapping[str, Any]]:
    """A JSON list of objects; a missing one reads as empty."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise Unreadable(f"{name}: expected a list, got {str(value)[:200]!r}")
    return [_obj(item, name) for item in value]


def _time(ms: object) -> datetime | None:
    try:
        stamp = int(str(ms))
    except ValueError:
        return None
    return datetime.fromtimestamp(stamp / 1000, tz=UTC) if stamp > 0 else None


def _side(raw: object) -> OrderSide:
    text = str(raw).lower()
    if text not in ("buy", "sell"):
        raise Unreadable(f"order side: {raw!r}")
    return OrderSide(text)


# ----------------------------------------------------------------- Binance


def binance_rules(info: Raw, max_leverage: Decimal) -> MarketRules:
    filters = {f.get("filterType"): f for f in _objects(info.get("filters"), "filters")}
    lot = filters.get("LOT_SIZE", {})
    return MarketRules(
        symbol=str(info["symbol"]),
        tick_size=dec(filters.get("PRICE_FILTER", {}).get("tickSize"), name="tickSize"),
        step_size=dec(lot.get("stepSize"), name="stepSize"),
        min_quantity=dec(lot.get("minQty"), name="minQty"),
        min_notional=dec(filters.get("MIN_NOTIONAL", {}).get("notional", "0"), name="notional"),
        max_leverage=max_leverage,
        active=info.get("status") == "TRADING",
    )


_BINANCE_STATUS = {
    "NEW": OrderStatus.OPEN,
    "PARTIALLY_FILLED": OrderStatus.PARTIALLY_FILLED,
    "FILLED": OrderStatus.FILLED,
    "CANCELED": OrderStatus.CANCELED,
    "REJECTED": OrderStatus.REJECTED,
    "EXPIRED": OrderStatus.EXPIRED,
    "EXPIRED_IN_MATCH": OrderStatus.EXPIRED,
}

_BINANCE_ALGO_STATUS = {
    "NEW": OrderStatus.OPEN,
    "TRIGGERING": OrderStatus.TRIGGERED,
    "TRIGGERED": OrderStatus.TRIGGERED,
    "FINISHED": OrderStatus.FILLED,
    "CANCELED": OrderStatus.CANCELED,
    "REJECTED": OrderStatus.REJECTED,
    "EXPIRED": OrderStatus.EXPIRED,
}


def binance_order(info: Raw) -> Order:
    """A regular `/fapi/v1/order` order."""
    kind = str(info.get("type", "")).upper()
    status = _BINANCE_STATUS.get(str(info.get("status")))
    if status is None:
        raise Unreadable(f"order status: {info.get('status')!r}")
    filled = dec(info.get("executedQty", "0"), name="executedQty")
    return Order(
        venue=Venue.BINANCE,
        symbol=str(info["symbol"]),
        order_id=str(info["orderId"]),
        client_order_id=info.get("clientOrderId") or None,
        side=_side(info.get("side")),
        type=OrderType.LIMIT if kind == "LIMIT" else OrderType.MARKET,
        quantity=dec(info.get("origQty"), name="origQty"),
        status=status,
        filled=filled,
        price=opt_dec(info.get("price")),
        average_price=opt_dec(info.get("avgPrice")) if filled > ZERO else None,
        reduce_only=bool(info.get("reduceOnly", False)),
        created_at=_time(info.get("time")),
        updated_at=_time(info.get("updateTime")),
    )


def binance_algo(info: Raw, fill: Order | None = None) -> Order:
    """An algo (conditional) order; `fill` is the order it became once triggered, if known."""
    status = _BINANCE_ALGO_STATUS.get(str(info.get("algoStatus")))
    if status is None:
        raise Unreadable(f"algo status: {info.get('algoStatus')!r}")
    quantity = dec(info.get("quantity") or "0", name="quantity")
    filled, average = ZERO, None
    if fill is not None:
        filled, average = fill.filled, fill.average_price
        if status is OrderStatus.FILLED and filled < quantity:
            status = OrderStatus.EXPIRED  # finished with part of it filled
    elif status is OrderStatus.FILLED:
        average = opt_dec(info.get("actualPrice"))
        filled = quantity
    return Order(
        venue=Venue.BINANCE,
        symbol=str(info["symbol"]),
        order_id=str(info["algoId"]),
        client_order_id=info.get("clientAlgoId") or None,
        side=_side(info.get("side")),
        type=_binance_algo_type(info),
        quantity=quantity,
        status=status,
        filled=filled,
        trigger_price=opt_dec(info.get("triggerPrice")),
        average_price=average,
        reduce_only=bool(info.get("reduceOnly", False)) or bool(info.get("closePosition")),
        close_position=bool(info.get("closePosition", False)),
        created_at=_time(info.get("createTime")),
        updated_at=_time(info.get("updateTime")),
    )


# Binance USDⓈ-M "New Algo Order" (POST /fapi/v1/algoOrder): "For CONDITIONAL algoType,
# STOP_MARKET/TAKE_PROFIT_MARKET/STOP/TAKE_PROFIT/TRAILING_STOP_MARKET as order type". STOP
# and STOP_MARKET trigger against the position (a stop-loss); TAKE_PROFIT(_MARKET) with it;
# TRAILING_STOP_MARKET follows the price (activatePrice, callbackRate). A kind not listed
# there is no stop-loss tradecore knows: never counted as protection.
_BINANCE_ALGO_KINDS = {
    "STOP_MARKET": OrderType.STOP_MARKET,
    "STOP": OrderType.STOP_MARKET,
    "TAKE_PROFIT_MARKET": OrderType.TAKE_PROFIT,
    "TAKE_PROFIT": OrderType.TAKE_PROFIT,
    "TRAILING_STOP_MARKET": OrderType.TRAILING_STOP,
}


def _binance_algo_type(info: Raw) -> OrderType:
    return _BINANCE_ALGO_KINDS.get(str(info.get("orderType", "")).upper(), OrderType.CONDITIONAL)


def binance_algo_cancelled(info: Raw, order: Order) -> Order:
    """`order` cancelled, from the answer to DELETE /fapi/v1/algoOrder: `{"algoId",
    "clientAlgoId", "code": "200", "msg": "success"}` (Binance USDⓈ-M "Cancel Algo Order",
    Response Example; ccxt 4.5.90 binance.py parse_order, "cancelOrder: linear swap
    conditional"). It names the order but not its state, so the order as last listed is
    what was cancelled; an answer naming another order, or not "200", is unreadable."""
    if str(info.get("code")) != "200" or str(info.get("algoId")) != order.order_id:
        raise Unreadable(f"algo cancel answer for {order.order_id}: {str(dict(info))[:200]}")
    return attrs.evolve(order, status=OrderStatus.CANCELED)


def binance_position(info: Raw) -> VenuePosition | None:
    amount = dec(info.get("positionAmt", "0"), name="positionAmt")
    if amount == ZERO:
        return None
    return VenuePosition(
        venue=Venue.BINANCE,
        symbol=str(info["symbol"]),
        side=Side.LONG if amount > ZERO else Side.SHORT,
        quantity=abs(amount),
        entry_price=dec(info.get("entryPrice"), name="entryPrice"),
        mark_price=opt_dec(info.get("markPrice")),
        liquidation_price=opt_dec(info.get("liquidationPrice")),
        unrealized_pnl=dec(info.get("unRealizedProfit", "0"), name="unRealizedProfit"),
    )


def binance_balance(info: Raw) -> Balance:
    for asset in _objects(info.get("assets"), "assets"):
        if asset.get("asset") == "USDT":
            return Balance(
                total=dec(asset.get("marginBalance"), name="marginBalance"),
                free=dec(asset.get("availableBalance"), name="availableBalance"),
                used=dec(asset.get("initialMargin", "0"), name="initialMargin"),
            )
    return Balance(total=ZERO, free=ZERO, used=ZERO)


# ----------------------------------------------------------------- Bybit


def bybit_rules(info: Raw) -> MarketRules:
    lot = _obj(info.get("lotSizeFilter"), "lotSizeFilter")
    return MarketRules(
        symbol=str(info["symbol"]),
        tick_size=dec(_obj(info.get("priceFilter"), "priceFilter").get("tickSize"), name="tick"),
        step_size=dec(lot.get("qtyStep"), name="qtyStep"),
        min_quantity=dec(lot.get("minOrderQty"), name="minOrderQty"),
        min_notional=dec(lot.get("minNotionalValue") or "0", name="minNotionalValue"),
        max_leverage=dec(
            _obj(info.get("leverageFilter"), "leverageFilter").get("maxLeverage"), name="leverage"
        ),
        active=info.get("status") == "Trading",
    )


_BYBIT_STATUS = {
    "New": OrderStatus.OPEN,
    "Untriggered": OrderStatus.OPEN,
    "PartiallyFilled": OrderStatus.PARTIALLY_FILLED,
    "Filled": OrderStatus.FILLED,
    "Cancelled": OrderStatus.CANCELED,
    "PartiallyFilledCanceled": OrderStatus.EXPIRED,
    "Rejected": OrderStatus.REJECTED,
    "Deactivated": OrderStatus.EXPIRED,
    "Triggered": OrderStatus.TRIGGERED,
}


def bybit_order(info: Raw) -> Order:
    status = _BYBIT_STATUS.get(str(info.get("orderStatus")))
    if status is None:
        raise Unreadable(f"order status: {info.get('orderStatus')!r}")
    stop_type = str(info.get("stopOrderType") or "")
    if stop_type == _BYBIT_PLAIN:
        stop_type = ""
    kind = _bybit_kind(info, stop_type)
    filled = dec(info.get("cumExecQty") or "0", name="cumExecQty")
    return Order(
        venue=Venue.BYBIT,
        symbol=str(info["symbol"]),
        order_id=str(info["orderId"]),
        client_order_id=info.get("orderLinkId") or None,
        side=_side(info.get("side")),
        type=kind,
        quantity=dec(info.get("qty") or "0", name="qty"),
        status=status,
        filled=filled,
        price=opt_dec(info.get("price")) if kind is OrderType.LIMIT else None,
        trigger_price=opt_dec(info.get("triggerPrice")) if stop_type else None,
        average_price=opt_dec(info.get("avgPrice")) if filled > ZERO else None,
        reduce_only=bool(info.get("reduceOnly", False)),
        close_position=bool(info.get("closeOnTrigger", False)),
        position_idx=int(info.get("positionIdx") or 0),
        created_at=_time(info.get("createdTime")),
        updated_at=_time(info.get("updatedTime")),
    )


# Bybit v5 `stopOrderType` (bybit-exchange.github.io/docs/v5/enum#stopordertype):
# TakeProfit, StopLoss, TrailingStop, Stop, PartialTakeProfit, PartialStopLoss, tpslOrder,
# OcoOrder, BidirectionalTpslOrder (the last three spot only), MmRateClose ("On web or app
# can set MMR to close position": no price trigger). "" is a plain order, and so is
# "UNKNOWN": the REST examples of a plain Limit order say "stopOrderType": "UNKNOWN" (v5 Get
# Open & Closed Orders, Get Order History, Get Trade History), the websocket's "".
_BYBIT_PLAIN = "UNKNOWN"
_BYBIT_STOP_LOSSES = frozenset({"StopLoss", "PartialStopLoss"})
_BYBIT_TAKE_PROFITS = frozenset({"TakeProfit", "PartialTakeProfit"})


def _bybit_kind(info: Raw, stop_type: str) -> OrderType:
    if not stop_type:
        return OrderType.LIMIT if info.get("orderType") == "Limit" else OrderType.MARKET
    if stop_type == "StopLoss" and info.get("tpslMode") == "Full":
        return OrderType.POSITION_STOP  # trading-stop's whole-position stop-loss
    if stop_type in _BYBIT_STOP_LOSSES:
        return OrderType.STOP_MARKET
    if stop_type in _BYBIT_TAKE_PROFITS:
        return OrderType.TAKE_PROFIT
    if stop_type == "TrailingStop":
        return OrderType.TRAILING_STOP
    if stop_type == "Stop":
        return OrderType.TAKE_PROFIT if _bybit_rises_to_profit(info) else OrderType.STOP_MARKET
    return OrderType.CONDITIONAL  # MmRateClose, spot kinds, anything added later


def _bybit_rises_to_profit(info: Raw) -> bool:
    """A conditional order that triggers when the price moves its position's way — a sell
    when it rises to the trigger, a buy when it falls to it (`triggerDirection` 1 = rises
    to, 2 = falls to; Bybit v5 "Place Order") — is a take-profit."""
    direction = str(info.get("triggerDirection") or "")
    side = str(info.get("side") or "")
    return (side, direction) in (("Sell", "1"), ("Buy", "2"))


def bybit_position(info: Raw) -> VenuePosition | None:
    size = dec(info.get("size") or "0", name="size")
    if size == ZERO:
        return None
    return VenuePosition(
        venue=Venue.BYBIT,
        symbol=str(info["symbol"]),
        side=Side.LONG if info.get("side") == "Buy" else Side.SHORT,
        quantity=size,
        entry_price=dec(info.get("avgPrice"), name="avgPrice"),
        mark_price=opt_dec(info.get("markPrice")),
        position_idx=int(info.get("positionIdx") or 0),
        stop_price=opt_dec(info.get("stopLoss")),
        liquidation_price=opt_dec(info.get("liqPrice")),
        unrealized_pnl=opt_dec(info.get("unrealisedPnl")),
    )


def bybit_balance(info: Raw) -> Balance:
    for account in _objects(_obj(info.get("result"), "result").get("list"), "list"):
        for coin in _objects(account.get("coin"), "coin"):
            if coin.get("coin") == "USDT":
                total = dec(coin.get("equity") or "0", name="equity")
                used = dec(coin.get("totalPositionIM") or "0", name="totalPositionIM")
                used += dec(coin.get("totalOrderIM") or "0", name="totalOrderIM")
                free = dec(account.get("totalAvailableBalance") or "0", name="available")
                return Balance(total=total, free=free, used=used)
    return Balance(total=ZERO, free=ZERO, used=ZERO)


# ----------------------------------------------------------------- fills and funding


def _required_time(ms: object, name: str) -> datetime:
    at = _time(ms)
    if at is None:
        raise Unreadable(f"{name}: not a time in ms: {ms!r}")
    return at


def binance_fill(info: Raw) -> Fill:
    """One row of `GET /fapi/v1/userTrades` (Account Trade List): `commission` in
    `commissionAsset`, taken as ccxt's unified trade takes it (`fee.cost`), paid when positive.
    The venue names no client id on a trade (match by `orderId`)."""
    return Fill(
        symbol=str(info["symbol"]),
        order_id=str(info["orderId"]),
        client_order_id=None,
        side=_side(info["side"]),
        price=dec(info["price"], name="price"),
        quantity=dec(info["qty"], name="qty"),
        fee=dec(info.get("commission", "0"), name="commission"),
        fee_asset=str(info.get("commissionAsset") or "USDT"),
        at=_required_time(info["time"], "time"),
        trade_id=str(info["id"]),
    )


def binance_funding(info: Raw) -> FundingPayment | None:
    """One row of `GET /fapi/v1/income`; a FUNDING_FEE's `income` is negative when paid."""
    if info.get("incomeType") != "FUNDING_FEE":
        return None
    return FundingPayment(
        symbol=str(info["symbol"]),
        amount=dec(info["income"], name="income"),
        asset=str(info.get("asset") or "USDT"),
        at=_required_time(info["time"], "time"),
        payment_id=str(info.get("tranId", "")) or None,
    )


# Executions that move the position (Bybit v5 enum execType): a trade, an auto-deleverage,
# a liquidation takeover (BustTrade), a delivery or settlement; "Funding" rows are not fills.
_BYBIT_FILL_TYPES = frozenset({"Trade", "AdlTrade", "BustTrade", "Delivery", "Settle"})


def bybit_fill(info: Raw) -> Fill | None:
    """One row of `GET /v5/execution/list` (Get Trade History); `execFee` is paid when
    positive (a maker rebate is negative); None for a row that is no fill (funding)."""
    if str(info.get("execType", "Trade")) not in _BYBIT_FILL_TYPES:
        return None
    return Fill(
        symbol=str(info["symbol"]),
        order_id=str(info["orderId"]),
        client_order_id=str(info.get("orderLinkId") or "") or None,
        side=_side(info["side"]),
        price=dec(info["execPrice"], name="execPrice"),
        quantity=dec(info["execQty"], name="execQty"),
        fee=dec(info.get("execFee") or "0", name="execFee"),
        fee_asset=str(info.get("feeCurrency") or "USDT"),
        at=_required_time(info["execTime"], "execTime"),
        trade_id=str(info.get("execId") or "") or None,
    )


def bybit_funding(info: Raw) -> FundingPayment | None:
    """One SETTLEMENT row of `GET /v5/account/transaction-log`: `funding` is positive when
    received, negative when paid (Bybit v5 Get Transaction Log)."""
    if info.get("type") != "SETTLEMENT" or info.get("funding") in (None, ""):
        return None
    return FundingPayment(
        symbol=str(info["symbol"]),
        amount=dec(info["funding"], name="funding"),
        asset=str(info.get("currency") or "USDT"),
        at=_required_time(info["transactionTime"], "transactionTime"),
        payment_id=str(info.get("id") or "") or None,
    )
