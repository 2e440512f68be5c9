"""Bybit v5 linear (unified account) through ccxt's `bybit`: the venue's facts and behaviour.

The position's own stop goes through `/v5/position/trading-stop` (`tpslMode=Full`,
`positionIdx` sent explicitly, `slTriggerBy=MarkPrice`, `stopLoss=0` removes it); resting
stops are amended in place with `triggerBy=MarkPrice`. `/v5/order/create` only acknowledges,
so every command is read back. Sources: the corpus (src/tradecore/testing/corpus/bybit/),
bybit-exchange.github.io/docs/v5/, and ccxt 4.5.90 bybit.py, as cited at each fact.
"""

import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from functools import partial
from typing import TYPE_CHECKING, Any

import ccxt.async_support as ccxt
import ccxt.pro as ccxt_pro

from tradecore.adapters.ccxt import candles, parse
from tradecore.adapters.ccxt.limiter import Budget, Costs, Heard, VenueCount, VenueLimits
from tradecore.adapters.ccxt.profiles import CcxtProfile, Refusals
from tradecore.adapters.ccxt.venues import CheckFacts, register
from tradecore.domain.leverage import LeverageTier, MarginMode
from tradecore.domain.model import Side, Venue
from tradecore.domain.numbers import ZERO
from tradecore.domain.orders import (
    Balance,
    MarkCandle,
    Order,
    OrderStatus,
    OrderType,
    VenuePosition,
)
from tradecore.domain.pnl import Fill, FundingPayment
from tradecore.domain.precision import MarketRules, Rounding, price_for
from tradecore.domain.symbols import to_venue
from tradecore.ports.exchange import (
    Accepted,
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

_PARAMS = "10001"  # Bybit answers every malformed value with "params error"

# ---------------------------------------------------------------- reading answers


def read_rules(info: parse.Raw) -> MarketRules:
    lot = parse.obj(info.get("lotSizeFilter"), "lotSizeFilter")
    return MarketRules(
        symbol=str(info["symbol"]),
        tick_size=parse.dec(
            parse.obj(info.get("priceFilter"), "priceFilter").get("tickSize"), name="tick"
        ),
        step_size=parse.dec(lot.get("qtyStep"), name="qtyStep"),
        min_quantity=parse.dec(lot.get("minOrderQty"), name="minOrderQty"),
        min_notional=parse.dec(lot.get("minNotionalValue") or "0", name="minNotionalValue"),
        max_leverage=parse.dec(
            parse.obj(info.get("leverageFilter"), "leverageFilter").get("maxLeverage"),
            name="leverage",
        ),
        active=info.get("status") == "Trading",
    )


_STATUS = {
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


def read_v5_order(info: parse.Raw, *, venue: Venue = Venue.BYBIT) -> Order:
    """An order from v5 JSON; `venue` for a venue that speaks v5 with a name of its own."""
    status = _STATUS.get(str(info.get("orderStatus")))
    if status is None:
        raise parse.Unreadable(f"order status: {info.get('orderStatus')!r}")
    stop_type = str(info.get("stopOrderType") or "")
    if stop_type == _PLAIN:
        stop_type = ""
    kind = _kind(info, stop_type)
    filled = parse.dec(info.get("cumExecQty") or "0", name="cumExecQty")
    return Order(
        venue=venue,
        symbol=str(info["symbol"]),
        order_id=str(info["orderId"]),
        client_order_id=info.get("orderLinkId") or None,
        side=parse.side_of(info.get("side")),
        type=kind,
        quantity=parse.dec(info.get("qty") or "0", name="qty"),
        status=status,
        filled=filled,
        price=parse.opt_dec(info.get("price")) if kind is OrderType.LIMIT else None,
        trigger_price=parse.opt_dec(info.get("triggerPrice")) if stop_type else None,
        average_price=parse.opt_dec(info.get("avgPrice")) if filled > ZERO else None,
        reduce_only=bool(info.get("reduceOnly", False)),
        close_position=bool(info.get("closeOnTrigger", False)),
        position_idx=int(info.get("positionIdx") or 0),
        created_at=parse.time_of(info.get("createdTime")),
        updated_at=parse.time_of(info.get("updatedTime")),
        # The stop-loss an entry carried: the raw `stopLoss` ("0" or "" when none). Not
        # ccxt's unified `stopLossPrice`: ccxt 4.5.90 bybit.parse_order takes it from
        # `stopLoss` too (omit_zero), but for a reduce-only conditional order with no
        # `stopLoss` it fills it with the order's own `triggerPrice` (its "stop order type
        # 2"), which is a stop's trigger, not a stop carried by an entry.
        stop_loss=parse.opt_dec(info.get("stopLoss")),
    )


# Bybit v5 `stopOrderType` (bybit-exchange.github.io/docs/v5/enum#stopordertype):
# TakeProfit, StopLoss, TrailingStop, Stop, PartialTakeProfit, PartialStopLoss, tpslOrder,
# OcoOrder, BidirectionalTpslOrder (the last three spot only), MmRateClose ("On web or app
# can set MMR to close position": no price trigger). "" is a plain order, and so is
# "UNKNOWN": the REST examples of a plain Limit order say "stopOrderType": "UNKNOWN" (v5 Get
# Open & Closed Orders, Get Order History, Get Trade History), the websocket's "".
_PLAIN = "UNKNOWN"
_STOP_LOSSES = frozenset({"StopLoss", "PartialStopLoss"})
_TAKE_PROFITS = frozenset({"TakeProfit", "PartialTakeProfit"})


def _kind(info: parse.Raw, stop_type: str) -> OrderType:
    if not stop_type:
        return OrderType.LIMIT if info.get("orderType") == "Limit" else OrderType.MARKET
    if stop_type == "StopLoss" and info.get("tpslMode") == "Full":
        return OrderType.POSITION_STOP  # trading-stop's whole-position stop-loss
    if stop_type in _STOP_LOSSES:
        return OrderType.STOP_MARKET
    if stop_type in _TAKE_PROFITS:
        return OrderType.TAKE_PROFIT
    if stop_type == "TrailingStop":
        return OrderType.TRAILING_STOP
    if stop_type == "Stop":
        return OrderType.TAKE_PROFIT if _rises_to_profit(info) else OrderType.STOP_MARKET
    return OrderType.CONDITIONAL  # MmRateClose, spot kinds, anything added later


def _rises_to_profit(info: parse.Raw) -> bool:
    """A conditional order that triggers when the price moves its position's way — a sell
    when it rises to the trigger, a buy when it falls to it (`triggerDirection` 1 = rises
    to, 2 = falls to; Bybit v5 "Place Order") — is a take-profit."""
    direction = str(info.get("triggerDirection") or "")
    side = str(info.get("side") or "")
    return (side, direction) in (("Sell", "1"), ("Buy", "2"))


def read_position(info: parse.Raw, *, venue: Venue = Venue.BYBIT) -> VenuePosition | None:
    size = parse.dec(info.get("size") or "0", name="size")
    if size == ZERO:
        return None
    return VenuePosition(
        venue=venue,
        symbol=str(info["symbol"]),
        side=Side.LONG if info.get("side") == "Buy" else Side.SHORT,
        quantity=size,
        entry_price=parse.dec(info.get("avgPrice"), name="avgPrice"),
        mark_price=parse.opt_dec(info.get("markPrice")),
        position_idx=int(info.get("positionIdx") or 0),
        stop_price=parse.opt_dec(info.get("stopLoss")),
        liquidation_price=parse.opt_dec(info.get("liqPrice")),
        unrealized_pnl=parse.opt_dec(info.get("unrealisedPnl")),
    )


def read_balance(info: parse.Raw) -> Balance:
    for account in parse.objects(parse.obj(info.get("result"), "result").get("list"), "list"):
        for coin in parse.objects(account.get("coin"), "coin"):
            if coin.get("coin") == "USDT":
                total = parse.dec(coin.get("equity") or "0", name="equity")
                used = parse.dec(coin.get("totalPositionIM") or "0", name="totalPositionIM")
                used += parse.dec(coin.get("totalOrderIM") or "0", name="totalOrderIM")
                free = parse.dec(account.get("totalAvailableBalance") or "0", name="available")
                return Balance(total=total, free=free, used=used)
    return Balance(total=ZERO, free=ZERO, used=ZERO)


# Executions that move the position (Bybit v5 enum execType): a trade, an auto-deleverage,
# a liquidation takeover (BustTrade), a delivery or settlement; "Funding" rows are not fills.
_FILL_TYPES = frozenset({"Trade", "AdlTrade", "BustTrade", "Delivery", "Settle"})


def read_fill(info: parse.Raw) -> Fill | None:
    """One row of `GET /v5/execution/list` (Get Trade History); `execFee` is paid when
    positive (a maker rebate is negative); None for a row that is no fill (funding)."""
    if str(info.get("execType", "Trade")) not in _FILL_TYPES:
        return None
    return Fill(
        symbol=str(info["symbol"]),
        order_id=str(info["orderId"]),
        client_order_id=str(info.get("orderLinkId") or "") or None,
        side=parse.side_of(info["side"]),
        price=parse.dec(info["execPrice"], name="execPrice"),
        quantity=parse.dec(info["execQty"], name="execQty"),
        fee=parse.dec(info.get("execFee") or "0", name="execFee"),
        fee_asset=str(info.get("feeCurrency") or "USDT"),
        at=parse.required_time(info["execTime"], "execTime"),
        trade_id=str(info.get("execId") or "") or None,
    )


def read_funding(info: parse.Raw) -> FundingPayment | None:
    """One SETTLEMENT row of `GET /v5/account/transaction-log`: `funding` is positive when
    received, negative when paid (Bybit v5 Get Transaction Log)."""
    if info.get("type") != "SETTLEMENT" or info.get("funding") in (None, ""):
        return None
    return FundingPayment(
        symbol=str(info["symbol"]),
        amount=parse.dec(info["funding"], name="funding"),
        asset=str(info.get("currency") or "USDT"),
        at=parse.required_time(info["transactionTime"], "transactionTime"),
        payment_id=str(info.get("id") or "") or None,
    )


PROFILE = CcxtProfile(
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
        # a unified account's margin mode is the account's (GET /v5/account/info marginMode)
        margin_mode_per_symbol=False,
    ),
    refusals=Refusals(
        unknown_symbol=(_PARAMS, "params error: symbol invalid"),
        not_a_number=_PARAMS,
        quantity_not_positive=_PARAMS,
        price_not_positive=_PARAMS,
        stop_not_positive=_PARAMS,
        too_precise=_PARAMS,
        off_step=_PARAMS,
        off_tick=_PARAMS,
        below_min_quantity=_PARAMS,
        order_not_found=("110001", "order not exists or too late to cancel"),
    ),
    options={"enableUnifiedAccount": True, "fetchMarkets": {"types": ["linear"]}},
    order_params={"positionIdx": 0},  # one-way mode, sent explicitly
    stop_params={"triggerBy": "MarkPrice"},  # ccxt sets triggerDirection from the side
    mark_field="markPrice",
    read_order=read_v5_order,
    read_position=read_position,
    read_balance=read_balance,
)

# ---------------------------------------------------------------- error codes
CODES: dict[str, RejectReason] = {
    "110092": R.WOULD_TRIGGER_IMMEDIATELY,
    "110093": R.WOULD_TRIGGER_IMMEDIATELY,
    "110001": R.ORDER_NOT_FOUND,
    "110072": R.DUPLICATE_CLIENT_ID,
    "110017": R.REDUCE_ONLY_WOULD_INCREASE,
    "110094": R.BELOW_MIN_NOTIONAL,
    "110007": R.INSUFFICIENT_BALANCE,
    "110009": R.TOO_MANY_CONDITIONAL_ORDERS,
    "170209": R.REGION_RESTRICTED,
    "34040": R.NOT_MODIFIED,
    # POST /v5/position/set-leverage to the leverage the symbol already has: 110043 "Set
    # leverage not modified" (Bybit v5 error codes, bybit-exchange.github.io/docs/v5/error;
    # ccxt 4.5.90 bybit.py raises BadRequest for it): the leverage holds, so it is done
    "110043": R.NOT_MODIFIED,
    "110013": R.INVALID_LEVERAGE,  # "Due to risk limit, cannot set leverage"
    "10006": R.RATE_LIMITED,
    "429": R.VENUE_UNAVAILABLE,  # "high server load. Please retry"
    "10003": R.AUTHENTICATION,
    "10004": R.AUTHENTICATION,
    "10005": R.AUTHENTICATION,
}

# Bybit answers many different refusals with 10001 "params error"; its text tells them apart.
_PARAMS_TEXT = (
    (re.compile(r"should (lower|higher) than base_price", re.I), R.WOULD_TRIGGER_IMMEDIATELY),
    (re.compile(r"remains unchanged|not modified", re.I), R.NOT_MODIFIED),
    (re.compile(r"zero position", re.I), R.NO_POSITION),
    (re.compile(r"is not trading", re.I), R.SYMBOL_UNAVAILABLE),
    (re.compile(r"symbol invalid|symbol params err|not supported symbols", re.I), R.UNKNOWN_SYMBOL),
    (re.compile(r"qty|quantity|contracts", re.I), R.INVALID_QUANTITY),
    (re.compile(r"price|stopLoss|tick", re.I), R.INVALID_PRICE),
)

# The venue's own failure (bybit-exchange.github.io/docs/v5/error): 10000 "Server Timeout",
# 10016 "Server error" / "internal server error; Service is restarting". The docs do not say
# whether an order survives these; a wrong `Unknown` costs one look-up, a wrong refusal a
# bare position.
EXECUTION_UNKNOWN_CODES = frozenset({"10000", "10016"})

# ---------------------------------------------------------------- rate limits
# "You are allowed to send 600 requests within a 5-second window per IP by default" and,
# per UID, "The API rate limit is based on the rolling time window per second and UID";
# the per-endpoint figures are the table's UTA2.0 Pro linear column
# (bybit-exchange.github.io/docs/v5/rate-limit; repository bybit-exchange/docs,
# docs/v5/rate-limit/rate-limit.mdx). Public market endpoints carry the IP limit only.
_DOC = "bybit-exchange.github.io/docs/v5/rate-limit"
IP = "ip-5s"
_PER_SECOND = {
    "order/create": 10,
    "order/amend": 10,
    "order/cancel": 10,
    "order/realtime": 50,
    "order/history": 50,
    "execution/list": 50,
    "position/list": 50,
    "position/trading-stop": 10,
    "position/set-leverage": 10,
    "account/wallet-balance": 50,
    "account/transaction-log": 25,
    "account/info": 50,
}


# A tenth of each budget, at least one, is kept for stops (`Budget.reserve`; docs/venues.md
# "Rate limits"): at 10 a second, entries take 9, and a stop never waits behind them.
def _budgets(per_second: Mapping[str, int], source: str) -> tuple[Budget, ...]:
    return (
        Budget(name=IP, limit=600, window=5.0, source=source, reserve=60),
        *(
            Budget(
                name=endpoint, limit=limit, window=1.0, source=source, reserve=max(1, limit // 10)
            )
            for endpoint, limit in per_second.items()
        ),
    )


BUDGETS = _budgets(_PER_SECOND, _DOC)


def _costs(
    per_second: Mapping[str, int], method: str, path: str, api: Any, params: Mapping[str, Any]
) -> Costs:
    endpoint = path.removeprefix("v5/")
    if endpoint in per_second:
        return {IP: 1, endpoint: 1}
    return {IP: 1}


def costs(method: str, path: str, api: Any, params: Mapping[str, Any]) -> Costs:
    return _costs(_PER_SECOND, method, path, api, params)


# What the venue has counted, per endpoint and UID, in every answer's headers (v5 "Rate Limit
# Rules", bybit-exchange.github.io/docs/v5/rate-limit; repository bybit-exchange/docs,
# docs/v5/rate-limit/rate-limit.mdx): "X-Bapi-Limit-Status - your remaining requests for
# current endpoint", "X-Bapi-Limit - your current limit for current endpoint",
# "X-Bapi-Limit-Reset-Timestamp - the timestamp indicating when your request limit resets if
# you have exceeded your rate_limit. Otherwise, this is just the current timestamp"; example
# `X-Bapi-Limit: 10`, `X-Bapi-Limit-Status: 9`, `X-Bapi-Limit-Reset-Timestamp:
# 1672738134824`. The window rolls ("rolling time window per second"): what is left holds
# for at most a second, or until the reset time when the limit was exceeded. A refusal is
# retCode 10006 "Too many visits!" (HTTP 200), about the endpoint's budget only. The IP's
# 600 per 5 s has no header.
_TOO_MANY = re.compile(r'"retCode"\s*:\s*10006\b')


def heard(path: str, status: int, headers: Mapping[str, str], body: str, now: datetime) -> Heard:
    """The endpoint's count from X-Bapi-Limit-Status; a 10006 refuses until the reset."""
    return _heard(_PER_SECOND, path, status, headers, body, now)


def _heard(
    per_second: Mapping[str, int],
    path: str,
    status: int,
    headers: Mapping[str, str],
    body: str,
    now: datetime,
) -> Heard:
    endpoint = path.removeprefix("/").removeprefix("v5/")
    lowered = {name.lower(): str(value).strip() for name, value in headers.items()}
    limit = per_second.get(endpoint)
    remaining = lowered.get("x-bapi-limit-status", "")
    reset = lowered.get("x-bapi-limit-reset-timestamp", "")
    until = None
    if reset.isdigit():
        at = datetime.fromtimestamp(int(reset) / 1000, tz=now.tzinfo)
        until = at if at > now else None
    counts: tuple[VenueCount, ...] = ()
    if limit is not None and remaining.isdigit():
        counts = (VenueCount(budget=endpoint, used=max(0, limit - int(remaining)), until=until),)
    if not _TOO_MANY.search(body):
        return Heard(counts=counts)
    closes = (endpoint,) if limit is not None else None
    return Heard(counts=counts, refused=True, retry_at=until, closes=closes)


LIMITS = VenueLimits(budgets=BUDGETS, weigh=costs, read=heard)


def v5_limits(per_second: Mapping[str, int], *, source: str) -> VenueLimits:
    """The limits of a venue on v5 with its own per-endpoint table (`per_second`, named as
    `_PER_SECOND`; `source` where the venue publishes it): the same IP budget, weights and
    headers as Bybit's, its own figures."""
    table = dict(per_second)
    return VenueLimits(
        budgets=_budgets(table, source),
        weigh=partial(_costs, table),
        read=partial(_heard, table),
    )


_WINDOW_MS = 7 * 24 * 3600 * 1000  # execution list: at most 7 days a request
_CANDLES = 200  # mark-price-kline a page: "limit ... [1, 200]" (v5 Get Mark Price Kline)
_INTERVALS = {1: "1", 5: "5", 15: "15", 60: "60", 240: "240", 1440: "D"}


async def _executions(ex: "CcxtExchange", unified: str, start: int, end: int) -> list[Fill | None]:
    rows: list[Fill | None] = await ex._query(
        lambda: ex.client.fetch_my_trades(unified, start, None, {"paginate": True, "until": end}),
        lambda raw: [read_fill(item["info"]) for item in raw],
    )
    return rows


_LOG_PAGES = 20  # of 50 rows: a window's settlements (21 funding times a symbol in 7 days)


async def _settlements(
    ex: "CcxtExchange", symbol: str, start: int, end: int
) -> list[FundingPayment | None]:
    """One window's settlements of `symbol`'s base coin: the log has no symbol filter, only
    `baseCoin` (v5 Get Transaction Log), so the account's other symbols do not fill the
    pages. More pages than `_LOG_PAGES` is ExchangeUnavailable, never a silent cut."""
    rows: list[FundingPayment | None] = []
    cursor = ""
    base = ex.client.market(to_venue(symbol))["baseId"]
    for _ in range(_LOG_PAGES):
        params = {
            "accountType": "UNIFIED",
            "category": "linear",
            "baseCoin": base,
            "type": "SETTLEMENT",
            "startTime": start,
            "endTime": end,
            "limit": 50,
            **({"cursor": cursor} if cursor else {}),
        }
        result = await _log(ex, params)
        rows += [read_funding(item) for item in result.get("list") or []]
        cursor = str(result.get("nextPageCursor") or "")
        if not cursor:
            return rows
    raise ExchangeUnavailable(
        f"the transaction log holds more than {_LOG_PAGES} pages of {base} settlements "
        "in 7 days; the funding is read again on the next pass"
    )


_MODES = {
    "ISOLATED_MARGIN": MarginMode.ISOLATED,
    "REGULAR_MARGIN": MarginMode.CROSS,
    "PORTFOLIO_MARGIN": MarginMode.PORTFOLIO,
}


def _text(value: Decimal) -> str:
    return format(value.normalize(), "f")


class BybitDialect:
    venue = Venue.BYBIT
    display_name = "Bybit linear"
    profile = PROFILE
    codes: Mapping[str, RejectReason] = CODES
    execution_unknown_codes = EXECUTION_UNKNOWN_CODES
    # 10002 "The request time exceeds the time window range." (corpus error__r10002_*)
    clock_skew_codes = frozenset({"10002"})
    already_done_codes: frozenset[str] = frozenset()  # 110043, 34040 come as errors
    limits = LIMITS
    has_testnet = True
    # buyLeverage/sellLeverage are strings within the risk limit (v5 Set Leverage): 2.5 is taken
    whole_number_leverage = False
    # leverage is the position's (GET /v5/position/list), the margin mode the account's
    settings_in_one_answer = False
    # 403: "your IP has been either temporarily or permanently banned" (v5 Rate Limit, IP Rate
    # Limit, "usually 30 minutes"); "403, access too frequent ... wait for at least 10
    # minutes" (bybit-exchange.github.io/docs/p2p/rate-limit): the shortest is taken
    ip_ban_statuses: Mapping[int, timedelta] = {403: timedelta(minutes=10)}
    check_facts = CheckFacts(
        tiers=(),
        leverage=("position_set-leverage__ok",),
        margin_mode=("account_set-margin-mode__refused_3400045",),
        unknown_client_id=(
            "order_realtime__limit_new_table_fields",
            "order_history__limit_cancelled",
        ),
        entry_read_back=("order_create__ack", "order_realtime__limit_new_table_fields"),
        stop_and_take_profit=("order_realtime__limit_new_with_tpsl", "order_create__ack"),
        entry_stop=(
            "order_create__entry_with_stop_loss",
            "position_list__linear_long_with_stop_loss",
        ),
        mark_candles=("market_mark-price-kline__linear",),
    )

    def client_class(self, *, websockets: bool) -> type[ccxt.Exchange]:
        cls: type[ccxt.Exchange] = ccxt_pro.bybit if websockets else ccxt.bybit
        return cls

    def prepare_client(self, client: ccxt.Exchange) -> None:
        client.has["fetchCurrencies"] = False  # no wallet endpoints needed (and none offline)

    def reason_for(self, code: str, message: str) -> RejectReason | None:
        if code == _PARAMS:
            for pattern, reason in _PARAMS_TEXT:
                if pattern.search(message):
                    return reason
            return R.OTHER
        return self.codes.get(code)  # a venue on this dialect with codes of its own: its own

    # ------------------------------------------------------------ reading answers

    def read_order(self, info: Mapping[str, Any], *, conditional: bool = False) -> Order:
        return read_v5_order(info, venue=self.venue)

    async def market_rules(
        self, ex: "CcxtExchange", markets: Mapping[str, Any]
    ) -> Sequence[MarketRules]:
        return [read_rules(market["info"]) for market in markets.values()]

    # ------------------------------------------------------------ orders

    def listing_params(self, symbol: str | None, *, stops: bool) -> dict[str, Any]:
        params: dict[str, Any] = {"trigger": True} if stops else {}
        params["paginate"] = True  # pages of 50 (Bybit's maximum), following the cursor
        if symbol is None:
            params["settleCoin"] = "USDT"
        return params

    async def placed(self, ex: "CcxtExchange", symbol: str, raw: Mapping[str, Any]) -> Order:
        """Bybit answers ids only: read the order back until the venue shows it."""
        order_id = str(raw["info"]["orderId"])
        unified = to_venue(symbol)
        return await ex._proven(
            lambda: _find(ex, unified, {"orderId": order_id}),
            f"bybit acknowledged order {order_id}",
        )

    async def find_by_client_id(self, ex: "CcxtExchange", unified: str, cid: str) -> Order | None:
        return await _find(ex, unified, {"orderLinkId": cid})

    async def find_order(self, ex: "CcxtExchange", unified: str, order_id: str) -> Order | None:
        return await _find(ex, unified, {"orderId": order_id})

    async def read_amended(
        self, ex: "CcxtExchange", symbol: str, order_id: str, raw: Mapping[str, Any]
    ) -> Order:
        return await _read_back(ex, symbol, order_id)

    def amend_stop_params(self, trigger: str) -> dict[str, Any]:
        return {"triggerPrice": trigger, "triggerBy": "MarkPrice"}  # else LastPrice

    def entry_stop_params(self, trigger: str) -> dict[str, Any]:
        """The stop an entry carries: v5 Place Order `stopLoss` with `slTriggerBy=MarkPrice`
        (else LastPrice), `tpslMode=Full` (the whole position's stop, shown as the position's
        `stopLoss`, no order id of its own) and `slOrderType=Market` (Full takes only Market).
        ccxt 4.5.90 bybit.create_order_request maps its unified `stopLoss` param
        (`{triggerPrice}`) to `request['stopLoss']` (rounded by `get_price`) and, for a
        contract without an `slLimitPrice`, sets neither `tpslMode` nor `slOrderType` nor
        `slTriggerBy`: those are passed through (`extend(request, query)`). Corpus:
        order_create__entry_with_stop_loss, position_list__long_with_stop_loss."""
        return {
            "stopLoss": {"triggerPrice": trigger},
            "slTriggerBy": "MarkPrice",
            "tpslMode": "Full",
            "slOrderType": "Market",
        }

    async def cancel(self, ex: "CcxtExchange", symbol: str, order_id: str) -> Outcome:
        return await ex._command(
            None,
            lambda: ex.client.cancel_order(order_id, to_venue(symbol)),
            lambda _: _read_back(ex, symbol, order_id),
        )

    def position_stop(
        self, client: ccxt.Exchange, symbol: str, trigger: str | None
    ) -> Awaitable[Any]:
        request: dict[str, Any] = {
            "category": "linear",
            "symbol": symbol,
            "tpslMode": "Full",
            "positionIdx": 0,  # required by the venue; ccxt adds it only in hedge mode
            "stopLoss": "0" if trigger is None else trigger,  # "0" removes it
        }
        if trigger is not None:
            request.update({"slTriggerBy": "MarkPrice", "slOrderType": "Market"})
        answer: Awaitable[Any] = client.privatePostV5PositionTradingStop(request)
        return answer

    # ------------------------------------------------------------ history, marks

    async def fills(self, ex: "CcxtExchange", unified: str, start_ms: int) -> list[Fill]:
        """`GET /v5/execution/list` (newest first, paged by ccxt along `nextPageCursor`), in
        windows of 7 days from `start_ms` to now: one request answers at most 7 days ("only
        startTime is passed, return range between startTime and startTime+7 days"; "if both
        are passed, the rule is endTime - startTime <= 7 days"), so a position held longer
        would miss its later fills."""
        found: dict[str, Fill] = {}
        now_ms = int(ex._clock.now().timestamp() * 1000)
        window = start_ms
        while True:
            end = window + _WINDOW_MS
            rows = await _executions(ex, unified, window, end)
            found.update({f.trade_id or f"{f.order_id}@{f.at}": f for f in rows if f is not None})
            if end >= now_ms:
                return list(found.values())
            window = end + 1

    async def funding(
        self, ex: "CcxtExchange", symbol: str, start_ms: int
    ) -> list[FundingPayment | None]:
        """`GET /v5/account/transaction-log` type SETTLEMENT, whose `funding` is signed as
        received (ccxt's `fetch_funding_history` reads Bybit's execution list, whose funding
        `execFee` sign the docs do not state), in windows of 7 days from `start_ms` to now
        with both ends sent: "Only startTime is passed, return range between startTime and
        startTime+24 hours"; "If both are passed, the rule is endTime - startTime <= 7
        days" (v5 Get Transaction Log), so `startTime` alone gave a position held longer
        than a day only its first day's funding."""
        rows: list[FundingPayment | None] = []
        now_ms = int(ex._clock.now().timestamp() * 1000)
        window = start_ms
        while True:
            end = window + _WINDOW_MS
            rows += await _settlements(ex, symbol, window, end)
            if end >= now_ms:
                return rows
            window = end + 1

    async def mark(self, ex: "CcxtExchange", unified: str) -> Decimal:
        value: Decimal = await ex._query(
            lambda: ex.client.fetch_ticker(unified),
            lambda raw: parse.dec(raw["info"].get("markPrice"), name="markPrice"),
        )
        return value

    async def mark_candles(
        self, ex: "CcxtExchange", symbol: str, since: datetime
    ) -> list[MarkCandle]:
        """`GET /v5/market/mark-price-kline {category, symbol, interval, start, end, limit}`
        (v5 Get Mark Price Kline: `list` of `[startTime, open, high, low, close]` as text,
        "Sort in reverse by startTime"; "limit ... [1, 200]"), asked directly: ccxt's
        `fetch_mark_ohlcv` gives floats."""

        async def page(minutes: int, start: int, end: int) -> list[MarkCandle]:
            request = {
                "category": "linear",
                "symbol": symbol,
                "interval": _INTERVALS[minutes],
                "start": start,
                "end": end,
                "limit": _CANDLES,
            }
            rows: list[MarkCandle] = await ex._query(
                partial(ex.client.publicGetV5MarketMarkPriceKline, request),
                lambda raw: [candles.candle(row, minutes) for row in raw["result"]["list"]],
            )
            return rows

        return await candles.gather(since, ex._clock.now(), _CANDLES, page)

    def can_watch(self, client: ccxt.Exchange) -> bool:
        return bool(client.has.get("watchTickers"))

    async def watch_marks(self, client: ccxt.Exchange, unified: Sequence[str]) -> Mapping[str, Any]:
        tickers: Mapping[str, Any] = await client.watch_tickers(list(unified))
        return tickers

    # ------------------------------------------------------------ leverage, margin mode

    def set_leverage(
        self, client: ccxt.Exchange, unified: str, leverage: Decimal, rules: MarketRules
    ) -> Callable[[], Awaitable[Any]] | SettingOutcome:
        """`POST /v5/position/set-leverage {category, symbol, buyLeverage, sellLeverage}`;
        the leverage goes as our exact text, in params (ccxt's float argument aside)."""
        text = _text(leverage)
        params = {"buyLeverage": text, "sellLeverage": text}
        return lambda: client.set_leverage(float(text), unified, params)

    def read_leverage(self, raw: Mapping[str, Any]) -> Decimal:
        """`GET /v5/position/list?symbol=` `leverage`: the unified position around the row."""
        info = raw["info"]
        if "info" in info:
            info = info["info"]
        return parse.dec(info.get("leverage"), name="leverage")

    def read_margin_mode(self, info: Mapping[str, Any]) -> MarginMode:
        """`GET /v5/account/info` `marginMode` (ISOLATED_MARGIN, REGULAR_MARGIN = cross,
        PORTFOLIO_MARGIN): the whole account's."""
        return _MODES[str(info["marginMode"])]

    async def leverage_tiers(self, ex: "CcxtExchange", symbol: str) -> Sequence[LeverageTier]:
        """ccxt's `fetch_leverage_tiers` pages through every linear symbol's risk limits (up
        to 200 calls, the symbol is not sent), so ask `GET /v5/market/risk-limit
        ?category=linear&symbol=` directly (`riskLimitValue`, `maintenanceMargin` a rate,
        `maxLeverage`, `mmDeduction`; bybit-exchange.github.io/docs/v5/market/risk-limit)."""
        request = {"category": "linear", "symbol": symbol}
        tiers: Sequence[LeverageTier] = await ex._query(
            lambda: ex.client.publicGetV5MarketRiskLimit(request),
            lambda raw: tiers_of(raw["result"]["list"], symbol),
        )
        return tiers

    async def own_check(
        self, check: "VenueCheck", take_profit: Order | None, rules: MarketRules, mark: Decimal
    ) -> None:
        """venue-check: the same trading stop sent twice is taken both times (retCode 0, or
        34040 not modified) and leaves one position stop."""
        from tradecore.adapters.ccxt.venue_check import outcome_text

        facts = ("position_trading-stop__ok", "error__r34040_not_modified")
        name = "same trading stop sent twice"
        expected = "both taken (retCode 0, or 34040 not modified); one position stop"
        at = price_for(rules, mark * Decimal("0.85"), Rounding.DOWN)

        async def twice() -> None:
            first = await check.x.set_position_stop(check.symbol, at)
            second = await check.x.set_position_stop(check.symbol, at)
            listed = await check.x.fetch_open_orders(check.symbol)
            stops = [o for o in listed if o.type is OrderType.POSITION_STOP]
            taken = isinstance(second, Accepted) or (
                isinstance(second, Rejected) and second.reason is RejectReason.NOT_MODIFIED
            )
            seen = f"first {outcome_text(first)}, second {outcome_text(second)}; "
            seen += f"{len(stops)} listed"
            ok = (
                isinstance(first, Accepted)
                and taken
                and len(stops) == 1
                and stops[0].trigger_price == at
            )
            check.record(name, facts, expected, seen, ok)

        await check.attempt(name, facts, expected, twice)


async def _find(ex: "CcxtExchange", unified: str, key: Mapping[str, str]) -> Order | None:
    """A Bybit order by orderId or orderLinkId: the live list keeps the last 500 of any
    status, but after a venue restart closed ones are only in the history."""

    def first(raw: Sequence[Mapping[str, Any]]) -> Order | None:
        # read by the exchange's dialect: a venue on v5 under its own name reads its own
        return ex.dialect.read_order(raw[0]["info"]) if raw else None

    live = await ex._query(
        lambda: ex.client.fetch_open_orders(unified, None, None, dict(key)), first
    )
    if live is not None:
        return live
    return await ex._query(
        lambda: ex.client.fetch_canceled_and_closed_orders(unified, None, None, dict(key)),
        first,
    )


async def _log(ex: "CcxtExchange", params: Mapping[str, Any]) -> Mapping[str, Any]:
    result: Mapping[str, Any] = await ex._query(
        lambda: ex.client.privateGetV5AccountTransactionLog(dict(params)),
        lambda raw: dict(raw["result"]),
    )
    return result


async def _read_back(ex: "CcxtExchange", symbol: str, order_id: str) -> Order:
    """Bybit answers a command with ids only: read the order back."""
    order = await _find(ex, to_venue(symbol), {"orderId": order_id})
    if order is None:
        raise ccxt.OrderNotFound(f"bybit accepted order {order_id} but does not list it")
    return order


def tiers_of(rows: Sequence[Mapping[str, Any]], symbol: str) -> list[LeverageTier]:
    """`/v5/market/risk-limit` rows as tiers, smallest first (each from the last's cap)."""
    ordered = sorted((r for r in rows if r.get("symbol") == symbol), key=lambda r: int(r["id"]))
    tiers, floor = [], Decimal(0)
    for row in ordered:
        cap = parse.dec(row["riskLimitValue"], name="riskLimitValue")
        tiers.append(
            LeverageTier(
                min_notional=floor,
                max_notional=cap,
                max_leverage=parse.dec(row["maxLeverage"], name="maxLeverage"),
                maintenance_rate=parse.dec(row["maintenanceMargin"], name="maintenanceMargin"),
                maintenance_amount=parse.dec(row.get("mmDeduction") or 0, name="mmDeduction"),
            )
        )
        floor = cap
    return tiers


DIALECT = register(BybitDialect())
