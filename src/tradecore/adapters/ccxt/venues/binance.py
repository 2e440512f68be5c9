"""Binance USDⓈ-M futures through ccxt's `binanceusdm`: the venue's facts and behaviour.

Stops are algo orders (`/fapi/v1/algoOrder`): every fetch, list and cancel of one passes
`{'trigger': True}`, and listings merge the plain and the algo lists. No stop amend and no
position stop (the capabilities say so): callers replace a stop create-first. Sources: the
corpus (src/tradecore/testing/corpus/binance/), developers.binance.com/docs/derivatives/
usds-margined-futures/, and ccxt 4.5.90 binance.py, as cited at each fact.
"""

from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from functools import partial
from typing import TYPE_CHECKING, Any

import attrs
import ccxt.async_support as ccxt
import ccxt.pro as ccxt_pro

from tradecore.adapters.ccxt import candles, parse
from tradecore.adapters.ccxt.limiter import Budget, Costs, Heard, VenueCount, VenueLimits
from tradecore.adapters.ccxt.profiles import CcxtProfile, Refusals
from tradecore.adapters.ccxt.venues import CheckFacts, register
from tradecore.adapters.readback import proven
from tradecore.domain.leverage import LeverageTier, MarginMode
from tradecore.domain.model import Side, Venue
from tradecore.domain.numbers import ZERO
from tradecore.domain.orders import (
    Balance,
    MarkCandle,
    Order,
    OrderRole,
    OrderStatus,
    OrderType,
    VenuePosition,
    role_of,
)
from tradecore.domain.pnl import Fill, FundingPayment
from tradecore.domain.precision import MarketRules
from tradecore.domain.symbols import to_venue
from tradecore.ports.exchange import (
    Capabilities,
    ExchangeUnavailable,
    Outcome,
    Rejected,
    RejectReason,
    SettingOutcome,
)

if TYPE_CHECKING:
    from tradecore.adapters.ccxt.exchange import CcxtExchange
    from tradecore.adapters.ccxt.venue_check import VenueCheck

R = RejectReason
ONE = Decimal(1)

# ---------------------------------------------------------------- reading answers


def read_rules(info: parse.Raw, max_leverage: Decimal) -> MarketRules:
    filters = {f.get("filterType"): f for f in parse.objects(info.get("filters"), "filters")}
    lot = filters.get("LOT_SIZE", {})
    return MarketRules(
        symbol=str(info["symbol"]),
        tick_size=parse.dec(filters.get("PRICE_FILTER", {}).get("tickSize"), name="tickSize"),
        step_size=parse.dec(lot.get("stepSize"), name="stepSize"),
        min_quantity=parse.dec(lot.get("minQty"), name="minQty"),
        min_notional=parse.dec(
            filters.get("MIN_NOTIONAL", {}).get("notional", "0"), name="notional"
        ),
        max_leverage=max_leverage,
        active=info.get("status") == "TRADING",
    )


_STATUS = {
    "NEW": OrderStatus.OPEN,
    "PARTIALLY_FILLED": OrderStatus.PARTIALLY_FILLED,
    "FILLED": OrderStatus.FILLED,
    "CANCELED": OrderStatus.CANCELED,
    "REJECTED": OrderStatus.REJECTED,
    "EXPIRED": OrderStatus.EXPIRED,
    "EXPIRED_IN_MATCH": OrderStatus.EXPIRED,
}

_ALGO_STATUS = {
    "NEW": OrderStatus.OPEN,
    "TRIGGERING": OrderStatus.TRIGGERED,
    "TRIGGERED": OrderStatus.TRIGGERED,
    "FINISHED": OrderStatus.FILLED,
    "CANCELED": OrderStatus.CANCELED,
    "REJECTED": OrderStatus.REJECTED,
    "EXPIRED": OrderStatus.EXPIRED,
}


def read_plain(info: parse.Raw) -> Order:
    """A regular `/fapi/v1/order` order."""
    kind = str(info.get("type", "")).upper()
    status = _STATUS.get(str(info.get("status")))
    if status is None:
        raise parse.Unreadable(f"order status: {info.get('status')!r}")
    filled = parse.dec(info.get("executedQty", "0"), name="executedQty")
    return Order(
        venue=Venue.BINANCE,
        symbol=str(info["symbol"]),
        order_id=str(info["orderId"]),
        client_order_id=info.get("clientOrderId") or None,
        side=parse.side_of(info.get("side")),
        type=OrderType.LIMIT if kind == "LIMIT" else OrderType.MARKET,
        quantity=parse.dec(info.get("origQty"), name="origQty"),
        status=status,
        filled=filled,
        price=parse.opt_dec(info.get("price")),
        average_price=parse.opt_dec(info.get("avgPrice")) if filled > ZERO else None,
        reduce_only=bool(info.get("reduceOnly", False)),
        created_at=parse.time_of(info.get("time")),
        updated_at=parse.time_of(info.get("updateTime")),
    )


def read_algo(info: parse.Raw, fill: Order | None = None) -> Order:
    """An algo (conditional) order; `fill` is the order it became once triggered, if known."""
    status = _ALGO_STATUS.get(str(info.get("algoStatus")))
    if status is None:
        raise parse.Unreadable(f"algo status: {info.get('algoStatus')!r}")
    quantity = parse.dec(info.get("quantity") or "0", name="quantity")
    filled, average = ZERO, None
    if fill is not None:
        filled, average = fill.filled, fill.average_price
        if status is OrderStatus.FILLED and filled < quantity:
            status = OrderStatus.EXPIRED  # finished with part of it filled
    elif status is OrderStatus.FILLED:
        average = parse.opt_dec(info.get("actualPrice"))
        filled = quantity
    return Order(
        venue=Venue.BINANCE,
        symbol=str(info["symbol"]),
        order_id=str(info["algoId"]),
        client_order_id=info.get("clientAlgoId") or None,
        side=parse.side_of(info.get("side")),
        type=_algo_type(info),
        quantity=quantity,
        status=status,
        filled=filled,
        trigger_price=parse.opt_dec(info.get("triggerPrice")),
        average_price=average,
        reduce_only=bool(info.get("reduceOnly", False)) or bool(info.get("closePosition")),
        close_position=bool(info.get("closePosition", False)),
        created_at=parse.time_of(info.get("createTime")),
        updated_at=parse.time_of(info.get("updateTime")),
    )


# Binance USDⓈ-M "New Algo Order" (POST /fapi/v1/algoOrder): "For CONDITIONAL algoType,
# STOP_MARKET/TAKE_PROFIT_MARKET/STOP/TAKE_PROFIT/TRAILING_STOP_MARKET as order type". STOP
# and STOP_MARKET trigger against the position (a stop-loss); TAKE_PROFIT(_MARKET) with it;
# TRAILING_STOP_MARKET follows the price (activatePrice, callbackRate). A kind not listed
# there is no stop-loss tradecore knows: never counted as protection.
_ALGO_KINDS = {
    "STOP_MARKET": OrderType.STOP_MARKET,
    "STOP": OrderType.STOP_MARKET,
    "TAKE_PROFIT_MARKET": OrderType.TAKE_PROFIT,
    "TAKE_PROFIT": OrderType.TAKE_PROFIT,
    "TRAILING_STOP_MARKET": OrderType.TRAILING_STOP,
}


def _algo_type(info: parse.Raw) -> OrderType:
    return _ALGO_KINDS.get(str(info.get("orderType", "")).upper(), OrderType.CONDITIONAL)


def read_algo_cancelled(info: parse.Raw, order: Order) -> Order:
    """`order` cancelled, from the answer to DELETE /fapi/v1/algoOrder: `{"algoId",
    "clientAlgoId", "code": "200", "msg": "success"}` (Binance USDⓈ-M "Cancel Algo Order",
    Response Example; ccxt 4.5.90 binance.py parse_order, "cancelOrder: linear swap
    conditional"). It names the order but not its state, so the order as last listed is
    what was cancelled; an answer naming another order, or not "200", is unreadable."""
    if str(info.get("code")) != "200" or str(info.get("algoId")) != order.order_id:
        raise parse.Unreadable(f"algo cancel answer for {order.order_id}: {str(dict(info))[:200]}")
    return attrs.evolve(order, status=OrderStatus.CANCELED)


def read_position(info: parse.Raw) -> VenuePosition | None:
    amount = parse.dec(info.get("positionAmt", "0"), name="positionAmt")
    if amount == ZERO:
        return None
    return VenuePosition(
        venue=Venue.BINANCE,
        symbol=str(info["symbol"]),
        side=Side.LONG if amount > ZERO else Side.SHORT,
        quantity=abs(amount),
        entry_price=parse.dec(info.get("entryPrice"), name="entryPrice"),
        mark_price=parse.opt_dec(info.get("markPrice")),
        liquidation_price=parse.opt_dec(info.get("liquidationPrice")),
        unrealized_pnl=parse.dec(info.get("unRealizedProfit", "0"), name="unRealizedProfit"),
    )


def read_balance(info: parse.Raw) -> Balance:
    for asset in parse.objects(info.get("assets"), "assets"):
        if asset.get("asset") == "USDT":
            return Balance(
                total=parse.dec(asset.get("marginBalance"), name="marginBalance"),
                free=parse.dec(asset.get("availableBalance"), name="availableBalance"),
                used=parse.dec(asset.get("initialMargin", "0"), name="initialMargin"),
            )
    return Balance(total=ZERO, free=ZERO, used=ZERO)


def read_fill(info: parse.Raw) -> Fill:
    """One row of `GET /fapi/v1/userTrades` (Account Trade List): `commission` in
    `commissionAsset`, taken as ccxt's unified trade takes it (`fee.cost`), paid when positive.
    The venue names no client id on a trade (match by `orderId`)."""
    return Fill(
        symbol=str(info["symbol"]),
        order_id=str(info["orderId"]),
        client_order_id=None,
        side=parse.side_of(info["side"]),
        price=parse.dec(info["price"], name="price"),
        quantity=parse.dec(info["qty"], name="qty"),
        fee=parse.dec(info.get("commission", "0"), name="commission"),
        fee_asset=str(info.get("commissionAsset") or "USDT"),
        at=parse.required_time(info["time"], "time"),
        trade_id=str(info["id"]),
    )


def read_funding(info: parse.Raw) -> FundingPayment | None:
    """One row of `GET /fapi/v1/income`; a FUNDING_FEE's `income` is negative when paid."""
    if info.get("incomeType") != "FUNDING_FEE":
        return None
    return FundingPayment(
        symbol=str(info["symbol"]),
        amount=parse.dec(info["income"], name="income"),
        asset=str(info.get("asset") or "USDT"),
        at=parse.required_time(info["time"], "time"),
        payment_id=str(info.get("tranId", "")) or None,
    )


PROFILE = CcxtProfile(
    venue=Venue.BINANCE,
    capabilities=Capabilities(
        amend_stop=False,
        position_stop=False,
        amend_limit=True,
        max_conditional_orders=200,
        close_position_stop=True,  # closePosition=true (New Algo Order), one per direction
    ),
    refusals=Refusals(
        unknown_symbol=("-1121", "Invalid symbol."),
        not_a_number="-1100",
        quantity_not_positive="-4003",
        price_not_positive="-4001",
        stop_not_positive="-4006",
        too_precise="-1111",
        off_step="-4023",
        off_tick="-4014",
        below_min_quantity="-4004",
        order_not_found=("-2013", "Order does not exist."),
    ),
    options={"fetchCurrencies": False, "warnOnFetchOpenOrdersWithoutSymbol": False},
    order_params={},
    stop_params={"workingType": "MARK_PRICE"},  # ccxt routes the stop to /fapi/v1/algoOrder
    # Close-All: USDⓈ-M "New Algo Order" (POST /fapi/v1/algoOrder): closePosition "true,
    # false; Close-All, used with STOP_MARKET or TAKE_PROFIT_MARKET", quantity "Cannot be sent
    # with closePosition=true(Close-All)". ccxt 4.5.90 binance.create_order_request requires
    # no quantity for a STOP_MARKET with closePosition (quantityIsRequired stays False) and
    # sends none; reduceOnly is not sent with it (a Close-All stop only ever closes). A bool,
    # not "true": ccxt reads the flag with safe_bool (a string is not read, and the quantity
    # goes out) and its urlencode writes a bool as "true".
    close_position_params={"closePosition": True},
    mark_field="p",
    read_order=lambda info: read_algo(info) if "algoId" in info else read_plain(info),
    read_position=read_position,
    read_balance=read_balance,
)

# ---------------------------------------------------------------- error codes
CODES: dict[str, RejectReason] = {
    "-2021": R.WOULD_TRIGGER_IMMEDIATELY,
    "-2011": R.ORDER_NOT_FOUND,
    "-2013": R.ORDER_NOT_FOUND,
    "-4116": R.DUPLICATE_CLIENT_ID,
    "-2022": R.REDUCE_ONLY_WOULD_INCREASE,
    "-4164": R.BELOW_MIN_NOTIONAL,
    "-2019": R.INSUFFICIENT_BALANCE,
    "-4014": R.INVALID_PRICE,
    "-4001": R.INVALID_PRICE,
    "-4002": R.INVALID_PRICE,
    "-4006": R.INVALID_PRICE,
    "-4007": R.INVALID_PRICE,
    "-4003": R.INVALID_QUANTITY,
    "-4004": R.INVALID_QUANTITY,
    "-4005": R.INVALID_QUANTITY,
    "-4023": R.INVALID_QUANTITY,
    "-1121": R.UNKNOWN_SYMBOL,
    "-4140": R.SYMBOL_UNAVAILABLE,
    "-4045": R.TOO_MANY_CONDITIONAL_ORDERS,
    "-4130": R.STOP_ALREADY_EXISTS,
    "-1111": R.INVALID_PRICE,  # "Precision is over the maximum": told apart by its text
    "-5027": R.NOT_MODIFIED,  # "No need to modify the order."
    # POST /fapi/v1/marginType to the mode the symbol already has: -4046
    # NO_NEED_TO_CHANGE_MARGIN_TYPE "No need to change margin type." (USDⓈ-M "Error Codes",
    # developers.binance.com/docs/derivatives/usds-margined-futures/error-code; ccxt 4.5.90
    # binance.py linear exceptions raise OperationRejected); the setting holds: done
    "-4046": R.NOT_MODIFIED,
    "-4028": R.INVALID_LEVERAGE,  # INVALID_LEVERAGE, "Leverage 150 is not valid"
    "-4047": R.MARGIN_MODE_LOCKED,  # "...cannot be changed if there exists open orders."
    "-4048": R.MARGIN_MODE_LOCKED,  # "...cannot be changed if there exists position."
    "-1003": R.RATE_LIMITED,
    "-1008": R.VENUE_UNAVAILABLE,  # overloaded: refused, try again later
    "-2015": R.AUTHENTICATION,
    "-2014": R.AUTHENTICATION,
    "451": R.REGION_RESTRICTED,  # the HTTP status: Binance's body says code 0 (see below)
}
# -1100 "Illegal characters found in a parameter" and -1111 "Precision is over the maximum"
# name no parameter in their code: the text says whether it was the quantity.
_PARAMETER_CODES = frozenset({"-1100", "-1111"})

# The venue's own failure, execution status unknown (USDⓈ-M error-code page): -1000 UNKNOWN
# "An unknown error occurred while processing the request", -1001 DISCONNECTED "Internal
# error; unable to process your request", -1006 UNEXPECTED_RESP "... Execution status
# unknown", -1007 TIMEOUT "... Send status unknown; execution status unknown".
EXECUTION_UNKNOWN_CODES = frozenset({"-1000", "-1001", "-1006", "-1007"})

# ---------------------------------------------------------------- rate limits
# "The default rate limit per IP is 2,400/min, and the default order limit per account/
# sub-account is 1,200/min ... For order limit, there is an additional 10-second limit,
# default at 300/10s." (binance.com/en/support/faq/rate-limits-on-binance-futures-
# 281596e222414cdd9051664ea621cdc3). "The limits on the API are based on the IPs, not the
# API keys"; "The order rate limit is counted against each account" (developers.binance.com/
# docs/derivatives/usds-margined-futures/general-info, LIMITS).
IP = "ip-weight-1m"
ORDERS_10S = "orders-10s"
ORDERS_1M = "orders-1m"
_FAQ = "binance.com/en/support/faq/rate-limits-on-binance-futures-281596e222414cdd9051664ea621cdc3"
# A tenth of each budget is kept for stops (`Budget.reserve`, docs/venues.md "Rate limits"):
# entries, queries and sweeps stop short of it, so another client spending the same IP or
# account never leaves a stop waiting behind them.
BUDGETS = (
    Budget(name=IP, limit=2400, window=60.0, source=_FAQ, reserve=240),
    Budget(name=ORDERS_10S, limit=300, window=10.0, source=_FAQ, reserve=30),
    Budget(name=ORDERS_1M, limit=1200, window=60.0, source=_FAQ, reserve=120),
)

# Request weights (IP), from each endpoint's page under developers.binance.com/docs/
# derivatives/usds-margined-futures/: New Order and Modify Order "1 on 10s order rate
# limit(X-MBX-ORDER-COUNT-10S); 1 on 1min order rate limit(X-MBX-ORDER-COUNT-1M); 0 on IP
# rate limit"; New Algo Order "0 on IP rate limit" (its order count is not stated: charged
# like an order, which can only be safe); Cancel Order 1; Current All Open Orders and
# Current All Algo Open Orders "1 for a single symbol; 40 when the symbol parameter is
# omitted"; Position Information V2/V3 5; balance 5 (announcement of 2021-02-23, "weights
# will be updated to 5": GET /fapi/v2/balance, /fapi/v2/positionRisk). The rest as ccxt
# 4.5 lists them for fapi (binance.py `api`), where the venue's page was not checked.
_WEIGHT = {
    "order": 1,  # GET (query) and DELETE (cancel)
    "algoOrder": 1,
    "positionRisk": 5,
    "balance": 5,
    "account": 5,
    "userTrades": 5,
    "income": 30,
    "exchangeInfo": 1,
    "leverageBracket": 1,
    "time": 1,
    "leverage": 1,
    "marginType": 1,
}
_PER_SYMBOL = {"openOrders": 40, "openAlgoOrders": 40, "premiumIndex": 10}
_CANDLES = 1000  # markPriceKlines a page: "[500, 1000]" weighs 5 (Mark Price Kline)
_INTERVALS = {1: "1m", 5: "5m", 15: "15m", 60: "1h", 240: "4h", 1440: "1d"}
_UNLISTED = 10


def costs(method: str, path: str, api: Any, params: Mapping[str, Any]) -> Costs:
    if path in ("order", "algoOrder", "batchOrders") and method in ("POST", "PUT"):
        return {ORDERS_10S: 1, ORDERS_1M: 1}
    if path == "markPriceKlines":  # by limit: [1,100) 1, [100,500) 2, [500,1000] 5, >1000 10
        limit = int(params.get("limit", 500))
        return {IP: 1 if limit < 100 else 2 if limit < 500 else 5 if limit <= 1000 else 10}
    if path in _PER_SYMBOL:
        return {IP: 1 if params.get("symbol") else _PER_SYMBOL[path]}
    return {IP: _WEIGHT.get(path, _UNLISTED)}


# What the venue has counted, in every answer's headers (USDⓈ-M General Info, LIMITS,
# developers.binance.com/docs/derivatives/usds-margined-futures/general-info): "Every request
# will contain X-MBX-USED-WEIGHT-(intervalNum)(intervalLetter) in the response headers which
# has the current used weight for the IP for all request rate limiters defined"; "Every order
# response will contain a X-MBX-ORDER-COUNT-(intervalNum)(intervalLetter) header which has
# the current order count for the account for all order rate limiters defined. Rejected/
# unsuccessful orders are not guaranteed to have X-MBX-ORDER-COUNT-** headers"; "A
# Retry-After header is sent with a 418 or 429 responses and will give the number of seconds
# required to wait, in the case of a 429, to prevent a ban". The intervals are fixed: "a 1
# MINUTE interval starts every minute ... Once the 00:02:00 minute starts, the count will
# reset to zero again" (Binance "Rate limits", websocket-api; the same rule for REST): a
# count holds until its interval's end (on our clock; `load_time_difference` keeps it near
# the venue's).
_COUNT_HEADERS = {
    "x-mbx-used-weight-1m": (IP, 60),
    "x-mbx-order-count-10s": (ORDERS_10S, 10),
    "x-mbx-order-count-1m": (ORDERS_1M, 60),
}


def _interval_end(now: datetime, seconds: int) -> datetime:
    start = int(now.timestamp()) // seconds * seconds
    return datetime.fromtimestamp(start + seconds, tz=now.tzinfo)


def heard(path: str, status: int, headers: Mapping[str, str], body: str, now: datetime) -> Heard:
    """The counts in an answer's X-MBX-* headers; a 429 refuses until its Retry-After."""
    counts = []
    retry_after: float | None = None
    for name, value in headers.items():
        key = name.lower()
        text = str(value).strip()
        if key in _COUNT_HEADERS and text.isdigit():
            budget, seconds = _COUNT_HEADERS[key]
            counts.append(
                VenueCount(budget=budget, used=int(text), until=_interval_end(now, seconds))
            )
        elif key == "retry-after" and text.isdigit():
            retry_after = float(text)
    if status != 429:
        return Heard(counts=tuple(counts))
    retry_at = None if retry_after is None else now + timedelta(seconds=retry_after)
    return Heard(counts=tuple(counts), refused=True, retry_at=retry_at)


LIMITS = VenueLimits(budgets=BUDGETS, weigh=costs, read=heard)

_PAGE = 1000  # userTrades' maximum limit
_WINDOW_MS = 7 * 24 * 3600 * 1000 - 1  # userTrades: at most 7 days a request


def _ready(value: Any) -> Callable[[], Awaitable[Any]]:
    async def give() -> Any:
        return value

    return give


class BinanceDialect:
    venue = Venue.BINANCE
    display_name = "Binance USDⓈ-M"
    profile = PROFILE
    codes: Mapping[str, RejectReason] = CODES
    execution_unknown_codes = EXECUTION_UNKNOWN_CODES
    # -1021 INVALID_TIMESTAMP "Timestamp for this request is outside of the recvWindow."
    # (corpus error__m1021_*; ccxt raises BadRequest for it on linear, not InvalidNonce)
    clock_skew_codes = frozenset({"-1021"})
    # ccxt catches -4046 "No need to change margin type." itself and returns its body
    already_done_codes = frozenset({"-4046"})
    limits = LIMITS
    has_testnet = False  # Binance USDⓈ-M has no futures testnet through ccxt any more
    # POST /fapi/v1/leverage takes an INT "target initial leverage: int from 1 to 125"
    # (USDⓈ-M "Change Initial Leverage"); ccxt's set_leverage refuses a fraction itself
    whole_number_leverage = True
    # GET /fapi/v1/symbolConfig?symbol= answers [{symbol, marginType, leverage, …}] (weight 5;
    # without a symbol, every symbol's): ccxt fetch_margin_mode's request, 4.5.90
    settings_in_one_answer = True
    # 418: "IP bans are tracked and scale in duration for repeat offenders, from 2 minutes to
    # 3 days" (USDⓈ-M General Info, Limits)
    ip_ban_statuses: Mapping[int, timedelta] = {418: timedelta(minutes=2)}
    check_facts = CheckFacts(
        tiers=("leverageBracket__usdm",),
        leverage=("leverage__change",),
        margin_mode=("marginType__change", "error__m4046_no_need_to_change_margin_type"),
        unknown_client_id=("error__m2013_order_does_not_exist",),
        entry_read_back=("order__create_result", "allOrders__list"),
        stop_and_take_profit=(
            "openAlgoOrders__list_take_profit",
            "algoOrder__create_take_profit",
        ),
        mark_candles=("markPriceKlines__list",),
    )

    def client_class(self, *, websockets: bool) -> type[ccxt.Exchange]:
        cls: type[ccxt.Exchange] = ccxt_pro.binanceusdm if websockets else ccxt.binanceusdm
        return cls

    def prepare_client(self, client: ccxt.Exchange) -> None:
        return None

    def reason_for(self, code: str, message: str) -> RejectReason | None:
        if code in _PARAMETER_CODES:
            return R.INVALID_QUANTITY if "quantity" in message.lower() else R.INVALID_PRICE
        return CODES.get(code)

    # ------------------------------------------------------------ reading answers

    def read_order(self, info: Mapping[str, Any], *, conditional: bool = False) -> Order:
        return read_algo(info) if conditional else PROFILE.read_order(info)

    async def market_rules(
        self, ex: "CcxtExchange", markets: Mapping[str, Any]
    ) -> Sequence[MarketRules]:
        return await ex._query(
            lambda: ex.client.fetch_leverage_tiers(list(markets)),
            lambda tiers: _rules(markets, tiers),
        )

    # ------------------------------------------------------------ orders

    def listing_params(self, symbol: str | None, *, stops: bool) -> dict[str, Any]:
        return {"trigger": True} if stops else {}

    async def placed(self, ex: "CcxtExchange", symbol: str, raw: Mapping[str, Any]) -> Order:
        """A Binance answer that leaves a market order open is read again on the plain
        order endpoint until its state is proven."""
        info = raw["info"]
        order = PROFILE.read_order(info)
        if "algoId" in info:
            ex._algos[order.order_id] = order
        if proven(order):
            return order
        placed, unified = order.order_id, to_venue(symbol)
        return await ex._proven(
            lambda: ex._maybe(lambda: ex.client.fetch_order(placed, unified)),
            f"binance took order {placed}",
        )

    async def find_by_client_id(self, ex: "CcxtExchange", unified: str, cid: str) -> Order | None:
        """The role letter of our client id names the endpoint the order lives on: a stop
        is an algo order (`GET /fapi/v1/algoOrder`, `clientAlgoId`), an entry or an exit a
        plain one (`GET /fapi/v1/order`, `origClientOrderId`, which answers an unknown id
        with -2013 "Order does not exist"). Only an id that is not ours is asked on both,
        the plain endpoint first; no answer depends on what the algo endpoint says of a
        `clientAlgoId` it does not hold, which the sources reachable here do not document."""
        role = role_of(cid)
        if role is OrderRole.STOP:
            return await _algo(ex, unified, {"clientOrderId": cid})
        by_cid = {"clientOrderId": cid}
        plain = await ex._maybe(lambda: ex.client.fetch_order(None, unified, by_cid))
        if plain is not None or role is not OrderRole.FOREIGN:
            return plain
        return await _algo(ex, unified, {"clientOrderId": cid})

    async def find_order(self, ex: "CcxtExchange", unified: str, order_id: str) -> Order | None:
        if not isinstance(order_id, str) or not order_id.isdigit():
            return None  # Binance ids are integers: no such order can exist
        if order_id in ex._algos:
            return await _algo(ex, unified, {"algoId": order_id})
        regular = await ex._maybe(lambda: ex.client.fetch_order(order_id, unified))
        if regular is not None:
            return regular
        return await _algo(ex, unified, {"algoId": order_id})

    async def read_amended(
        self, ex: "CcxtExchange", symbol: str, order_id: str, raw: Mapping[str, Any]
    ) -> Order:
        return read_plain(raw["info"])

    def amend_stop_params(self, trigger: str) -> dict[str, Any]:
        raise NotImplementedError("Binance cannot move a stop in place (amend_stop=False)")

    def entry_stop_params(self, trigger: str) -> dict[str, Any]:
        raise NotImplementedError("a Binance order carries no stop-loss (entry_stop=False)")

    async def cancel(self, ex: "CcxtExchange", symbol: str, order_id: str) -> Outcome:
        unified = to_venue(symbol)
        algo = ex._algos.get(order_id) or await _open_algo(ex, unified, order_id)
        if algo is None:
            return await ex._command(
                None,
                lambda: ex.client.cancel_order(order_id, unified),
                lambda raw: _ready(PROFILE.read_order(raw["info"]))(),
            )

        async def cancelled(raw: Mapping[str, Any]) -> Order:
            order = _algo_cancelled(raw["info"], algo)
            ex._algos[order.order_id] = order
            return order

        return await ex._command(
            None, lambda: ex.client.cancel_order(order_id, unified, {"trigger": True}), cancelled
        )

    def position_stop(
        self, client: ccxt.Exchange, symbol: str, trigger: str | None
    ) -> Awaitable[Any]:
        raise NotImplementedError("Binance has no position-attached stop (position_stop=False)")

    # ------------------------------------------------------------ history, marks

    async def fills(self, ex: "CcxtExchange", unified: str, start_ms: int) -> list[Fill]:
        """`GET /fapi/v1/userTrades` (oldest first, 1000 a page), paged here by time, in
        windows of 7 days from `start_ms` to now: one request answers at most 7 days ("The
        time between startTime and endTime cannot be longer than 7 days"; ccxt sends
        `endTime` = `startTime` + 7 days for an older `since`), so a position held longer
        would miss its later fills. A fill of the market order a fired stop became
        (`actualOrderId`) is named by the stop's algoId, the id the application placed it
        under and asks for (`_algo` notes it)."""
        found: dict[str, Fill] = {}
        now_ms = int(ex._clock.now().timestamp() * 1000)
        window = start_ms
        while True:
            end = window + _WINDOW_MS
            start = window
            while True:
                page = await _trades(ex, unified, start, end)
                fresh = [f for f in page if (f.trade_id or "") not in found]
                found.update({f.trade_id or f"{f.order_id}@{f.at}": f for f in page})
                if len(page) < _PAGE or not fresh:
                    break
                start = max(int(f.at.timestamp() * 1000) for f in page)  # ids dedupe the ms
            if end >= now_ms:
                break
            window = end + 1
        return [_named_by_stop(ex, f) for f in found.values()]

    async def funding(
        self, ex: "CcxtExchange", symbol: str, start_ms: int
    ) -> list[FundingPayment | None]:
        """ccxt `fetch_funding_history` (`GET /fapi/v1/income`, incomeType FUNDING_FEE)."""
        rows: list[FundingPayment | None] = await ex._query(
            lambda: ex.client.fetch_funding_history(to_venue(symbol), start_ms, 1000),
            lambda raw: [read_funding(item["info"]) for item in raw],
        )
        return rows

    async def mark(self, ex: "CcxtExchange", unified: str) -> Decimal:
        value: Decimal = await ex._query(
            lambda: ex.client.fetch_mark_price(unified),
            lambda raw: parse.dec(raw["info"].get("markPrice"), name="markPrice"),
        )
        return value

    async def mark_candles(
        self, ex: "CcxtExchange", symbol: str, since: datetime
    ) -> list[MarkCandle]:
        """`GET /fapi/v1/markPriceKlines {symbol, interval, startTime, endTime, limit}`
        (Mark Price Kline/Candlestick Data: rows `[open time, open, high, low, close, …]`,
        prices as text; "limit ... Default 500; max 1500"), 1000 a page (weight 5), asked
        directly: ccxt's `fetch_mark_ohlcv` gives floats."""

        async def page(minutes: int, start: int, end: int) -> list[MarkCandle]:
            request = {
                "symbol": symbol,
                "interval": _INTERVALS[minutes],
                "startTime": start,
                "endTime": end,
                "limit": _CANDLES,
            }
            rows: list[MarkCandle] = await ex._query(
                partial(ex.client.fapipublic_get_markpriceklines, request),
                lambda raw: [candles.candle(row, minutes) for row in raw],
            )
            return rows

        return await candles.gather(since, ex._clock.now(), _CANDLES, page)

    def can_watch(self, client: ccxt.Exchange) -> bool:
        return bool(client.has.get("watchMarkPrices"))

    async def watch_marks(self, client: ccxt.Exchange, unified: Sequence[str]) -> Mapping[str, Any]:
        marks: Mapping[str, Any] = await client.watch_mark_prices(list(unified))
        return marks

    # ------------------------------------------------------------ leverage, margin mode

    def set_leverage(
        self, client: ccxt.Exchange, unified: str, leverage: Decimal, rules: MarketRules
    ) -> Callable[[], Awaitable[Any]] | SettingOutcome:
        """`POST /fapi/v1/leverage {symbol, leverage}`: a whole number up to the symbol's
        maximum (ccxt refuses others itself); the same leverage again is success."""
        if leverage % ONE or not ONE <= leverage <= rules.max_leverage:
            return Rejected(
                reason=R.INVALID_LEVERAGE,
                message=f"refused before sending: Leverage {leverage} is not valid",
                code="-4028",
            )
        return lambda: client.set_leverage(int(leverage), unified)

    def read_leverage(self, raw: Mapping[str, Any]) -> Decimal:
        """ccxt `fetch_leverages`: `GET /fapi/v1/symbolConfig` (`leverage`)."""
        return parse.dec(raw["info"].get("leverage"), name="leverage")

    def read_margin_mode(self, info: Mapping[str, Any]) -> MarginMode:
        """`GET /fapi/v1/symbolConfig?symbol=` `marginType` CROSSED|ISOLATED."""
        kind = str(info["marginType"]).upper()
        return MarginMode.CROSS if kind == "CROSSED" else MarginMode.ISOLATED

    async def leverage_tiers(self, ex: "CcxtExchange", symbol: str) -> Sequence[LeverageTier]:
        """`GET /fapi/v1/leverageBracket` (`notionalFloor`, `notionalCap`,
        `initialLeverage`, `maintMarginRatio`, `cum`)."""
        unified = to_venue(symbol)
        tiers: Sequence[LeverageTier] = await ex._query(
            lambda: ex.client.fetch_leverage_tiers([unified]),
            lambda raw: [_tier(t["info"]) for t in raw.get(unified) or []],
        )
        return tiers

    async def own_check(
        self, check: "VenueCheck", take_profit: Order | None, rules: MarketRules, mark: Decimal
    ) -> None:
        """venue-check: cancel an algo order (the take-profit) and hold its answer to the
        documented `{algoId, clientAlgoId, code: "200", msg: "success"}`."""
        from tradecore.adapters.ccxt.venue_check import short_text
        from tradecore.testing.corpus import Answer, documenting, load

        facts = ("algoOrder__cancel",)
        name = "cancel algo order answer"
        expected = "{algoId, clientAlgoId, code: '200', msg: 'success'}"
        if take_profit is None:
            check.record(name, facts, expected, "no algo order to cancel", False)
            return

        async def cancel() -> None:
            raw = await check.x.client.cancel_order(
                take_profit.order_id, to_venue(check.symbol), {"trigger": True}
            )
            body = raw.get("info", raw)
            answer = Answer(method="DELETE", path="/fapi/v1/algoOrder", status=200, body=body)
            entry = documenting(load(self.venue.value), answer)
            seen = short_text(body)
            check.record(name, facts, expected, seen, entry is not None and entry.name in facts)

        await check.attempt(name, facts, expected, cancel)


async def _trades(ex: "CcxtExchange", unified: str, start: int, end: int) -> list[Fill]:
    fills: list[Fill] = await ex._query(
        lambda: ex.client.fetch_my_trades(unified, start, _PAGE, {"until": end}),
        lambda raw: [read_fill(item["info"]) for item in raw],
    )
    return fills


async def _algo(ex: "CcxtExchange", unified: str, key: Mapping[str, str]) -> Order | None:
    """An algo order by algoId or clientAlgoId, with its fill once it has fired."""
    params: dict[str, Any] = {"trigger": True}
    if "clientOrderId" in key:
        params["clientOrderId"] = key["clientOrderId"]
    algo_id = key.get("algoId")
    try:
        info = await ex._query(
            lambda: ex.client.fetch_order(algo_id, unified, params), lambda raw: raw["info"]
        )
    except ExchangeUnavailable as error:
        if isinstance(error.__cause__, ccxt.OrderNotFound):
            return None
        raise
    actual = str(info.get("actualOrderId") or "")
    fill = await ex._maybe(lambda: ex.client.fetch_order(actual, unified)) if actual else None
    order: Order = await ex._query(_ready(info), lambda raw: read_algo(raw, fill))
    ex._algos[order.order_id] = order
    if actual:
        ex._fired[actual] = order.order_id
    return order


def _named_by_stop(ex: "CcxtExchange", fill: Fill) -> Fill:
    """The fill under the algoId of the stop whose market order it is, if that stop was
    looked up (Binance lists a fired algo order's fills under its `actualOrderId`)."""
    algo_id = ex._fired.get(fill.order_id)
    return fill if algo_id is None else attrs.evolve(fill, order_id=algo_id)


async def _open_algo(ex: "CcxtExchange", unified: str, order_id: str) -> Order | None:
    """The open algo (conditional) order of an id this process has not seen, if any."""
    try:
        stops = await ex._call(
            lambda: ex.client.fetch_open_orders(unified, None, None, {"trigger": True})
        )
    except ccxt.BaseError:
        return None  # the plain cancel then answers for itself
    for item in stops:
        if str(item["info"].get("algoId")) == order_id:
            try:
                return read_algo(item["info"])
            except parse.Unreadable:
                return None
    return None


def _algo_cancelled(info: Mapping[str, Any], order: Order) -> Order:
    """The cancelled algo order from Binance's cancel answer: the documented `{"algoId",
    "clientAlgoId", "code": "200", "msg": "success"}`, or a whole algo order (with its
    `algoStatus`) as the websocket API's answer carries it."""
    if "algoStatus" in info:
        return read_algo(info)
    return read_algo_cancelled(info, order)


def _rules(markets: Mapping[str, Any], tiers: Mapping[str, Any]) -> list[MarketRules]:
    rules = []
    for unified, market in markets.items():
        leverages = [parse.dec(t["info"]["initialLeverage"]) for t in tiers.get(unified) or []]
        top = max(leverages) if leverages else Decimal(1)
        rules.append(read_rules(market["info"], top))
    return rules


def _json_number(value: object, name: str) -> Decimal:
    """leverageBracket's numbers are JSON numbers (`"maintMarginRatio": 0.0065`), so they
    arrive as floats: read through their shortest repr, never their binary value."""
    return parse.dec(repr(value) if isinstance(value, float) else value, name=name)


def _tier(info: Mapping[str, Any]) -> LeverageTier:
    return LeverageTier(
        min_notional=_json_number(info["notionalFloor"], "notionalFloor"),
        max_notional=_json_number(info["notionalCap"], "notionalCap"),
        max_leverage=_json_number(info["initialLeverage"], "initialLeverage"),
        maintenance_rate=_json_number(info["maintMarginRatio"], "maintMarginRatio"),
        maintenance_amount=_json_number(info.get("cum", 0), "cum"),
    )


DIALECT = register(BinanceDialect())
