"""The venues' published REST limits, and what each request costs in them.

Figures as published in Nov 2026 (docs/venues.md, "Rate limits", keeps the table and links).
A request this table does not name is charged a conservative weight, never nothing.
"""

from collections.abc import Mapping
from typing import Any

from tradecore.adapters.ccxt.limiter import Budget, Costs, VenueLimits
from tradecore.domain.model import Venue

# ---------------------------------------------------------------- Binance USDⓈ-M futures
# "The default rate limit per IP is 2,400/min, and the default order limit per account/
# sub-account is 1,200/min ... For order limit, there is an additional 10-second limit,
# default at 300/10s." (binance.com/en/support/faq/rate-limits-on-binance-futures-
# 281596e222414cdd9051664ea621cdc3). "The limits on the API are based on the IPs, not the
# API keys"; "The order rate limit is counted against each account" (developers.binance.com/
# docs/derivatives/usds-margined-futures/general-info, LIMITS).
BINANCE_IP = "ip-weight-1m"
BINANCE_ORDERS_10S = "orders-10s"
BINANCE_ORDERS_1M = "orders-1m"
_BINANCE_GENERAL = "developers.binance.com/docs/derivatives/usds-margined-futures/general-info"
_BINANCE_FAQ = (
    "binance.com/en/support/faq/rate-limits-on-binance-futures-281596e222414cdd9051664ea621cdc3"
)
BINANCE_BUDGETS = (
    Budget(name=BINANCE_IP, limit=2400, window=60.0, source=_BINANCE_FAQ),
    Budget(name=BINANCE_ORDERS_10S, limit=300, window=10.0, source=_BINANCE_FAQ),
    Budget(name=BINANCE_ORDERS_1M, limit=1200, window=60.0, source=_BINANCE_FAQ),
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
_BINANCE_WEIGHT = {
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
_BINANCE_PER_SYMBOL = {"openOrders": 40, "openAlgoOrders": 40, "premiumIndex": 10}
_BINANCE_UNLISTED = 10


def binance_costs(method: str, path: str, api: Any, params: Mapping[str, Any]) -> Costs:
    if path in ("order", "algoOrder", "batchOrders") and method in ("POST", "PUT"):
        return {BINANCE_ORDERS_10S: 1, BINANCE_ORDERS_1M: 1}
    if path in _BINANCE_PER_SYMBOL:
        return {BINANCE_IP: 1 if params.get("symbol") else _BINANCE_PER_SYMBOL[path]}
    return {BINANCE_IP: _BINANCE_WEIGHT.get(path, _BINANCE_UNLISTED)}


BINANCE_LIMITS = VenueLimits(budgets=BINANCE_BUDGETS, weigh=binance_costs)

# ---------------------------------------------------------------- Bybit v5 (linear)
# "You are allowed to send 600 requests within a 5-second window per IP by default" and,
# per UID, "The API rate limit is based on the rolling time window per second and UID";
# the per-endpoint figures are the table's UTA2.0 Pro linear column
# (bybit-exchange.github.io/docs/v5/rate-limit; repository bybit-exchange/docs,
# docs/v5/rate-limit/rate-limit.mdx). Public market endpoints carry the IP limit only.
_BYBIT_DOC = "bybit-exchange.github.io/docs/v5/rate-limit"
BYBIT_IP = "ip-5s"
_BYBIT_PER_SECOND = {
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
BYBIT_BUDGETS = (
    Budget(name=BYBIT_IP, limit=600, window=5.0, source=_BYBIT_DOC),
    *(
        Budget(name=endpoint, limit=limit, window=1.0, source=_BYBIT_DOC)
        for endpoint, limit in _BYBIT_PER_SECOND.items()
    ),
)


def bybit_costs(method: str, path: str, api: Any, params: Mapping[str, Any]) -> Costs:
    endpoint = path.removeprefix("v5/")
    if endpoint in _BYBIT_PER_SECOND:
        return {BYBIT_IP: 1, endpoint: 1}
    return {BYBIT_IP: 1}


BYBIT_LIMITS = VenueLimits(budgets=BYBIT_BUDGETS, weigh=bybit_costs)

VENUE_LIMITS: dict[Venue, VenueLimits] = {Venue.BINANCE: BINANCE_LIMITS, Venue.BYBIT: BYBIT_LIMITS}
