"""Binance USDⓈ-M futures (`/fapi`) over the simulated engine, in Binance's own JSON.

Conditional orders live on the algo endpoints (`/fapi/v1/algoOrder`, `openAlgoOrders`), as
on the real venue since 2025-12-09: a STOP_MARKET sent to `/fapi/v1/order` is refused with
-4120, and the plain open-order listing does not show stops. A fired stop's algo order is
FINISHED and names the market order it became (`actualOrderId`), which `/fapi/v1/order`
then serves with its fill; algo ids and order ids are separate sequences, as on the venue.
Errors are HTTP 400 with `{"code": -2021, "msg": ...}`; a signed request whose `timestamp`
is outside `recvWindow` of the wall clock is refused with -1021.
"""

import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from tradecore.adapters.ccxt.venues.binance import IP as LIMIT_IP
from tradecore.adapters.ccxt.venues.binance import LIMITS as BINANCE_LIMITS
from tradecore.adapters.ccxt.venues.binance import ORDERS_1M as LIMIT_ORDERS_1M
from tradecore.adapters.ccxt.venues.binance import ORDERS_10S as LIMIT_ORDERS_10S
from tradecore.adapters.paper.engine import VenueEngine
from tradecore.adapters.paper.faults import Op
from tradecore.domain.leverage import MarginMode
from tradecore.domain.model import OrderSide, Venue
from tradecore.domain.numbers import ZERO
from tradecore.domain.orders import Order, OrderStatus, OrderType
from tradecore.ports.exchange import Accepted, Rejected, RejectReason
from tradecore.testing.loopback.ratecount import RateCount
from tradecore.testing.loopback.server import Handler, Params, Reply, register_dialect

_ORDER_TYPES = [
    "LIMIT",
    "MARKET",
    "STOP",
    "STOP_MARKET",
    "TAKE_PROFIT",
    "TAKE_PROFIT_MARKET",
    "TRAILING_STOP_MARKET",
]
_STATUS = {
    OrderStatus.OPEN: "NEW",
    OrderStatus.PARTIALLY_FILLED: "PARTIALLY_FILLED",
    OrderStatus.FILLED: "FILLED",
    OrderStatus.CANCELED: "CANCELED",
    OrderStatus.REJECTED: "REJECTED",
    OrderStatus.EXPIRED: "EXPIRED",
    OrderStatus.TRIGGERED: "NEW",
}
_CONDITIONAL = {"STOP", "STOP_MARKET", "TAKE_PROFIT", "TAKE_PROFIT_MARKET", "TRAILING_STOP_MARKET"}
# The `orderType` an algo order of each kind is listed with when its request did not say
# (a stop-limit STOP and a TAKE_PROFIT with a limit price rest here as their market forms:
# the engine has no limit order after a trigger; they are listed as sent).
_ALGO_TYPES = {
    OrderType.STOP_MARKET: "STOP_MARKET",
    OrderType.TAKE_PROFIT: "TAKE_PROFIT_MARKET",
    OrderType.TRAILING_STOP: "TRAILING_STOP_MARKET",
}


# Algo ids and order ids are separate sequences on the venue: a stop's algoId never equals
# the orderId of the market order it becomes, so an adapter that mixes them up is caught.
_ALGO_OFFSET = 3_000_000_000


def _engine_id(algo_id: str) -> str:
    try:
        return str(int(algo_id) + _ALGO_OFFSET)
    except ValueError:
        return ""


# What each answer leaves out of the full order, as the venue's examples show them (the answer
# corpus, src/tradecore/testing/corpus/binance/): a command's answer has no "time" (New Order,
# Modify Order; a cancel no avgPrice / cumQuote either), a look-up no "cumQty" (Query Order).
_PLACED_OMITS = frozenset({"time"})
_CANCELLED_OMITS = frozenset({"time", "avgPrice", "cumQuote"})
_LOOKED_UP_OMITS = frozenset({"cumQty"})
# An algo order's answer: New Algo Order shows neither the order it became nor the tp/sl
# fields; Query Algo Order no tp/sl trigger fields; the open list no actual type / quantity.
_TP_SL = frozenset({"tpTriggerPrice", "tpPrice", "slTriggerPrice", "slPrice"})
_ALGO_PLACED_OMITS = frozenset({"actualOrderId", "actualPrice", "tpOrderType"}) | _TP_SL
_ALGO_LOOKED_UP_OMITS = _TP_SL


def _without(answer: dict[str, Any], omitted: frozenset[str]) -> dict[str, Any]:
    return {key: value for key, value in answer.items() if key not in omitted}


def _ms(at: datetime | None) -> int:
    return 0 if at is None else int(at.timestamp() * 1000)


def _num(value: Decimal | None) -> str:
    return "0" if value is None else format(value, "f")


def _flag(params: Params, name: str) -> bool:
    return params.get(name, "").lower() == "true"


_WEEK = timedelta(days=7)  # the longest span one userTrades request answers for
_MINUTE = timedelta(minutes=1)
# Mark Price Kline intervals ("1m 3m 5m 15m 30m 1h 2h 4h 6h 8h 12h 1d 3d 1w 1M"), in minutes
_KLINE_MINUTES = {
    "1m": 1, "3m": 3, "5m": 5, "15m": 15, "30m": 30, "1h": 60, "2h": 120, "4h": 240,
    "6h": 360, "8h": 480, "12h": 720, "1d": 1440, "3d": 4320, "1w": 10080,
}  # fmt: skip


def _from_ms(raw: object) -> datetime:
    """A request's `startTime` (ms) as a time; the epoch when absent."""
    return datetime.fromtimestamp(int(str(raw or 0)) / 1000, tz=UTC)


def _error(code: str | int, msg: str, status: int = 400) -> Reply:
    return status, {"code": int(code), "msg": msg}


# A refusal the venue has no code of its own for goes out as -1102 (a malformed request):
# -1000 would say "unknown error", which leaves an order's execution unknown (story 9).
_NO_CODE = "-1102"


def _refusal(rejected: Rejected) -> Reply:
    code = rejected.code if rejected.code is not None else _NO_CODE
    if rejected.reason is RejectReason.REGION_RESTRICTED:
        # HTTP 451 with code 0, as Binance answers a restricted region (ccxt issue #16044)
        return _error(0, rejected.message, 451)
    return _error(code if code.lstrip("-").isdigit() else _NO_CODE, rejected.message)


class BinanceDialect:
    """The fapi endpoints ccxt's `binanceusdm` calls, answered from a `VenueEngine`."""

    venue = Venue.BINANCE
    ccxt_id = "binanceusdm"
    api_key_header = "X-MBX-APIKEY"

    @staticmethod
    def prepare_client(client: Any) -> None:
        # off binance.com ccxt maps codes through its generic table; use the futures one
        client.exceptions["exact"].update(client.exceptions["linear"]["exact"])

    def __init__(self, engine: VenueEngine) -> None:
        self.engine = engine
        # what the venue counts against its rate limits, sent back in headers
        self.rates = RateCount(BINANCE_LIMITS, fixed=True)
        # facts answered differently from the corpus, for venue-check's tests (ALTERATIONS)
        self.altered: frozenset[str] = frozenset()
        self._algo_kinds: dict[str, tuple[str, Params]] = {}  # engine id -> (orderType, request)
        self._routes: dict[tuple[str, str], Callable[[Params], tuple[Op | None, Handler]]] = {
            ("GET", "/fapi/v1/time"): lambda p: (None, self._time),
            ("GET", "/fapi/v1/ping"): lambda p: (None, lambda _: (200, {})),
            ("GET", "/fapi/v1/exchangeInfo"): lambda p: (Op.FETCH_MARKETS, self._exchange_info),
            ("GET", "/fapi/v1/premiumIndex"): lambda p: (Op.FETCH_MARK, self._premium_index),
            ("GET", "/fapi/v1/leverageBracket"): lambda p: (
                Op.FETCH_MARKETS,
                self._leverage_bracket,
            ),
            ("GET", "/fapi/v3/positionRisk"): lambda p: (Op.FETCH_POSITIONS, self._position_risk),
            ("GET", "/fapi/v2/positionRisk"): lambda p: (Op.FETCH_POSITIONS, self._position_risk),
            ("GET", "/fapi/v3/account"): lambda p: (Op.FETCH_BALANCE, self._account),
            ("GET", "/fapi/v2/account"): lambda p: (Op.FETCH_BALANCE, self._account),
            ("GET", "/fapi/v2/balance"): lambda p: (Op.FETCH_BALANCE, self._balance),
            ("GET", "/fapi/v3/balance"): lambda p: (Op.FETCH_BALANCE, self._balance),
            ("POST", "/fapi/v1/order"): lambda p: (
                Op.LIMIT_ORDER if p.get("type") == "LIMIT" else Op.MARKET_ORDER,
                self._new_order,
            ),
            ("PUT", "/fapi/v1/order"): lambda p: (Op.AMEND, self._modify_order),
            ("GET", "/fapi/v1/order"): lambda p: (Op.FETCH_ORDER, self._query_order),
            ("DELETE", "/fapi/v1/order"): lambda p: (Op.CANCEL, self._cancel_order),
            ("GET", "/fapi/v1/openOrders"): lambda p: (Op.FETCH_OPEN_ORDERS, self._open_orders),
            ("POST", "/fapi/v1/algoOrder"): lambda p: (Op.STOP_ORDER, self._new_algo),
            ("GET", "/fapi/v1/algoOrder"): lambda p: (Op.FETCH_ORDER, self._query_algo),
            ("DELETE", "/fapi/v1/algoOrder"): lambda p: (Op.CANCEL, self._cancel_algo),
            ("GET", "/fapi/v1/openAlgoOrders"): lambda p: (
                Op.FETCH_OPEN_ORDERS,
                self._open_algos,
            ),
            ("GET", "/fapi/v1/userTrades"): lambda p: (Op.FETCH_FILLS, self._user_trades),
            ("GET", "/fapi/v1/income"): lambda p: (Op.FETCH_FUNDING, self._income),
            ("GET", "/fapi/v1/markPriceKlines"): lambda p: (
                Op.FETCH_MARK_CANDLES,
                self._mark_price_klines,
            ),
            ("POST", "/fapi/v1/leverage"): lambda p: (Op.SET_LEVERAGE, self._change_leverage),
            ("POST", "/fapi/v1/marginType"): lambda p: (Op.SET_MARGIN_MODE, self._margin_type),
            ("GET", "/fapi/v1/symbolConfig"): lambda p: (Op.FETCH_LEVERAGE, self._symbol_config),
        }

    # ----------------------------------------------------------------- dialect surface

    def limit_headers(self, method: str, path: str, params: Params, status: int) -> dict[str, str]:
        """The venue's count on every answer: `X-MBX-USED-WEIGHT-1M` (the IP's weight this
        minute) and, on an order accepted, `X-MBX-ORDER-COUNT-10S`/`-1M` (USDⓈ-M General
        Info, LIMITS; "Rejected/unsuccessful orders are not guaranteed to have" them)."""
        now = _ms(self.engine.now())
        charged = self.rates.charge(method, path.rsplit("/", 1)[-1], params, now)
        headers = {"X-MBX-USED-WEIGHT-1M": str(self.rates.used(LIMIT_IP, now))}
        if status == 429:  # "A Retry-After header is sent with a 418 or 429 responses"
            headers["Retry-After"] = "1"
        if status == 200 and LIMIT_ORDERS_10S in charged:
            headers["X-MBX-ORDER-COUNT-10S"] = str(self.rates.used(LIMIT_ORDERS_10S, now))
            headers["X-MBX-ORDER-COUNT-1M"] = str(self.rates.used(LIMIT_ORDERS_1M, now))
        return headers

    def route(self, method: str, path: str, params: Params) -> tuple[Op | None, Handler] | None:
        found = self._routes.get((method, path))
        return None if found is None else found(params)

    def public(self, path: str) -> bool:
        return path in (
            "/fapi/v1/time",
            "/fapi/v1/ping",
            "/fapi/v1/exchangeInfo",
            "/fapi/v1/premiumIndex",
            "/fapi/v1/markPriceKlines",
        )

    def stale(self, headers: Mapping[str, str], params: Params, now_ms: int) -> Reply | None:
        """-1021 when `timestamp` is ahead by over 1 s or older than `recvWindow`."""
        try:
            stamp = int(params.get("timestamp", ""))
            window = int(params.get("recvWindow", "5000"))
        except ValueError:
            return _error(-1102, "Mandatory parameter 'timestamp' was not sent, was empty/null.")
        if stamp - now_ms > 1000 or now_ms - stamp > window:
            return _error(-1021, "Timestamp for this request is outside of the recvWindow.")
        return None

    def ws_request(self, message: Any) -> tuple[list[Any], list[str]]:
        """`{"method": "SUBSCRIBE", "params": ["btcusdt@markPrice@1s"], "id": 1}`."""
        if not isinstance(message, dict) or message.get("method") not in (
            "SUBSCRIBE",
            "UNSUBSCRIBE",
        ):
            return [{"error": {"code": 2, "msg": "Invalid request"}, "id": None}], []
        reply = [{"result": None, "id": message.get("id")}]
        if message["method"] == "UNSUBSCRIBE":
            return reply, []
        symbols = []
        for stream in message.get("params", []):
            name, _, channel = str(stream).partition("@")
            if channel.startswith("markPrice") and name.upper() in self.engine.markets:
                symbols.append(name.upper())
        return reply, symbols

    def ws_tick(self, symbol: str, mark: Decimal, at: datetime) -> Any:
        stamp = _ms(at)
        return {
            "e": "markPriceUpdate",
            "E": stamp,
            "s": symbol,
            "p": _num(mark),
            "i": _num(mark),
            "P": _num(mark),
            "r": "0.00010000",
            "T": stamp + 8 * 3600 * 1000,
        }

    def rate_limited(self) -> Reply:
        return _error(
            -1003,
            "Too many requests; current limit is 2400 requests per minute. Please use the "
            "websocket for live updates to avoid polling the API.",
            429,
        )

    def server_error(self) -> Reply:
        return _error(
            -1001, "Internal error; unable to process your request. Please try again.", 503
        )

    def unauthorized(self) -> Reply:
        return _error(-2015, "Invalid API-key, IP, or permissions for action.", 401)

    def not_found(self, path: str) -> Reply:
        return 404, f"<html><body>404 Not Found: {path}</body></html>"

    # ----------------------------------------------------------------- market data

    def _time(self, _: Params) -> Reply:
        # the venue's clock is the wall clock (signatures are checked against it)
        return 200, {"serverTime": int(time.time() * 1000)}

    def _exchange_info(self, _: Params) -> Reply:
        symbols = []
        for rules in self.engine.markets.values():
            base = rules.symbol.removesuffix("USDT")
            symbols.append(
                {
                    "symbol": rules.symbol,
                    "pair": rules.symbol,
                    "contractType": "PERPETUAL",
                    "deliveryDate": 4133404800000,
                    "onboardDate": 1569398400000,
                    "status": "TRADING" if rules.active else "SETTLING",
                    "maintMarginPercent": "2.5000",
                    "requiredMarginPercent": "5.0000",
                    "baseAsset": base,
                    "quoteAsset": "USDT",
                    "marginAsset": "USDT",
                    "pricePrecision": max(0, -_exponent(rules.tick_size)),
                    "quantityPrecision": max(0, -_exponent(rules.step_size)),
                    "baseAssetPrecision": 8,
                    "quotePrecision": 8,
                    "underlyingType": "COIN",
                    "underlyingSubType": [],
                    "triggerProtect": "0.0500",
                    "liquidationFee": "0.012500",
                    "marketTakeBound": "0.05",
                    "filters": [
                        {
                            "filterType": "PRICE_FILTER",
                            "minPrice": _num(rules.tick_size),
                            "maxPrice": "4529764",
                            "tickSize": _num(rules.tick_size),
                        },
                        {
                            "filterType": "LOT_SIZE",
                            "stepSize": _num(rules.step_size),
                            "maxQty": "1000000",
                            "minQty": _num(rules.min_quantity),
                        },
                        {
                            "filterType": "MARKET_LOT_SIZE",
                            "stepSize": _num(rules.step_size),
                            "maxQty": "1000000",
                            "minQty": _num(rules.min_quantity),
                        },
                        {"filterType": "MAX_NUM_ORDERS", "limit": 200},
                        {"filterType": "MAX_NUM_ALGO_ORDERS", "limit": 10},
                        {"filterType": "MIN_NOTIONAL", "notional": _num(rules.min_notional)},
                        {
                            "filterType": "PERCENT_PRICE",
                            "multiplierUp": "1.0500",
                            "multiplierDown": "0.9500",
                            "multiplierDecimal": "4",
                        },
                    ],
                    "orderTypes": _ORDER_TYPES,
                    "timeInForce": ["GTC", "IOC", "FOK", "GTX", "GTD"],
                }
            )
        return 200, {
            "timezone": "UTC",
            "serverTime": _ms(self.engine.now()),
            "rateLimits": [],
            "exchangeFilters": [],
            "assets": [{"asset": "USDT", "marginAvailable": True, "autoAssetExchange": "-10000"}],
            "symbols": symbols,
        }

    def _premium_index(self, params: Params) -> Reply:
        symbol = params.get("symbol")
        if symbol is not None:
            mark = self.engine.mark(symbol)
            if mark is None:
                return _error(-1121, "Invalid symbol.")
            return 200, self._premium(symbol, mark)
        return 200, [
            self._premium(s, m)
            for s in self.engine.markets
            if (m := self.engine.mark(s)) is not None
        ]

    def _premium(self, symbol: str, mark: Decimal) -> dict[str, Any]:
        now = _ms(self.engine.now())
        return {
            "symbol": symbol,
            "markPrice": _num(mark),
            "indexPrice": _num(mark),
            "estimatedSettlePrice": _num(mark),
            "lastFundingRate": "0.00010000",
            "interestRate": "0.00010000",
            "nextFundingTime": now + 8 * 3600 * 1000,
            "time": now,
        }

    def _leverage_bracket(self, params: Params) -> Reply:
        """GET /fapi/v1/leverageBracket ("Notional and Leverage Brackets"): the engine's own
        tiers, in the venue's JSON numbers."""

        def brackets(symbol: str) -> dict[str, Any]:
            return {
                "symbol": symbol,
                "notionalCoef": 1.0,
                "brackets": [
                    {
                        "bracket": n,
                        "initialLeverage": int(tier.max_leverage),
                        "notionalCap": int(tier.max_notional),
                        "notionalFloor": int(tier.min_notional),
                        "maintMarginRatio": float(tier.maintenance_rate),
                        "cum": float(tier.maintenance_amount),
                    }
                    for n, tier in enumerate(self.engine.leverage_tiers(symbol), start=1)
                ],
            }

        symbol = params.get("symbol")
        if symbol is not None:
            if symbol not in self.engine.markets:
                return _error(-1121, "Invalid symbol.")
            return 200, [brackets(symbol)]
        return 200, [brackets(s) for s in self.engine.markets]

    # ----------------------------------------------------------------- leverage, margin type

    def _change_leverage(self, p: Params) -> Reply:
        """POST /fapi/v1/leverage ("Change Initial Leverage", developers.binance.com/docs/
        derivatives/usds-margined-futures/trade/rest-api/Change-Initial-Leverage): answers
        `{"leverage": 21, "maxNotionalValue": "1000000", "symbol": "BTCUSDT"}`."""
        symbol = p.get("symbol", "")
        try:
            leverage = Decimal(p.get("leverage", ""))
        except ArithmeticError:
            return _error(-1102, "Mandatory parameter 'leverage' was not sent, was empty/null.")
        altered = "leverage_not_applied" in self.altered  # acknowledged, never held
        result = None if altered else self.engine.change_leverage(symbol, leverage)
        if isinstance(result, Rejected):
            return _refusal(result)
        cap = max((t.max_notional for t in self.engine.leverage_tiers(symbol)), default=ZERO)
        return 200, {"leverage": int(leverage), "maxNotionalValue": _num(cap), "symbol": symbol}

    def _margin_type(self, p: Params) -> Reply:
        """POST /fapi/v1/marginType ("Change Margin Type"): `{"code": 200, "msg": "success"}`;
        -4046 "No need to change margin type." when the symbol has it already."""
        kind = p.get("marginType", "").upper()
        modes = {"ISOLATED": MarginMode.ISOLATED, "CROSSED": MarginMode.CROSS}
        if kind not in modes:
            return _error(-1102, "Mandatory parameter 'marginType' was not sent, was empty/null.")
        result = self.engine.change_margin_mode(p.get("symbol", ""), modes[kind])
        if isinstance(result, Rejected):
            return _refusal(result)
        return 200, {"code": 200, "msg": "success"}

    def _symbol_config(self, p: Params) -> Reply:
        """GET /fapi/v1/symbolConfig ("Symbol Configuration", account/rest-api/Symbol-Config):
        `[{"symbol", "marginType": "CROSSED", "isAutoAddMargin": "false", "leverage": 21,
        "maxNotionalValue": "1000000"}]`, every symbol without `symbol`."""
        symbol = p.get("symbol")
        if symbol is not None and symbol not in self.engine.markets:
            return _error(-1121, "Invalid symbol.")
        rows = []
        for name in [symbol] if symbol else list(self.engine.markets):
            mode = self.engine.margin_mode(name)
            leverage = self.engine.leverage(name) or ZERO
            cap = max((t.max_notional for t in self.engine.leverage_tiers(name)), default=ZERO)
            rows.append(
                {
                    "symbol": name,
                    "marginType": "ISOLATED" if mode is MarginMode.ISOLATED else "CROSSED",
                    "isAutoAddMargin": "false",
                    "leverage": int(leverage),
                    "maxNotionalValue": _num(cap),
                }
            )
        return 200, rows

    # ----------------------------------------------------------------- account

    def _position_risk(self, params: Params) -> Reply:
        rows = []
        for position in self.engine.positions():
            if params.get("symbol") not in (None, position.symbol):
                continue
            signed = position.quantity if position.side.value == "long" else -position.quantity
            mark = position.mark_price or position.entry_price
            rows.append(
                {
                    "symbol": position.symbol,
                    "positionSide": "BOTH",
                    "positionAmt": _num(signed),
                    "entryPrice": _num(position.entry_price),
                    "breakEvenPrice": _num(position.entry_price),
                    "markPrice": _num(mark),
                    "unRealizedProfit": _num(position.unrealized_pnl),
                    "liquidationPrice": _num(position.liquidation_price),
                    "isolatedMargin": "0",
                    "notional": _num(signed * mark),
                    "marginAsset": "USDT",
                    "isolatedWallet": "0",
                    "initialMargin": _num(abs(signed) * mark / 10),
                    "maintMargin": "0",
                    "positionInitialMargin": _num(abs(signed) * mark / 10),
                    "openOrderInitialMargin": "0",
                    "adl": 1,
                    "bidNotional": "0",
                    "askNotional": "0",
                    "updateTime": _ms(self.engine.now()),
                }
            )
        return 200, rows

    def _asset(self) -> dict[str, Any]:
        balance = self.engine.balance()
        return {
            "asset": "USDT",
            "walletBalance": _num(balance.total),
            "unrealizedProfit": "0",
            "marginBalance": _num(balance.total),
            "maintMargin": "0",
            "initialMargin": _num(balance.used),
            "positionInitialMargin": _num(balance.used),
            "openOrderInitialMargin": "0",
            "crossWalletBalance": _num(balance.total),
            "crossUnPnl": "0",
            "availableBalance": _num(balance.free),
            "maxWithdrawAmount": _num(balance.free),
            "updateTime": _ms(self.engine.now()),
        }

    def _account(self, _: Params) -> Reply:
        asset = self._asset()
        return 200, {
            "totalInitialMargin": asset["initialMargin"],
            "totalMaintMargin": "0",
            "totalWalletBalance": asset["walletBalance"],
            "totalUnrealizedProfit": "0",
            "totalMarginBalance": asset["marginBalance"],
            "totalPositionInitialMargin": asset["initialMargin"],
            "totalOpenOrderInitialMargin": "0",
            "totalCrossWalletBalance": asset["walletBalance"],
            "totalCrossUnPnl": "0",
            "availableBalance": asset["availableBalance"],
            "maxWithdrawAmount": asset["availableBalance"],
            "assets": [asset],
            "positions": [],
        }

    def _balance(self, _: Params) -> Reply:
        asset = self._asset()
        return 200, [
            {
                "accountAlias": "SgsR",
                "asset": "USDT",
                "balance": asset["walletBalance"],
                "crossWalletBalance": asset["walletBalance"],
                "crossUnPnl": "0",
                "availableBalance": asset["availableBalance"],
                "maxWithdrawAmount": asset["availableBalance"],
                "marginAvailable": True,
                "updateTime": asset["updateTime"],
            }
        ]

    # ----------------------------------------------------------------- orders

    def _new_order(self, p: Params) -> Reply:
        kind = p.get("type", "")
        if kind in _CONDITIONAL:
            return _error(
                -4120,
                "Order type not supported for this endpoint. Please use the Algo Order API "
                "endpoints instead.",
            )
        cid = p.get("newClientOrderId")
        reduce_only = _flag(p, "reduceOnly")
        if kind == "MARKET":
            result = self.engine.place_market(
                p.get("symbol", ""),
                p.get("side", ""),
                p.get("quantity"),
                client_order_id=cid,
                reduce_only=reduce_only,
            )
        elif kind == "LIMIT":
            result = self.engine.place_limit(
                p.get("symbol", ""),
                p.get("side", ""),
                p.get("quantity"),
                p.get("price"),
                client_order_id=cid,
                reduce_only=reduce_only,
            )
        else:
            return _error(-1116, "Invalid orderType.")
        return self._answer(result, self._placed)

    def _modify_order(self, p: Params) -> Reply:
        symbol, order_id = p.get("symbol", ""), p.get("orderId", "")
        current = self._regular(symbol, order_id)
        if current is None or not current.is_open:
            return _error(-2013, "Order does not exist.")
        result = self.engine.amend(symbol, order_id, price=p.get("price"))
        return self._answer(result, self._placed)

    def _query_order(self, p: Params) -> Reply:
        symbol = p.get("symbol", "")
        order: Order | None
        if "orderId" in p:
            order = self._regular(symbol, p["orderId"])
        else:
            order = self.engine.order_by_client_id(symbol, p.get("origClientOrderId", ""))
        if order is None or (order.is_conditional and order.filled == ZERO):
            return _error(-2013, "Order does not exist.")
        return 200, _without(self._order(order), _LOOKED_UP_OMITS)

    def _cancel_order(self, p: Params) -> Reply:
        symbol = p.get("symbol", "")
        order_id = p.get("orderId") or self._open_id(symbol, p.get("origClientOrderId"))
        order = self._regular(symbol, order_id or "")
        if order is None or order.is_conditional:
            return _error(-2011, "Unknown order sent.")
        cancelled = self.engine.cancel(symbol, order.order_id)
        return self._answer(cancelled, lambda o: _without(self._order(o), _CANCELLED_OMITS))

    def _open_orders(self, p: Params) -> Reply:
        orders = self.engine.open_orders(p.get("symbol"))
        return 200, [
            _without(self._order(o), _LOOKED_UP_OMITS) for o in orders if not o.is_conditional
        ]

    def _user_trades(self, p: Params) -> Reply:
        """Account Trade List (USER_DATA), `GET /fapi/v1/userTrades`: oldest first, at most
        `limit` (default 500, max 1000) from `startTime`; `orderId` narrows to one order.
        At most 7 days: "If startTime and endTime are both not sent, then the last 7 days'
        data will be returned. The time between startTime and endTime cannot be longer than
        7 days." — `startTime` alone gives [startTime, +7 days] (ccxt sends `endTime` so)."""
        symbol = p.get("symbol")
        if not symbol:
            return _error(-1102, "Mandatory parameter 'symbol' was not sent, was empty/null.")
        now = self.engine.now()
        end = _from_ms(p["endTime"]) if p.get("endTime") else None
        if p.get("startTime"):
            since = _from_ms(p.get("startTime"))
            end = end or since + _WEEK
        else:
            end = end or now
            since = end - _WEEK
        if end - since > _WEEK:
            return _error(-1127, "More than 168 hours between startTime and endTime.")
        fills = [f for f in self.engine.fills(symbol, since) if f.at <= end]
        if p.get("orderId"):
            fills = [f for f in fills if f.order_id == str(p["orderId"])]
        limit = min(int(p.get("limit") or 500), 1000)
        rows = [
            {
                "buyer": f.side is OrderSide.BUY,
                "commission": _num(f.fee),
                "commissionAsset": f.fee_asset,
                "id": int((f.trade_id or "T0").lstrip("TF")),
                "maker": False,
                "orderId": int(f.order_id),
                "price": _num(f.price),
                "qty": _num(f.quantity),
                "quoteQty": _num(f.price * f.quantity),
                "realizedPnl": "0",
                "side": "BUY" if f.side is OrderSide.BUY else "SELL",
                "positionSide": "BOTH",
                "symbol": f.symbol,
                "time": _ms(f.at),
            }
            for f in fills[:limit]
        ]
        return 200, rows

    def _income(self, p: Params) -> Reply:
        """Get Income History (USER_DATA), `GET /fapi/v1/income`: FUNDING_FEE rows only (the
        only income type this venue simulates), `income` negative when paid."""
        symbol = p.get("symbol")
        if p.get("incomeType") not in (None, "FUNDING_FEE") or not symbol:
            return 200, []
        payments = self.engine.funding(symbol, _from_ms(p.get("startTime")))
        limit = min(int(p.get("limit") or 100), 1000)
        return 200, [
            {
                "symbol": f.symbol,
                "incomeType": "FUNDING_FEE",
                "income": _num(f.amount),
                "asset": f.asset,
                "info": "FUNDING_FEE",
                "time": _ms(f.at),
                "tranId": int((f.payment_id or "F0").lstrip("TF")),
                "tradeId": "",
            }
            for f in payments[:limit]
        ]

    def _mark_price_klines(self, p: Params) -> Reply:
        """Mark Price Kline/Candlestick Data, `GET /fapi/v1/markPriceKlines`: rows `[open
        time, open, high, low, close, "0", close time, "0", count, "0", "0", "0"]` from
        `startTime` to `endTime` (now when it is not sent), at most `limit` ("Default 500;
        max 1500"): the first of them, or without `startTime` the last; an interval the
        venue does not list is -1120."""
        minutes = _KLINE_MINUTES.get(p.get("interval", ""))
        if minutes is None:
            return _error(-1120, "Invalid interval.")
        symbol = p.get("symbol", "")
        if symbol not in self.engine.markets:
            return _error(-1121, "Invalid symbol.")
        limit = min(int(p.get("limit") or 500), 1500)
        now = self.engine.now()
        end = _from_ms(p["endTime"]) if "endTime" in p else now
        start = _from_ms(p["startTime"]) if "startTime" in p else end - limit * minutes * _MINUTE
        rows = [c for c in self.engine.mark_candles(symbol, start, minutes) if c.opened_at <= end]
        rows = rows[:limit] if "startTime" in p else rows[-limit:]
        return 200, [
            [
                _ms(c.opened_at),
                _num(c.open),
                _num(c.high),
                _num(c.low),
                _num(c.close),
                "0",
                _ms(c.closes_at) - 1,
                "0",
                minutes * 60,
                "0",
                "0",
                "0",
            ]
            for c in rows
        ]

    def _new_algo(self, p: Params) -> Reply:
        if p.get("algoType") != "CONDITIONAL":
            return _error(-1102, "Mandatory parameter 'algoType' was not sent, was empty/null.")
        kind = p.get("type", "")
        if kind not in _CONDITIONAL:
            return _error(-1116, "Invalid orderType.")
        if kind in ("STOP", "TAKE_PROFIT") and "price" not in p:
            return _error(-1102, "Mandatory parameter 'price' was not sent, was empty/null.")
        result = self._place_algo(kind, p)
        if isinstance(result, Accepted):
            self._algo_kinds[result.order.order_id] = (kind, p)
        return self._answer(result, lambda o: _without(self._algo(o), _ALGO_PLACED_OMITS))

    def _place_algo(self, kind: str, p: Params) -> Accepted | Rejected:
        symbol, side = p.get("symbol", ""), p.get("side", "")
        close = _flag(p, "closePosition")
        quantity = p.get("quantity", "0") if not close else "0"
        cid = p.get("clientAlgoId")
        if kind == "TRAILING_STOP_MARKET":
            try:  # callbackRate: "min 0.1, max 10 where 1 for 1%" (New Algo Order)
                rate = Decimal(p.get("callbackRate", "")) / 100
            except ArithmeticError:
                return self.engine.profile.refusal(RejectReason.OTHER, code="-1102")
            return self.engine.place_trailing_stop(
                symbol,
                side,
                quantity,
                rate=rate,
                activation=p.get("activatePrice"),
                client_order_id=cid,
            )
        place = self.engine.place_take_profit if kind.startswith("TAKE") else self.engine.place_stop
        return place(
            symbol,
            side,
            quantity,
            p.get("triggerPrice"),
            client_order_id=cid,
            reduce_only=_flag(p, "reduceOnly"),
            close_position=close,
        )

    def _query_algo(self, p: Params) -> Reply:
        order = self._find_algo(p)
        if order is None:
            return _error(-2013, "Order does not exist.")
        return 200, _without(self._algo(order), _ALGO_LOOKED_UP_OMITS)

    def _cancel_algo(self, p: Params) -> Reply:
        order = self._find_algo(p)
        if order is None or not order.is_open:
            return _error(-2011, "Unknown order sent.")
        result = self.engine.cancel(order.symbol, order.order_id)
        if isinstance(result, Rejected):
            return _refusal(result)
        # the documented answer names the order, not its state (Binance USDⓈ-M "Cancel Algo
        # Order", Response Example)
        algo = self._algo(result.order)
        return 200, {
            "algoId": algo["algoId"],
            "clientAlgoId": algo["clientAlgoId"],
            "code": "200",
            "msg": "success",
        }

    def _open_algos(self, p: Params) -> Reply:
        orders = self.engine.open_orders(p.get("symbol"))
        return 200, [self._algo(o) for o in orders if o.is_conditional]

    # ----------------------------------------------------------------- helpers

    def _find_algo(self, p: Params) -> Order | None:
        if "algoId" in p:
            order = self.engine.order(_engine_id(p["algoId"]))
        else:
            order = None
            for candidate in self.engine.all_orders():
                if candidate.client_order_id == p.get("clientAlgoId") and candidate.is_conditional:
                    order = candidate
        if order is None or not order.is_conditional:
            return None
        if "symbol" in p and order.symbol != p["symbol"]:
            return None
        return order

    def _regular(self, symbol: str, order_id: str) -> Order | None:
        order = self.engine.order(order_id)
        if order is None or order.symbol != symbol:
            return None
        return order

    def _open_id(self, symbol: str, client_id: str | None) -> str | None:
        for order in self.engine.open_orders(symbol):
            if order.client_order_id == client_id:
                return order.order_id
        return None

    @staticmethod
    def _answer(result: Accepted | Rejected, render: Callable[[Order], dict[str, Any]]) -> Reply:
        if isinstance(result, Rejected):
            return _refusal(result)
        return 200, render(result.order)

    def _placed(self, order: Order) -> dict[str, Any]:
        return _without(self._order(order), _PLACED_OMITS)

    def _order(self, order: Order) -> dict[str, Any]:
        """A regular order; a fired stop appears here as the market order it became."""
        conditional = order.is_conditional
        kind = "MARKET" if conditional else order.type.value.upper()
        quantity = order.filled if conditional and order.quantity == ZERO else order.quantity
        status = _STATUS[order.status]
        if order.status is OrderStatus.EXPIRED and order.filled > ZERO:
            status = "PARTIALLY_FILLED" if order.is_open else "EXPIRED"
        return {
            "orderId": int(order.order_id),
            "symbol": order.symbol,
            "status": status,
            "clientOrderId": order.client_order_id or f"autoclose-{order.order_id}",
            "price": _num(order.price),
            "avgPrice": _num(order.average_price),
            "origQty": _num(quantity),
            "executedQty": _num(order.filled),
            "cumQty": _num(order.filled),
            "cumQuote": _num(order.filled * (order.average_price or ZERO)),
            "timeInForce": "GTC",
            "type": kind,
            "reduceOnly": order.reduce_only,
            "closePosition": False,
            "side": order.side.value.upper(),
            "positionSide": "BOTH",
            "stopPrice": "0",
            "workingType": "CONTRACT_PRICE",
            "priceProtect": False,
            "origType": kind,
            "priceMatch": "NONE",
            "selfTradePreventionMode": "EXPIRE_MAKER",
            "goodTillDate": 0,
            "time": _ms(order.created_at),
            "updateTime": _ms(order.updated_at),
        }

    def _algo(self, order: Order) -> dict[str, Any]:
        fired = order.filled > ZERO
        if order.is_open:
            status = "NEW"
        elif fired:
            status = "FINISHED"
        else:
            status = "CANCELED" if order.status is OrderStatus.CANCELED else "EXPIRED"
        kind, request = self._algo_kinds.get(
            order.order_id, (_ALGO_TYPES.get(order.type, "STOP_MARKET"), {})
        )
        trailing: dict[str, Any] = {}
        if order.type is OrderType.TRAILING_STOP:  # only with trailing orders
            trailing = {
                "activatePrice": request.get("activatePrice", ""),  # "" unsent (New Algo Order)
                "callbackRate": request.get("callbackRate", ""),
            }
        return {
            **trailing,
            "algoId": int(order.order_id) - _ALGO_OFFSET,
            "clientAlgoId": order.client_order_id or "",
            "algoType": "CONDITIONAL",
            "orderType": kind,
            "symbol": order.symbol,
            "side": order.side.value.upper(),
            "positionSide": "BOTH",
            "timeInForce": "GTE_GTC" if order.close_position else "GTC",
            "quantity": _num(order.quantity),
            "algoStatus": status,
            "actualOrderId": order.order_id if fired else "",
            "actualPrice": _num(order.average_price) if fired else "0.00000",
            "triggerPrice": _num(order.trigger_price),
            "price": request.get("price", "0"),
            "icebergQuantity": None,
            "tpTriggerPrice": "0.000",
            "tpPrice": "0.000",
            "slTriggerPrice": "0.000",
            "slPrice": "0.000",
            "tpOrderType": "",
            "selfTradePreventionMode": "EXPIRE_MAKER",
            "workingType": "MARK_PRICE",
            "priceMatch": "NONE",
            "closePosition": order.close_position,
            "priceProtect": False,
            "reduceOnly": order.reduce_only,
            "createTime": _ms(order.created_at),
            "updateTime": _ms(order.updated_at),
            "triggerTime": _ms(order.updated_at) if fired else 0,
            "goodTillDate": 0,
        }


def _exponent(value: Decimal) -> int:
    exponent = value.normalize().as_tuple().exponent
    return exponent if isinstance(exponent, int) else 0


register_dialect(BinanceDialect)

__all__ = ["BinanceDialect", "RejectReason"]
