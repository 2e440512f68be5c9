"""Bybit v5 (linear) over the simulated engine, in Bybit's own JSON.

Every answer is HTTP 200 with `retCode`/`retMsg` (0 = OK), as on the real venue. A
conditional order rests as `Untriggered`; the position's own stop (trading-stop,
`tpslMode=Full`) is listed among stop orders as `stopOrderType=StopLoss`. `order/realtime`
with an `orderId` or `orderLinkId` finds an order of any status (the venue keeps the last
500), without one it lists open orders only.
"""

import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, TypeVar

from tradecore.adapters.ccxt.venues import dialect_for
from tradecore.adapters.ccxt.venues.bybit import IP as BYBIT_IP
from tradecore.adapters.paper.engine import VenueEngine
from tradecore.adapters.paper.faults import Op
from tradecore.domain.leverage import MarginMode
from tradecore.domain.model import OrderSide, Side, Venue
from tradecore.domain.numbers import ZERO
from tradecore.domain.orders import Order, OrderStatus, OrderType
from tradecore.ports.exchange import Accepted, Rejected, RejectReason
from tradecore.testing.loopback.ratecount import RateCount
from tradecore.testing.loopback.server import Handler, Params, Reply, register_dialect

T = TypeVar("T")

_STATUS = {
    OrderStatus.OPEN: "New",
    OrderStatus.PARTIALLY_FILLED: "PartiallyFilled",
    OrderStatus.FILLED: "Filled",
    OrderStatus.CANCELED: "Cancelled",
    OrderStatus.REJECTED: "Rejected",
    OrderStatus.EXPIRED: "Deactivated",
    OrderStatus.TRIGGERED: "Triggered",
}


def _ms(at: datetime | None) -> str:
    return "0" if at is None else str(int(at.timestamp() * 1000))


def _num(value: Decimal | None) -> str:
    return "0" if value is None else format(value, "f")


class BybitDialect:
    """The v5 endpoints ccxt's `bybit` calls for linear contracts, from a `VenueEngine`."""

    venue = Venue.BYBIT
    ccxt_id = "bybit"
    api_key_header = "X-BAPI-API-KEY"
    # (method, path) of the endpoints a venue speaking v5 under its own name lacks (a
    # subclass says so): answered as an unknown path, 404
    lacks: frozenset[tuple[str, str]] = frozenset()

    @staticmethod
    def prepare_client(client: Any) -> None:
        return None

    def __init__(self, engine: VenueEngine) -> None:
        self.engine = engine
        # what the venue counts against its rate limits, sent back in headers
        # counted with the venue's own published limits (its ccxt dialect's `limits`)
        self.rates = RateCount(dialect_for(self.venue).limits, fixed=False)
        # facts answered differently from the corpus, for venue-check's tests (ALTERATIONS)
        self.altered: frozenset[str] = frozenset()
        self._sequence = 0
        # False: as after a venue restart, the live list no longer shows closed orders
        self.realtime_keeps_closed = True
        # orders trading-stop made for a position's take-profit or trailing stop, by symbol
        # and `stopOrderType` ("TakeProfit", "TrailingStop"); engine order ids
        self._attached: dict[str, dict[str, str]] = {}
        self._routes: dict[tuple[str, str], Callable[[Params], tuple[Op | None, Handler]]] = {
            ("GET", "/v5/market/time"): lambda p: (None, self._time),
            ("GET", "/v5/market/instruments-info"): lambda p: (Op.FETCH_MARKETS, self._instruments),
            ("GET", "/v5/market/tickers"): lambda p: (Op.FETCH_MARK, self._tickers),
            ("GET", "/v5/position/list"): lambda p: (Op.FETCH_POSITIONS, self._positions),
            ("GET", "/v5/account/wallet-balance"): lambda p: (Op.FETCH_BALANCE, self._wallet),
            ("POST", "/v5/order/create"): lambda p: (self._create_op(p), self._create),
            ("POST", "/v5/order/amend"): lambda p: (Op.AMEND, self._amend),
            ("POST", "/v5/order/cancel"): lambda p: (Op.CANCEL, self._cancel),
            ("GET", "/v5/order/realtime"): lambda p: (
                Op.FETCH_ORDER if ("orderId" in p or "orderLinkId" in p) else Op.FETCH_OPEN_ORDERS,
                self._realtime,
            ),
            ("GET", "/v5/order/history"): lambda p: (Op.FETCH_ORDER, self._history),
            ("POST", "/v5/position/trading-stop"): lambda p: (Op.POSITION_STOP, self._trading_stop),
            ("GET", "/v5/execution/list"): lambda p: (Op.FETCH_FILLS, self._executions),
            ("POST", "/v5/position/set-leverage"): lambda p: (
                Op.SET_LEVERAGE,
                self._set_leverage,
            ),
            ("GET", "/v5/account/info"): lambda p: (Op.FETCH_LEVERAGE, self._account_info),
            ("GET", "/v5/market/risk-limit"): lambda p: (Op.FETCH_LEVERAGE, self._risk_limit),
            ("GET", "/v5/market/mark-price-kline"): lambda p: (
                Op.FETCH_MARK_CANDLES,
                self._mark_price_kline,
            ),
            ("GET", "/v5/account/transaction-log"): lambda p: (
                Op.FETCH_FUNDING,
                self._transaction_log,
            ),
        }

    # ----------------------------------------------------------------- dialect surface

    def limit_headers(self, method: str, path: str, params: Params, status: int) -> dict[str, str]:
        """The endpoint's count per UID on every answer of an endpoint with its own limit:
        `X-Bapi-Limit`, `X-Bapi-Limit-Status` (what is left), `X-Bapi-Limit-Reset-Timestamp`
        (when it resets once exceeded, else now) — v5 "Rate Limit Rules"."""
        now = int(self.engine.now().timestamp() * 1000)
        self.rates.charge(method, path.removeprefix("/"), params, now)
        endpoint = path.removeprefix("/v5/")
        limit = self.rates.limit.get(endpoint)
        if limit is None or endpoint == BYBIT_IP:
            return {}
        left = max(0, limit - self.rates.used(endpoint, now))
        reset = now if left > 0 else (self.rates.oldest(endpoint, now) or now) + 1000
        return {
            "X-Bapi-Limit": str(limit),
            "X-Bapi-Limit-Status": str(left),
            "X-Bapi-Limit-Reset-Timestamp": str(reset),
        }

    def route(self, method: str, path: str, params: Params) -> tuple[Op | None, Handler] | None:
        found = None if (method, path) in self.lacks else self._routes.get((method, path))
        return None if found is None else found(params)

    def public(self, path: str) -> bool:
        return path.startswith("/v5/market/")

    def stale(self, headers: Mapping[str, str], params: Params, now_ms: int) -> Reply | None:
        """10002 when X-BAPI-TIMESTAMP is ahead by over 1 s or older than the recv window."""
        try:
            stamp = int(headers.get("X-BAPI-TIMESTAMP", ""))
            window = int(headers.get("X-BAPI-RECV-WINDOW", "5000"))
        except ValueError:
            return self._error("10004", "error sign! missing X-BAPI-TIMESTAMP")
        if stamp - now_ms > 1000 or now_ms - stamp > window:
            return self._error(
                "10002",
                "invalid request, please check your server timestamp or recv_window param. "
                f"req_timestamp[{stamp}],server_timestamp[{now_ms}],recv_window[{window}]",
            )
        return None

    def ws_request(self, message: Any) -> tuple[list[Any], list[str]]:
        """`{"op": "subscribe", "args": ["tickers.BTCUSDT"], "req_id": "1"}`, and pings."""
        if not isinstance(message, dict):
            return [{"success": False, "ret_msg": "invalid request", "op": ""}], []
        op = message.get("op")
        reply = {
            "success": True,
            "ret_msg": "pong" if op == "ping" else "",
            "conn_id": "loopback",
            "req_id": message.get("req_id", ""),
            "op": op,
        }
        if op != "subscribe":
            return [reply], []
        symbols = []
        for topic in message.get("args", []):
            channel, _, symbol = str(topic).partition(".")
            if channel == "tickers" and symbol in self.engine.markets:
                symbols.append(symbol)
        return [reply], symbols

    def ws_tick(self, symbol: str, mark: Decimal, at: datetime) -> Any:
        self._sequence += 1
        return {
            "topic": f"tickers.{symbol}",
            "type": "snapshot",
            "data": {
                "symbol": symbol,
                "tickDirection": "ZeroPlusTick",
                "price24hPcnt": "0",
                "lastPrice": _num(mark),
                "prevPrice24h": _num(mark),
                "highPrice24h": _num(mark),
                "lowPrice24h": _num(mark),
                "prevPrice1h": _num(mark),
                "markPrice": _num(mark),
                "indexPrice": _num(mark),
                "openInterest": "0",
                "openInterestValue": "0",
                "turnover24h": "0",
                "volume24h": "0",
                "nextFundingTime": "0",
                "fundingRate": "0.0001",
                "bid1Price": _num(mark),
                "bid1Size": "1",
                "ask1Price": _num(mark),
                "ask1Size": "1",
            },
            "cs": self._sequence,
            "ts": int(_ms(at)),
        }

    def rate_limited(self) -> Reply:
        return self._error("10006", "Too many visits!")

    def server_error(self) -> Reply:
        return 503, "<html><body><h1>503 Service Temporarily Unavailable</h1></body></html>"

    def unauthorized(self) -> Reply:
        return self._error("10003", "API key is invalid.")

    def not_found(self, path: str) -> Reply:
        return 404, f"<html><body>404 Not Found: {path}</body></html>"

    def _ok(self, result: Any) -> Reply:
        return 200, {
            "retCode": 0,
            "retMsg": "OK",
            "result": result,
            "retExtInfo": {},
            "time": int(time.time() * 1000),  # the venue's wall clock
        }

    def _error(self, code: str | None, message: str) -> Reply:
        return 200, {
            "retCode": int(code) if code and code.isdigit() else 10001,
            "retMsg": message,
            "result": {},
            "retExtInfo": {},
            "time": int(time.time() * 1000),  # the venue's wall clock
        }

    def _not_found(self) -> Reply:
        """The venue's "no such open order" (Bybit 110001), from the engine's dialect: a
        venue speaking this wire format with codes of its own answers its own."""
        refused = self.engine.dialect.refusal(RejectReason.ORDER_NOT_FOUND)
        return self._error(refused.code, refused.message)

    def _answer(self, result: Accepted | Rejected) -> Reply:
        if isinstance(result, Rejected):
            return self._error(result.code, result.message)
        order = result.order
        return self._ok({"orderId": order.order_id, "orderLinkId": order.client_order_id or ""})

    # ----------------------------------------------------------------- market data

    def _time(self, _: Params) -> Reply:
        now = time.time()
        return self._ok({"timeSecond": str(int(now)), "timeNano": str(int(now * 1e9))})

    def _instruments(self, p: Params) -> Reply:
        if p.get("category") != "linear":
            return self._ok({"category": p.get("category"), "list": [], "nextPageCursor": ""})
        rows = []
        for rules in self.engine.markets.values():
            if p.get("symbol") not in (None, rules.symbol):
                continue
            rows.append(
                {
                    "symbol": rules.symbol,
                    "contractType": "LinearPerpetual",
                    "status": "Trading" if rules.active else "Closed",
                    "baseCoin": rules.symbol.removesuffix("USDT"),
                    "quoteCoin": "USDT",
                    "launchTime": "1585526400000",
                    "deliveryTime": "0",
                    "deliveryFeeRate": "",
                    "priceScale": str(max(0, -_exponent(rules.tick_size))),
                    "leverageFilter": {
                        "minLeverage": "1",
                        "maxLeverage": _num(rules.max_leverage),
                        "leverageStep": "0.01",
                    },
                    "priceFilter": {
                        "minPrice": _num(rules.tick_size),
                        "maxPrice": "1999999.80",
                        "tickSize": _num(rules.tick_size),
                    },
                    "lotSizeFilter": {
                        "maxOrderQty": "1000000",
                        "minOrderQty": _num(rules.min_quantity),
                        "qtyStep": _num(rules.step_size),
                        "postOnlyMaxOrderQty": "1000000",
                        "maxMktOrderQty": "1000000",
                        "minNotionalValue": _num(rules.min_notional),
                    },
                    "unifiedMarginTrade": True,
                    "fundingInterval": 480,
                    "settleCoin": "USDT",
                    "copyTrading": "both",
                    "upperFundingRate": "0.00375",
                    "lowerFundingRate": "-0.00375",
                    "isPreListing": False,
                    "preListingInfo": None,
                }
            )
        return self._ok({"category": "linear", "list": rows, "nextPageCursor": ""})

    def _tickers(self, p: Params) -> Reply:
        symbol = p.get("symbol")
        if symbol is not None and self.engine.mark(symbol) is None:
            return self._error("10001", "params error: symbol invalid")
        rows = []
        for s in self.engine.markets:
            mark = self.engine.mark(s)
            if mark is None or symbol not in (None, s):
                continue
            rows.append(
                {
                    "symbol": s,
                    "lastPrice": _num(mark),
                    "indexPrice": _num(mark),
                    "markPrice": _num(mark),
                    "prevPrice24h": _num(mark),
                    "price24hPcnt": "0",
                    "highPrice24h": _num(mark),
                    "lowPrice24h": _num(mark),
                    "prevPrice1h": _num(mark),
                    "openInterest": "0",
                    "openInterestValue": "0",
                    "turnover24h": "0",
                    "volume24h": "0",
                    "fundingRate": "0.0001",
                    "nextFundingTime": "0",
                    "predictedDeliveryPrice": "",
                    "basisRate": "",
                    "deliveryFeeRate": "",
                    "deliveryTime": "0",
                    "ask1Size": "1",
                    "bid1Price": _num(mark),
                    "ask1Price": _num(mark),
                    "bid1Size": "1",
                    "basis": "",
                }
            )
        return self._ok({"category": "linear", "list": rows})

    # ----------------------------------------------------------------- account

    def _positions(self, p: Params) -> Reply:
        """Get Position Info: "If symbol passed, it returns data regardless of having
        position or not" (v5 /position), a flat one with side "" and size "0"."""
        rows = []
        symbol = p.get("symbol")
        known = symbol is not None and symbol in self.engine.markets
        if known and symbol is not None and self.engine.position(symbol) is None:
            rows.append(self._flat_position(symbol))
        for position in self.engine.positions():
            if symbol not in (None, position.symbol):
                continue
            mark = position.mark_price or position.entry_price
            rows.append(
                {
                    "positionIdx": 0,
                    "riskId": 1,
                    "riskLimitValue": "2000000",
                    "symbol": position.symbol,
                    "side": "Buy" if position.side is Side.LONG else "Sell",
                    "size": _num(position.quantity),
                    "avgPrice": _num(position.entry_price),
                    "positionValue": _num(position.quantity * position.entry_price),
                    "tradeMode": 0,
                    "positionStatus": "Normal",
                    "autoAddMargin": 0,
                    "adlRankIndicator": 2,
                    "leverage": _num(self.engine.leverage(position.symbol)),
                    "positionBalance": "0",
                    "markPrice": _num(mark),
                    "liqPrice": _num(position.liquidation_price),
                    "bustPrice": "",
                    "positionMM": "0",
                    "positionIM": _num(position.quantity * position.entry_price / 10),
                    "tpslMode": "Full",
                    "takeProfit": "0",
                    "stopLoss": _num(position.stop_price),
                    "trailingStop": "0",
                    "unrealisedPnl": _num(position.unrealized_pnl),
                    "curRealisedPnl": "0",
                    "cumRealisedPnl": "0",
                    "seq": 1,
                    "isReduceOnly": False,
                    "mmrSysUpdatedTime": "",
                    "leverageSysUpdatedTime": "",
                    "sessionAvgPrice": "",
                    "createdTime": _ms(self.engine.now()),
                    "updatedTime": _ms(self.engine.now()),
                }
            )
        return self._ok({"category": "linear", "list": rows, "nextPageCursor": ""})

    def _flat_position(self, symbol: str) -> dict[str, Any]:
        isolated = self.engine.margin_mode(symbol) is MarginMode.ISOLATED
        return {
            "positionIdx": 0,
            "riskId": 1,
            "riskLimitValue": "2000000",
            "symbol": symbol,
            "side": "",
            "size": "0",
            "avgPrice": "0",
            "positionValue": "0",
            "tradeMode": 1 if isolated else 0,
            "positionStatus": "Normal",
            "autoAddMargin": 0,
            "adlRankIndicator": 0,
            "leverage": _num(self.engine.leverage(symbol)),
            "positionBalance": "0",
            "markPrice": _num(self.engine.mark(symbol)),
            "liqPrice": "",
            "bustPrice": "",
            "positionMM": "0",
            "positionIM": "0",
            "tpslMode": "Full",
            "takeProfit": "0",
            "stopLoss": "0",
            "trailingStop": "0",
            "unrealisedPnl": "0",
            "curRealisedPnl": "0",
            "cumRealisedPnl": "0",
            "seq": -1,
            "isReduceOnly": False,
            "mmrSysUpdatedTime": "",
            "leverageSysUpdatedTime": "",
            "sessionAvgPrice": "",
            "createdTime": _ms(self.engine.now()),
            "updatedTime": _ms(self.engine.now()),
        }

    # ----------------------------------------------------------------- leverage, margin mode

    def _set_leverage(self, p: Params) -> Reply:
        """POST /v5/position/set-leverage (v5 "Set Leverage"): `result` is `{}`; the leverage
        the symbol already has is retCode 110043 "Set leverage not modified" (v5 error
        codes). One-way mode: buyLeverage and sellLeverage must be equal."""
        buy, sell = p.get("buyLeverage"), p.get("sellLeverage")
        if buy is None or buy != sell:
            return self._error("10001", "params error: buyLeverage must equal sellLeverage")
        try:
            leverage = Decimal(str(buy))
        except ArithmeticError:
            return self._error("10001", "params error: leverage invalid")
        if "leverage_not_applied" in self.altered:  # acknowledged, never held
            return self._ok({})
        result = self.engine.change_leverage(p.get("symbol", ""), leverage)
        if isinstance(result, Rejected):
            return self._error(result.code, result.message)
        return self._ok({})

    def _account_info(self, _: Params) -> Reply:
        """GET /v5/account/info (v5 "Get Account Info"): the unified account's `marginMode`,
        ISOLATED_MARGIN, REGULAR_MARGIN (cross) or PORTFOLIO_MARGIN, for the whole account."""
        names = {
            MarginMode.ISOLATED: "ISOLATED_MARGIN",
            MarginMode.CROSS: "REGULAR_MARGIN",
            MarginMode.PORTFOLIO: "PORTFOLIO_MARGIN",
        }
        # The documented answer (docs/v5/account/account-info.mdx, Response Example) is the
        # envelope without retExtInfo and time: answered as shown.
        return 200, {
            "retCode": 0,
            "retMsg": "OK",
            "result": {
                "marginMode": names[self.engine.margin.account_mode],
                "updatedTime": _ms(self.engine.now()),
                "unifiedMarginStatus": 5,
                "dcpStatus": "OFF",
                "timeWindow": 10,
                "smpGroup": 0,
                "isMasterTrader": False,
                "spotHedgingStatus": "OFF",
            },
        }

    def _risk_limit(self, p: Params) -> Reply:
        """GET /v5/market/risk-limit (v5 "Get Risk Limit"): the engine's tiers per symbol,
        `maintenanceMargin` a rate, `riskLimitValue` the tier's notional cap."""
        symbol = p.get("symbol")
        names = [symbol] if symbol else list(self.engine.markets)
        rows = []
        for name in names:
            for n, tier in enumerate(self.engine.leverage_tiers(name), start=1):
                rows.append(
                    {
                        "id": n,
                        "symbol": name,
                        "riskLimitValue": _num(tier.max_notional),
                        "maintenanceMargin": _num(tier.maintenance_rate),
                        "initialMargin": _num(1 / tier.max_leverage),
                        "isLowestRisk": 1 if n == 1 else 0,
                        "maxLeverage": _num(tier.max_leverage),
                        "mmDeduction": _num(tier.maintenance_amount),
                    }
                )
        return self._ok({"category": "linear", "list": rows, "nextPageCursor": ""})

    def _mark_price_kline(self, p: Params) -> Reply:
        """GET /v5/market/mark-price-kline (v5 "Get Mark Price Kline"): `list` of
        `[startTime, openPrice, highPrice, lowPrice, closePrice]` as text, "Sort in reverse
        by startTime", from `start` to `end`, the newest `limit` ("[1, 200]. Default:
        200"); an interval the venue does not list is 10001."""
        minutes = _KLINE_MINUTES.get(p.get("interval", ""))
        symbol = p.get("symbol", "")
        if minutes is None or symbol not in self.engine.markets:
            return self._error("10001", "params error")
        limit = min(int(p.get("limit") or 200), 200)
        now = self.engine.now()
        end = _from_ms(p["end"]) if "end" in p else now
        start = _from_ms(p["start"]) if "start" in p else end - limit * minutes * _MINUTE
        rows = [c for c in self.engine.mark_candles(symbol, start, minutes) if c.opened_at <= end][
            -limit:
        ]
        return self._ok(
            {
                "symbol": symbol,
                "category": "linear",
                "list": [
                    [_ms(c.opened_at), _num(c.open), _num(c.high), _num(c.low), _num(c.close)]
                    for c in reversed(rows)
                ],
            }
        )

    def _wallet(self, _: Params) -> Reply:
        balance = self.engine.balance()
        coin = {
            "coin": "USDT",
            "equity": _num(balance.total),
            "usdValue": _num(balance.total),
            "walletBalance": _num(balance.total),
            "free": "",
            "locked": "0",
            "spotHedgingQty": "0",
            "borrowAmount": "0",
            "availableToWithdraw": "",
            "accruedInterest": "0",
            "totalOrderIM": "0",
            "totalPositionIM": _num(balance.used),
            "totalPositionMM": "0",
            "unrealisedPnl": "0",
            "cumRealisedPnl": "0",
            "bonus": "0",
            "marginCollateral": True,
            "collateralSwitch": True,
        }
        account = {
            "accountType": "UNIFIED",
            "totalEquity": _num(balance.total),
            "totalWalletBalance": _num(balance.total),
            "totalMarginBalance": _num(balance.total),
            "totalAvailableBalance": _num(balance.free),
            "totalPerpUPL": "0",
            "totalInitialMargin": _num(balance.used),
            "totalMaintenanceMargin": "0",
            "accountIMRate": "0",
            "accountMMRate": "0",
            "accountLTV": "0",
            "coin": [coin],
        }
        return self._ok({"list": [account]})

    # ----------------------------------------------------------------- orders

    @staticmethod
    def _create_op(p: Params) -> Op:
        if "triggerPrice" in p:
            return Op.STOP_ORDER
        return Op.LIMIT_ORDER if p.get("orderType") == "Limit" else Op.MARKET_ORDER

    def _create(self, p: Params) -> Reply:
        if p.get("category") != "linear":
            return self._error("10001", "params error: category invalid")
        symbol, side = p.get("symbol", ""), p.get("side", "")
        cid = p.get("orderLinkId") or None
        reduce_only = p.get("reduceOnly", "false") == "true"
        position_idx = int(p.get("positionIdx", "0") or 0)
        if "triggerPrice" in p:
            # triggerDirection 1: "triggered when market price rises to triggerPrice", 2: falls
            # to it (v5 Place Order): against the position a stop-loss, with it a take-profit
            direction = p.get("triggerDirection")
            falls = "2" if side.lower() == "sell" else "1"
            if direction not in ("1", "2"):
                return self._error("10001", "params error: triggerDirection invalid")
            place = self.engine.place_stop if direction == falls else self.engine.place_take_profit
            result = place(
                symbol,
                side,
                p.get("qty"),
                p.get("triggerPrice"),
                client_order_id=cid,
                reduce_only=reduce_only,
                position_idx=position_idx,
            )
        elif p.get("orderType") == "Limit":
            result = self.engine.place_limit(
                symbol,
                side,
                p.get("qty"),
                p.get("price"),
                client_order_id=cid,
                reduce_only=reduce_only,
                position_idx=position_idx,
            )
        else:
            stop_loss = p.get("stopLoss") or None
            if stop_loss is not None and (
                p.get("slTriggerBy") != "MarkPrice"
                or p.get("tpslMode") != "Full"
                or p.get("slOrderType") != "Market"
            ):
                return self._error(
                    "10001", "params error: stopLoss wants slTriggerBy, tpslMode, slOrderType"
                )
            if "entry_stop_not_set" in self.altered:  # acknowledged, never set
                stop_loss = None
            # an entry's stopLoss: the whole position's stop once it fills (corpus
            # order_create__entry_with_stop_loss, position_list__linear_long_with_stop_loss)
            result = self.engine.place_market(
                symbol,
                side,
                p.get("qty"),
                client_order_id=cid,
                reduce_only=reduce_only,
                position_idx=position_idx,
                stop_loss=stop_loss,
            )
        return self._answer(result)

    def _amend(self, p: Params) -> Reply:
        symbol = p.get("symbol", "")
        order = self._find(symbol, p)
        if order is None or not order.is_open:
            return self._not_found()
        if order.is_stop and p.get("triggerBy", "LastPrice") != "MarkPrice":
            return self._error("10001", "params error: the stop was placed on MarkPrice")
        result = self.engine.amend(
            symbol, order.order_id, trigger_price=p.get("triggerPrice"), price=p.get("price")
        )
        return self._answer(result)

    def _cancel(self, p: Params) -> Reply:
        symbol = p.get("symbol", "")
        order = self._find(symbol, p)
        if order is None or not order.is_open:
            return self._not_found()
        return self._answer(self.engine.cancel(symbol, order.order_id))

    def _trading_stop(self, p: Params) -> Reply:
        """Set Trading Stop: `stopLoss`, `takeProfit`, `trailingStop` (+ `activePrice`),
        each only if sent, "0" cancelling it (v5 "Set Trading Stop")."""
        if p.get("tpslMode") != "Full" or p.get("positionIdx") is None:
            return self._error("10001", "params error: tpslMode and positionIdx are required")
        symbol = p.get("symbol", "")
        if "stopLoss" in p:
            raw = p["stopLoss"]
            trigger = None if raw == "0" else raw
            if trigger is not None and p.get("slTriggerBy") != "MarkPrice":
                return self._error("10001", "params error: slTriggerBy must be MarkPrice here")
            result = self.engine.set_position_stop(symbol, trigger)
            if isinstance(result, Rejected):
                return self._error(result.code, result.message)
        for field, kind in (("takeProfit", "TakeProfit"), ("trailingStop", "TrailingStop")):
            if field in p:
                refused = self._attach(symbol, kind, p[field], p.get("activePrice"))
                if refused is not None:
                    return refused
        return self._ok({})

    def _attach(self, symbol: str, kind: str, raw: str, active: str | None) -> Reply | None:
        """The position's take-profit or trailing stop set (replacing one) or, "0", removed."""
        held = self.engine.position(symbol)
        attached = self._attached.setdefault(symbol, {})
        old = attached.pop(kind, None)
        if old is not None:
            self.engine.cancel(symbol, old)
        if raw == "0":
            return None
        if held is None:
            return self._error("10001", "can not set tp/sl/ts for zero position")
        if kind == "TakeProfit":
            result = self.engine.place_take_profit(symbol, held.side.exit, held.quantity, raw)
        else:
            result = self.engine.place_trailing_stop(
                symbol, held.side.exit, held.quantity, distance=Decimal(raw), activation=active
            )
        if isinstance(result, Rejected):
            return self._error(result.code, result.message)
        attached[kind] = result.order.order_id
        return None

    def _realtime(self, p: Params) -> Reply:
        symbol = p.get("symbol")
        if "orderId" in p or "orderLinkId" in p:
            found = self._looked_up(
                self._find(symbol or "", p, any_status=self.realtime_keeps_closed)
            )
            orders = [] if found is None else [found]
            cursor = ""
        else:
            orders = self.engine.open_orders(symbol)
            stops = p.get("orderFilter") == "StopOrder"
            orders = (
                [o for o in orders if o.is_conditional == stops] if "orderFilter" in p else orders
            )
            orders, cursor = _page(orders, p)
        return self._ok(
            {
                "category": "linear",
                "list": [self._order(o) for o in orders],
                "nextPageCursor": cursor,
            }
        )

    def _executions(self, p: Params) -> Reply:
        """Get Trade History, `GET /v5/execution/list`: newest first, `limit` 1-100 (default
        50) a page with `nextPageCursor`; `startTime` alone gives [startTime, +7 days)."""
        symbol = p.get("symbol")
        if p.get("category") != "linear" or not symbol:
            return self._error("10001", "params error: category linear and symbol required")
        # "startTime and endTime are not passed, return 7 days by default; only startTime is
        # passed, return range between startTime and startTime+7 days; only endTime is
        # passed, return range between endTime-7 days and endTime; if both are passed, the
        # rule is endTime - startTime <= 7 days"
        end = _from_ms(p["endTime"]) if p.get("endTime") else None
        if p.get("startTime"):
            since = _from_ms(p["startTime"])
            end = end or since + _WEEK
        else:
            end = end or self.engine.now()
            since = end - _WEEK
        if end - since > _WEEK:
            return self._error("10001", "The startTime and endTime interval is too long")
        fills = [f for f in self.engine.fills(symbol, since) if f.at <= end]
        fills = list(reversed(fills))
        if p.get("orderId"):
            fills = [f for f in fills if f.order_id == p["orderId"]]
        page, cursor = _rows(fills, p, default=50, most=100)
        rows = [
            {
                "symbol": f.symbol,
                "orderId": f.order_id,
                "orderLinkId": f.client_order_id or "",
                "side": "Buy" if f.side is OrderSide.BUY else "Sell",
                "execFee": _num(f.fee),
                "feeCurrency": f.fee_asset,
                "execId": f.trade_id or "",
                "execPrice": _num(f.price),
                "execQty": _num(f.quantity),
                "execType": "Trade",
                "execValue": _num(f.price * f.quantity),
                "execTime": _ms(f.at),
                "isMaker": False,
                "closedSize": "0",
            }
            for f in page
        ]
        return self._ok({"category": "linear", "list": rows, "nextPageCursor": cursor})

    def _transaction_log(self, p: Params) -> Reply:
        """Get Transaction Log, `GET /v5/account/transaction-log` (UTA): SETTLEMENT rows, the
        funding settlements, `funding` positive when received; limit 1-50 (default 20); 24
        hours for one end of the span, at most 7 days for both."""
        if p.get("type") not in (None, "SETTLEMENT"):
            return self._ok({"list": [], "nextPageCursor": ""})
        # "startTime and endTime are not passed, return 24 hours by default; Only startTime
        # is passed, return range between startTime and startTime+24 hours; Only endTime is
        # passed, return range between endTime-24 hours and endTime; If both are passed, the
        # rule is endTime - startTime <= 7 days" (v5 Get Transaction Log)
        end = _from_ms(p["endTime"]) if p.get("endTime") else None
        if p.get("startTime"):
            since = _from_ms(p["startTime"])
            end = end or since + _DAY
        else:
            end = end or self.engine.now()
            since = end - _DAY
        if end - since > _WEEK:
            return self._error("10001", "The startTime and endTime interval is too long")
        payments = [
            f
            for symbol in self.engine.markets
            for f in self.engine.funding(symbol, since)
            if f.at <= end and (not p.get("baseCoin") or self._base(symbol) == p["baseCoin"])
        ]
        payments.sort(key=lambda f: f.at, reverse=True)
        page, cursor = _rows(payments, p, default=20, most=50)
        rows = [
            {
                "id": f.payment_id or "",
                "symbol": f.symbol,
                "category": "linear",
                "side": "None",
                "transactionTime": _ms(f.at),
                "type": "SETTLEMENT",
                "funding": _num(f.amount),
                "currency": f.asset,
                "change": _num(f.amount),
                "cashFlow": "0",
                "fee": "0",
            }
            for f in page
        ]
        return self._ok({"list": rows, "nextPageCursor": cursor})

    def _history(self, p: Params) -> Reply:
        found = self._looked_up(self._find(p.get("symbol", ""), p, any_status=True))
        orders = [] if found is None or found.is_open else [found]
        return self._ok(
            {"category": "linear", "list": [self._order(o) for o in orders], "nextPageCursor": ""}
        )

    # ----------------------------------------------------------------- helpers

    def _base(self, symbol: str) -> str:
        """A linear USDT symbol's base coin, as `baseCoin` names it (BTCUSDT: BTC)."""
        return symbol.removesuffix("USDT")

    def _looked_up(self, order: Order | None) -> Order | None:
        """What a look-up by id shows: "/v5/order/create" only acknowledges ("Please use
        websocket order stream to confirm the order status", v5 Place Order), and "As order
        creation/cancellation is asynchronous, the data returned from this endpoint may
        delay" (v5 Get Order History): for `engine.listing_lag` after its creation an
        order is in neither `order/realtime` nor `order/history`."""
        return self.engine.listed(order)

    def _find(self, symbol: str, p: Params, *, any_status: bool = False) -> Order | None:
        if "orderId" in p:
            order = self.engine.order(p["orderId"])
        elif "orderLinkId" in p:
            order = self.engine.order_by_client_id(symbol, p["orderLinkId"])
        else:
            return None
        if order is None or order.symbol != symbol:
            return None
        return order if any_status or order.is_open else None

    def _stop_order_type(self, order: Order) -> str:
        if order.type is OrderType.POSITION_STOP:
            return "StopLoss"
        for kind, order_id in self._attached.get(order.symbol, {}).items():
            if order_id == order.order_id:
                return kind
        return "Stop" if order.is_conditional else ""

    def _order(self, order: Order) -> dict[str, Any]:
        stop = order.is_conditional
        stop_order_type = self._stop_order_type(order)
        attached = stop_order_type in ("StopLoss", "TakeProfit", "TrailingStop")
        rises = (order.side is OrderSide.SELL) == (order.type is OrderType.TAKE_PROFIT)
        status = _STATUS[order.status]
        if stop and order.is_open:
            status = "Untriggered"
        elif order.status is OrderStatus.EXPIRED and order.filled > ZERO:
            status = "PartiallyFilledCanceled"
        sell = order.side is OrderSide.SELL
        carried = order.stop_loss
        return {
            "orderId": order.order_id,
            "orderLinkId": order.client_order_id or "",
            "blockTradeId": "",
            "symbol": order.symbol,
            "price": _num(order.price),
            "qty": _num(order.quantity),
            "side": "Sell" if sell else "Buy",
            "isLeverage": "",
            "positionIdx": order.position_idx,
            "orderStatus": status,
            "createType": f"CreateBy{stop_order_type}" if attached else "CreateByUser",
            "cancelType": "UNKNOWN",
            "rejectReason": "EC_NoError",
            "avgPrice": _num(order.average_price) if order.average_price is not None else "",
            "leavesQty": _num(order.remaining if order.is_open else ZERO),
            "leavesValue": "0",
            "cumExecQty": _num(order.filled),
            "cumExecValue": _num(order.filled * (order.average_price or ZERO)),
            "cumExecFee": "0",
            "timeInForce": "IOC" if order.type is not OrderType.LIMIT else "GTC",
            "orderType": "Limit" if order.type is OrderType.LIMIT else "Market",
            # a plain order's is "UNKNOWN" in the REST examples (v5 Get Open & Closed Orders)
            "stopOrderType": stop_order_type or "UNKNOWN",
            "orderIv": "",
            "triggerPrice": _num(order.trigger_price) if stop else "0",
            "takeProfit": "0",
            # an entry's carried stop-loss, listed with the order (corpus
            # order_realtime__limit_new_with_tpsl: `stopLoss`, `tpslMode` Full)
            "stopLoss": "0" if carried is None else _num(carried),
            "tpslMode": "Full" if attached or carried is not None else "",
            "ocoTriggerBy": "",
            "tpLimitPrice": "0",
            "slLimitPrice": "0",
            "tpTriggerBy": "",
            "slTriggerBy": "" if carried is None else "MarkPrice",
            "triggerDirection": (1 if rises else 2) if stop else 0,
            "triggerBy": "MarkPrice" if stop else "",
            "lastPriceOnCreated": "",
            "reduceOnly": order.reduce_only,
            "closeOnTrigger": order.close_position,
            "placeType": "",
            "smpType": "None",
            "smpGroup": 0,
            "smpOrderId": "",
            "createdTime": _ms(order.created_at),
            "updatedTime": _ms(order.updated_at),
        }


def _page(orders: list[Order], p: Params) -> tuple[list[Order], str]:
    """One page of a listing (limit 1-50, default 20) and the cursor of the next, or ""."""
    try:
        limit = min(50, max(1, int(p.get("limit", "20"))))
        start = int(p.get("cursor") or "0")
    except ValueError:
        return [], ""
    end = start + limit
    return orders[start:end], (str(end) if end < len(orders) else "")


def _rows(rows: list[T], p: Params, *, default: int, most: int) -> tuple[list[T], str]:
    """One page of `rows` (`limit` 1-`most`) from `cursor`, and the next cursor or ""."""
    try:
        limit = min(most, max(1, int(p.get("limit") or default)))
        start = int(p.get("cursor") or "0")
    except ValueError:
        return [], ""
    end = start + limit
    return rows[start:end], (str(end) if end < len(rows) else "")


_WEEK = timedelta(days=7)  # the longest span one execution-list request answers for
_MINUTE = timedelta(minutes=1)
# v5 kline intervals ("1,3,5,15,30,60,120,240,360,720,D,M,W"; a month left out), in minutes
_KLINE_MINUTES = {
    "1": 1, "3": 3, "5": 5, "15": 15, "30": 30, "60": 60, "120": 120, "240": 240,
    "360": 360, "720": 720, "D": 1440, "W": 10080,
}  # fmt: skip
_DAY = timedelta(days=1)  # what a transaction-log request with one end answers for


def _from_ms(raw: object) -> datetime:
    """A request's `startTime` (ms) as a time; the epoch when absent."""
    return datetime.fromtimestamp(int(str(raw or 0)) / 1000, tz=UTC)


def _exponent(value: Decimal) -> int:
    exponent = value.normalize().as_tuple().exponent
    return exponent if isinstance(exponent, int) else 0


register_dialect(BybitDialect)
