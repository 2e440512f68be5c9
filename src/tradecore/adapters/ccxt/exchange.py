"""The exchange port on ccxt (`ccxt.async_support`) for Binance USDⓈ-M and Bybit linear.

Per venue (see docs/venues.md):
- Binance: stops are algo orders; every fetch, list and cancel of one passes
  `{'trigger': True}`, and listings merge the plain and the algo lists. No stop amend and
  no position stop (`capabilities` says so): callers replace a stop create-first.
- Bybit: the position's own stop through `/v5/position/trading-stop` (`tpslMode=Full`,
  `positionIdx` sent explicitly, `slTriggerBy=MarkPrice`, `stopLoss=0` removes it); resting
  stops amended in place with `triggerBy=MarkPrice`.

Numbers go to ccxt as strings made from our Decimals, and only after they were checked
against the market's tick and step: ccxt's own precision helpers truncate or round, and an
order must be sent exactly as decided or refused. Numbers come back from the venue's raw
strings (`info`), never from ccxt's floats.
"""

import functools
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any, Concatenate, ParamSpec, TypeVar

import aiohttp
import attrs
import ccxt.async_support as ccxt
import ccxt.pro as ccxt_pro

from tradecore.adapters.ccxt import margin, parse
from tradecore.adapters.ccxt.errors import (
    clock_skew,
    command_outcome,
    query_failure,
    watch_server_failures,
)
from tradecore.adapters.ccxt.limiter import RequestLimiter, VenueLimits
from tradecore.adapters.ccxt.limits import VENUE_LIMITS
from tradecore.adapters.ccxt.profiles import (
    PROFILES,
    check_price,
    check_quantity,
    order_not_found,
    unknown_symbol,
)
from tradecore.adapters.ccxt.streams import MarkFeed, StatusCallback
from tradecore.adapters.readback import NotProven, ReadBack, proven, read_back
from tradecore.domain.leverage import LeverageTier, MarginMode
from tradecore.domain.model import OrderSide, Venue
from tradecore.domain.orders import (
    Balance,
    MarkTick,
    Order,
    OrderRole,
    OrderStatus,
    OrderType,
    VenuePosition,
    role_of,
)
from tradecore.domain.pnl import Fill, FundingPayment
from tradecore.domain.precision import MarketRules
from tradecore.domain.symbols import to_plain, to_venue
from tradecore.ports.clock import Clock
from tradecore.ports.exchange import (
    Accepted,
    Capabilities,
    ExchangeUnavailable,
    Outcome,
    Rejected,
    RejectReason,
    RequestPriority,
    SettingOutcome,
    Unknown,
    current_priority,
    request_priority,
)

T = TypeVar("T")
A = ParamSpec("A")
R = RejectReason
Q = RequestPriority


class Environment(StrEnum):
    """Where orders go. DEMO is the default; LIVE trades real money and must be asked for."""

    DEMO = "demo"  # Binance demo trading, Bybit demo trading (enable_demo_trading)
    TESTNET = "testnet"  # Bybit testnet (sandbox); Binance futures has none any more
    LIVE = "live"


CAPABILITIES = {venue: profile.capabilities for venue, profile in PROFILES.items()}


def build_client(
    venue: Venue,
    *,
    api_key: str,
    secret: str,
    environment: Environment = Environment.DEMO,
    session: aiohttp.ClientSession | None = None,
    timeout_ms: int = 10_000,
    client_class: type[ccxt.Exchange] | None = None,
    rate_limit_ms: float | None = None,
) -> ccxt.Exchange:
    """A ccxt.pro client (REST and websockets) for `venue`, demo by default.

    ccxt's own rate limiter is off: `CcxtExchange` puts ours in front of every request
    (`limiter.py`). `rate_limit_ms` is ccxt's spacing should someone switch its limiter back
    on (the contrast in benchmarks/fill_to_stop.py).
    """
    config: dict[str, Any] = {
        "apiKey": api_key,
        "secret": secret,
        "enableRateLimit": False,
        "timeout": timeout_ms,
    }
    if session is not None:
        config["session"] = session
    if rate_limit_ms is not None:
        config["rateLimit"] = rate_limit_ms
    config["options"] = dict(PROFILES[venue].options)
    default = ccxt_pro.binanceusdm if venue is Venue.BINANCE else ccxt_pro.bybit
    client: ccxt.Exchange = (client_class or default)(config)
    if venue is Venue.BYBIT:
        client.has["fetchCurrencies"] = False  # no wallet endpoints needed (and none offline)
    if environment is Environment.DEMO:
        client.enable_demo_trading(True)
    elif environment is Environment.TESTNET:
        if venue is Venue.BINANCE:
            raise ValueError(
                "Binance USDⓈ-M has no futures testnet through ccxt any more; use demo trading"
            )
        client.set_sandbox_mode(True)
    return client


_BINANCE_PAGE = 1000  # userTrades' maximum limit
_BYBIT_LOG_PAGES = 20  # of 50 rows: a position's settlements over far more than 7 days


def _ms(at: datetime) -> int:
    return int(at.timestamp() * 1000)


def _text(value: Decimal) -> str:
    return format(value, "f")


def _at(
    pick: RequestPriority | Callable[..., RequestPriority],
) -> Callable[
    [Callable[Concatenate["CcxtExchange", A], Coroutine[Any, Any, T]]],
    Callable[Concatenate["CcxtExchange", A], Coroutine[Any, Any, T]],
]:
    """Every request the port method makes (read-backs and market loads too) waits in the
    limiter at this priority, unless the caller declared one (`request_priority`)."""

    def wrap(
        method: Callable[Concatenate["CcxtExchange", A], Coroutine[Any, Any, T]],
    ) -> Callable[Concatenate["CcxtExchange", A], Coroutine[Any, Any, T]]:
        @functools.wraps(method)
        async def run(self: "CcxtExchange", *args: A.args, **kwargs: A.kwargs) -> T:
            priority = pick if isinstance(pick, RequestPriority) else pick(*args, **kwargs)
            with request_priority(priority):
                return await method(self, *args, **kwargs)

        return run

    return wrap


def _listing_priority(symbol: str | None = None) -> RequestPriority:
    """One symbol's orders are a query; every symbol's (the guard's, the zombies') a sweep."""
    return Q.QUERY if symbol is not None else Q.SWEEP


def _order_priority(*_: object, reduce_only: bool = False, **__: object) -> RequestPriority:
    """A reduce-only order closes (a market close, an aged exit); any other one opens."""
    return Q.CLOSE if reduce_only else Q.ENTRY


def _limit_priority(*_: object, reduce_only: bool = True, **__: object) -> RequestPriority:
    """As `_order_priority`, with `create_limit_order`'s default (reduce-only)."""
    return Q.CLOSE if reduce_only else Q.ENTRY


def _amend_priority(*_: object, trigger_price: Decimal | None = None, **__: object) -> Q:
    """Moving a trigger moves a stop; moving a price moves an exit."""
    return Q.STOP if trigger_price is not None else Q.CLOSE


def _limit_requests(client: ccxt.Exchange, limiter: RequestLimiter) -> None:
    """Put `limiter` in front of every REST request of `client`, in place of ccxt's own.

    ccxt sends each request through `fetch2(path, api, method, params, ...)` (signing comes
    after, so a request that waited is signed with a fresh timestamp). An IP ban (418) in an
    answer closes the limiter's gate.
    """
    client.enableRateLimit = False
    original = client.fetch2

    async def fetch2(
        path: str, api: Any = "public", method: str = "GET", params: Any = None, *rest: Any
    ) -> Any:
        params = {} if params is None else params
        costs = limiter.costs(method, path, api, params if isinstance(params, Mapping) else {})
        priority = current_priority()  # STOP is 0: never `or` it away
        await limiter.acquire(Q.QUERY if priority is None else priority, costs)
        try:
            return await original(path, api, method, params, *rest)
        except ccxt.BaseError as error:
            limiter.note(error)
            raise

    client.fetch2 = fetch2


class CcxtExchange:
    """One account on Binance USDⓈ-M or Bybit linear, through a ccxt client.

    Every REST request of `client` waits in our `RequestLimiter` first (the venue's published
    budgets, `limits`; stops before closes before entries before queries before sweeps) and
    ccxt's own limiter is switched off.
    """

    def __init__(
        self,
        client: ccxt.Exchange,
        venue: Venue,
        *,
        clock: Clock,
        on_stream_status: StatusCallback | None = None,
        poll_interval: float = 1.0,
        silence_limit: float = 60.0,
        use_websockets: bool = True,
        read_back: ReadBack | None = None,
        limits: VenueLimits | None = None,
    ) -> None:
        self.client = client
        self._read_back = read_back or ReadBack()
        watch_server_failures(client)
        self.limiter = RequestLimiter(
            clock, VENUE_LIMITS[venue] if limits is None else limits, venue=venue.value
        )
        _limit_requests(client, self.limiter)
        self._venue = venue
        self._profile = PROFILES[venue]
        self._clock = clock
        self._rules: dict[str, MarketRules] = {}
        # Binance algo (conditional) orders as last seen, by algoId: the id says which
        # endpoint to ask, and the cancel answer names the order without its state.
        self._algos: dict[str, Order] = {}
        self._feeds: list[MarkFeed] = []
        self._on_stream_status = on_stream_status
        self._poll_interval = poll_interval
        self._silence_limit = silence_limit
        self._use_websockets = use_websockets

    @property
    def venue(self) -> Venue:
        return self._venue

    @property
    def capabilities(self) -> Capabilities:
        return self._profile.capabilities

    @property
    def feeds(self) -> tuple[MarkFeed, ...]:
        return tuple(self._feeds)

    @property
    def _binance(self) -> bool:
        return self._venue is Venue.BINANCE

    # ----------------------------------------------------------------- transport

    async def _call(self, call: Callable[[], Awaitable[T]]) -> T:
        """One ccxt request; on a clock-skew refusal, resync the time difference and retry once.

        ccxt raises `InvalidNonce` for Bybit's 10002 but `BadRequest` for Binance futures'
        -1021 (its linear table), so the venue code decides too. The venue refused the request
        before acting on it, so sending it again is safe.
        """
        try:
            return await call()
        except ccxt.BaseError as error:
            if not clock_skew(error):
                raise
        await self.client.load_time_difference()
        return await call()

    async def _query(self, call: Callable[[], Awaitable[Any]], read: Callable[[Any], T]) -> T:
        """A query's answer read into domain values; any failure is `ExchangeUnavailable`."""
        try:
            raw = await self._call(call)
        except ccxt.BaseError as error:
            raise query_failure(self._venue, error) from error
        try:
            return read(raw)
        except (parse.Unreadable, KeyError, TypeError, ValueError) as error:
            raise ExchangeUnavailable(
                f"{self._venue.value}: unreadable answer ({error}): {str(raw)[:500]}",
                retryable=False,
            ) from error

    async def _command(
        self,
        cid: str | None,
        send: Callable[[], Awaitable[Any]],
        read: Callable[[Any], Awaitable[Order]],
    ) -> Outcome:
        """Send a command once (resync aside), then read the venue's state of the order.

        A failed send is whatever its error means; once the venue took the command, a failed
        read-back is `Unknown` (the order exists; the caller resolves it by its client id).
        """
        try:
            raw = await self._call(send)
        except ccxt.BaseError as error:
            return command_outcome(self._venue, error, client_order_id=cid)
        try:
            return Accepted(order=await read(raw))
        except ExchangeUnavailable as error:
            return Unknown(
                message=f"accepted, but reading it back failed: {error}", client_order_id=cid
            )
        except ccxt.BaseError as error:
            return Unknown(
                message=f"accepted, but reading it back failed: {error}", client_order_id=cid
            )
        except NotProven as error:
            return Unknown(message=str(error), client_order_id=cid)
        except (parse.Unreadable, KeyError, TypeError, ValueError) as error:
            return Unknown(
                message=f"accepted, but the answer is unreadable ({error}): {str(raw)[:500]}",
                client_order_id=cid,
            )

    # ----------------------------------------------------------------- checks before sending

    async def _market_rules(self, symbol: object) -> MarketRules | Rejected:
        """The rules an order is checked against (markets load on first use)."""
        if not self._rules:
            try:
                await self.load_markets()
            except ExchangeUnavailable as error:  # a command refuses, it never raises
                reason = R.RATE_LIMITED if error.rate_limited else R.VENUE_UNAVAILABLE
                return Rejected(reason=reason, message=str(error), retryable=error.retryable)
        rules = self._rules.get(symbol) if isinstance(symbol, str) else None
        return unknown_symbol(self._profile.refusals) if rules is None else rules

    def _quantity(self, rules: MarketRules, raw: object) -> Decimal | Rejected:
        return check_quantity(self._profile.refusals, rules, raw)

    def _price(self, rules: MarketRules, raw: object, *, stop: bool) -> Decimal | Rejected:
        return check_price(self._profile.refusals, rules, raw, stop=stop)

    # ----------------------------------------------------------------- queries

    @_at(Q.SWEEP)
    async def load_markets(self) -> Mapping[str, MarketRules]:
        markets = await self._query(lambda: self.client.load_markets(True), _linear_usdt)
        if self._binance:
            rules = await self._query(
                lambda: self.client.fetch_leverage_tiers(list(markets)),
                lambda tiers: _binance_rules(markets, tiers),
            )
        else:
            rules = [parse.bybit_rules(market["info"]) for market in markets.values()]
        self._rules = {found.symbol: found for found in rules}
        return dict(self._rules)

    @_at(Q.QUERY)
    async def fetch_balance(self) -> Balance:
        read = self._profile.read_balance
        return await self._query(lambda: self.client.fetch_balance(), lambda raw: read(raw["info"]))

    @_at(Q.QUERY)
    async def fetch_positions(self) -> Sequence[VenuePosition]:
        read = self._profile.read_position
        return await self._query(
            lambda: self.client.fetch_positions(),
            lambda raw: [p for p in (read(item["info"]) for item in raw) if p is not None],
        )

    def _listing(self, symbol: str | None, *, stops: bool) -> dict[str, Any]:
        params: dict[str, Any] = {"trigger": True} if stops else {}
        if not self._binance:
            params["paginate"] = True  # pages of 50 (Bybit's maximum), following the cursor
            if symbol is None:
                params["settleCoin"] = "USDT"
        return params

    @_at(_listing_priority)
    async def fetch_open_orders(self, symbol: str | None = None) -> Sequence[Order]:
        """Plain and conditional orders, merged: on Binance the plain list has no stops."""
        unified = None if symbol is None else to_venue(symbol)
        plain = await self._query(
            lambda: self.client.fetch_open_orders(
                unified, None, None, self._listing(symbol, stops=False)
            ),
            lambda raw: [self._read_order(item["info"]) for item in raw],
        )
        stops = await self._query(
            lambda: self.client.fetch_open_orders(
                unified, None, None, self._listing(symbol, stops=True)
            ),
            lambda raw: [self._read_order(item["info"], algo=True) for item in raw],
        )
        if self._binance:
            self._algos.update((order.order_id, order) for order in stops)
        return list({order.order_id: order for order in [*plain, *stops]}.values())

    def _read_order(self, info: Mapping[str, Any], *, algo: bool = False) -> Order:
        if algo and self._binance:
            return parse.binance_algo(info)
        return self._profile.read_order(info)

    @_at(Q.QUERY)
    async def fetch_order_by_client_id(self, symbol: str, client_order_id: str) -> Order | None:
        unified = to_venue(symbol)
        if self._binance:
            return await self._binance_by_client_id(unified, client_order_id)
        return await self._bybit_find(unified, {"orderLinkId": client_order_id})

    async def _binance_by_client_id(self, unified: str, cid: str) -> Order | None:
        """The role letter of our client id names the endpoint the order lives on: a stop
        is an algo order (`GET /fapi/v1/algoOrder`, `clientAlgoId`), an entry or an exit a
        plain one (`GET /fapi/v1/order`, `origClientOrderId`, which answers an unknown id
        with -2013 "Order does not exist"). Only an id that is not ours is asked on both,
        the plain endpoint first; no answer depends on what the algo endpoint says of a
        `clientAlgoId` it does not hold, which the sources reachable here do not document."""
        role = role_of(cid)
        if role is OrderRole.STOP:
            return await self._binance_algo(unified, {"clientOrderId": cid})
        plain = await self._maybe(
            lambda: self.client.fetch_order(None, unified, {"clientOrderId": cid})
        )
        if plain is not None or role is not OrderRole.FOREIGN:
            return plain
        return await self._binance_algo(unified, {"clientOrderId": cid})

    async def _bybit_find(self, unified: str, key: Mapping[str, str]) -> Order | None:
        """A Bybit order by orderId or orderLinkId: the live list keeps the last 500 of any
        status, but after a venue restart closed ones are only in the history."""
        live = await self._query(
            lambda: self.client.fetch_open_orders(unified, None, None, dict(key)), self._first
        )
        if live is not None:
            return live
        return await self._query(
            lambda: self.client.fetch_canceled_and_closed_orders(unified, None, None, dict(key)),
            self._first,
        )

    def _first(self, raw: Sequence[Mapping[str, Any]]) -> Order | None:
        return self._read_order(raw[0]["info"]) if raw else None

    @_at(Q.QUERY)
    async def fetch_order(self, symbol: str, order_id: str) -> Order | None:
        unified = to_venue(symbol)
        if not self._binance:
            return await self._bybit_find(unified, {"orderId": order_id})
        if not isinstance(order_id, str) or not order_id.isdigit():
            return None  # Binance ids are integers: no such order can exist
        if order_id in self._algos:
            return await self._binance_algo(unified, {"algoId": order_id})
        regular = await self._maybe(lambda: self.client.fetch_order(order_id, unified))
        if regular is not None:
            return regular
        return await self._binance_algo(unified, {"algoId": order_id})

    async def _maybe(self, call: Callable[[], Awaitable[Any]]) -> Order | None:
        """The order a ccxt look-up returns, or None when the venue has no such order."""
        try:
            return await self._query(call, lambda raw: self._read_order(raw["info"]))
        except ExchangeUnavailable as error:
            if isinstance(error.__cause__, ccxt.OrderNotFound):
                return None
            raise

    async def _binance_algo(self, unified: str, key: Mapping[str, str]) -> Order | None:
        """An algo order by algoId or clientAlgoId, with its fill once it has fired."""
        params: dict[str, Any] = {"trigger": True}
        if "clientOrderId" in key:
            params["clientOrderId"] = key["clientOrderId"]
        algo_id = key.get("algoId")
        try:
            info = await self._query(
                lambda: self.client.fetch_order(algo_id, unified, params), lambda raw: raw["info"]
            )
        except ExchangeUnavailable as error:
            if isinstance(error.__cause__, ccxt.OrderNotFound):
                return None
            raise
        actual = str(info.get("actualOrderId") or "")
        fill = (
            await self._maybe(lambda: self.client.fetch_order(actual, unified)) if actual else None
        )
        order = await self._query(_ready(info), lambda raw: parse.binance_algo(raw, fill))
        self._algos[order.order_id] = order
        return order

    @_at(Q.SWEEP)
    async def fetch_fills(
        self, symbol: str, *, since: datetime, order_ids: Sequence[str] | None = None
    ) -> Sequence[Fill]:
        """Through ccxt `fetch_my_trades`: Binance `GET /fapi/v1/userTrades` (oldest first,
        1000 a page, paged here by time), Bybit `GET /v5/execution/list` (newest first, paged
        by ccxt along `nextPageCursor`). Both answer at most 7 days from `since`."""
        unified = to_venue(symbol)
        start = _ms(since)
        found: dict[str, Fill] = {}
        if self._binance:
            while True:
                page = await self._binance_trades(unified, start)
                fresh = [f for f in page if (f.trade_id or "") not in found]
                found.update({f.trade_id or f"{f.order_id}@{f.at}": f for f in page})
                if len(page) < _BINANCE_PAGE or not fresh:
                    break
                start = max(_ms(f.at) for f in page)  # the same ms again: ids dedupe it
        else:
            rows = await self._query(
                lambda: self.client.fetch_my_trades(unified, start, None, {"paginate": True}),
                lambda raw: [parse.bybit_fill(item["info"]) for item in raw],
            )
            found = {f.trade_id or f"{f.order_id}@{f.at}": f for f in rows if f is not None}
        fills = sorted(found.values(), key=lambda f: f.at)
        if order_ids is not None:
            wanted = set(order_ids)
            fills = [f for f in fills if f.order_id in wanted]
        return fills

    @_at(Q.SWEEP)
    async def fetch_funding(self, symbol: str, *, since: datetime) -> Sequence[FundingPayment]:
        """Binance: ccxt `fetch_funding_history` (`GET /fapi/v1/income`, incomeType
        FUNDING_FEE). Bybit: `GET /v5/account/transaction-log` type SETTLEMENT, whose
        `funding` is signed as received (ccxt's `fetch_funding_history` reads Bybit's
        execution list, whose funding `execFee` sign the docs do not state)."""
        start = _ms(since)
        if self._binance:
            rows = await self._query(
                lambda: self.client.fetch_funding_history(to_venue(symbol), start, 1000),
                lambda raw: [parse.binance_funding(item["info"]) for item in raw],
            )
        else:
            rows = []
            cursor = ""
            for _ in range(_BYBIT_LOG_PAGES):
                params = {
                    "accountType": "UNIFIED",
                    "category": "linear",
                    "type": "SETTLEMENT",
                    "startTime": start,
                    "limit": 50,
                    **({"cursor": cursor} if cursor else {}),
                }
                result = await self._bybit_log(params)
                rows += [parse.bybit_funding(item) for item in result.get("list") or []]
                cursor = str(result.get("nextPageCursor") or "")
                if not cursor:
                    break
        payments = [p for p in rows if p is not None and p.symbol == symbol]
        return sorted(payments, key=lambda p: p.at)

    async def _binance_trades(self, unified: str, start: int) -> list[Fill]:
        return await self._query(
            lambda: self.client.fetch_my_trades(unified, start, _BINANCE_PAGE),
            lambda raw: [parse.binance_fill(item["info"]) for item in raw],
        )

    async def _bybit_log(self, params: Mapping[str, Any]) -> Mapping[str, Any]:
        return await self._query(
            lambda: self.client.privateGetV5AccountTransactionLog(dict(params)),
            lambda raw: dict(raw["result"]),
        )

    @_at(Q.QUERY)
    async def fetch_mark_price(self, symbol: str) -> Decimal:
        unified = to_venue(symbol)
        read = lambda raw: parse.dec(raw["info"].get("markPrice"), name="markPrice")  # noqa: E731
        if self._binance:
            return await self._query(lambda: self.client.fetch_mark_price(unified), read)
        return await self._query(lambda: self.client.fetch_ticker(unified), read)

    async def _poll_marks(self, symbols: Sequence[str]) -> dict[str, Decimal]:
        return {symbol: await self.fetch_mark_price(symbol) for symbol in symbols}

    def watch_mark_prices(self, symbols: Sequence[str]) -> AsyncIterator[MarkTick]:
        feed = MarkFeed(
            self._venue,
            list(symbols),
            clock=self._clock,
            poll=self._poll_marks,
            watch=self._watch_marks if self._use_websockets and self._can_watch() else None,
            on_status=self._on_stream_status,
            poll_interval=self._poll_interval,
            silence_limit=self._silence_limit,
        )
        self._feeds.append(feed)
        feed.start()
        return feed

    def _can_watch(self) -> bool:
        has = self.client.has
        return bool(has.get("watchMarkPrices") if self._binance else has.get("watchTickers"))

    async def _watch_marks(self, symbols: Sequence[str]) -> Mapping[str, Decimal]:
        """One update of the venue's stream: Binance markPrice, Bybit tickers (markPrice)."""
        unified = [to_venue(symbol) for symbol in symbols]
        if self._binance:
            tickers = await self.client.watch_mark_prices(unified)
        else:
            tickers = await self.client.watch_tickers(unified)
        field = self._profile.mark_field
        marks: dict[str, Decimal] = {}
        for ticker in tickers.values():
            raw = ticker.get("info", {}).get(field)
            if raw not in (None, ""):  # a Bybit delta may not carry the mark
                marks[to_plain(ticker["symbol"])] = parse.dec(raw, name="markPrice")
        return marks

    # ----------------------------------------------------------------- commands

    def _order_params(self, client_order_id: str) -> dict[str, Any]:
        return {**self._profile.order_params, "clientOrderId": client_order_id}

    @_at(_order_priority)
    async def create_market_order(
        self,
        symbol: str,
        side: OrderSide,
        quantity: Decimal,
        *,
        client_order_id: str,
        reduce_only: bool = False,
    ) -> Outcome:
        rules = await self._market_rules(symbol)
        if isinstance(rules, Rejected):
            return rules
        qty = self._quantity(rules, quantity)
        if isinstance(qty, Rejected):
            return qty
        params = self._order_params(client_order_id)
        if reduce_only:
            params["reduceOnly"] = True
        return await self._command(
            client_order_id,
            lambda: self.client.create_order(
                to_venue(symbol), "market", side.value, _text(qty), None, params
            ),
            lambda raw: self._placed(symbol, raw),
        )

    @_at(_limit_priority)
    async def create_limit_order(
        self,
        symbol: str,
        side: OrderSide,
        quantity: Decimal,
        price: Decimal,
        *,
        client_order_id: str,
        reduce_only: bool = True,
    ) -> Outcome:
        rules = await self._market_rules(symbol)
        if isinstance(rules, Rejected):
            return rules
        qty = self._quantity(rules, quantity)
        if isinstance(qty, Rejected):
            return qty
        limit = self._price(rules, price, stop=False)
        if isinstance(limit, Rejected):
            return limit
        params = {**self._order_params(client_order_id), "reduceOnly": reduce_only}
        return await self._command(
            client_order_id,
            lambda: self.client.create_order(
                to_venue(symbol), "limit", side.value, _text(qty), _text(limit), params
            ),
            lambda raw: self._placed(symbol, raw),
        )

    @_at(Q.STOP)
    async def create_stop_order(
        self,
        symbol: str,
        side: OrderSide,
        quantity: Decimal,
        trigger_price: Decimal,
        *,
        client_order_id: str,
    ) -> Outcome:
        rules = await self._market_rules(symbol)
        if isinstance(rules, Rejected):
            return rules
        qty = self._quantity(rules, quantity)
        if isinstance(qty, Rejected):
            return qty
        trigger = self._price(rules, trigger_price, stop=True)
        if isinstance(trigger, Rejected):
            return trigger
        params = {
            **self._order_params(client_order_id),
            **self._profile.stop_params,
            "stopLossPrice": _text(trigger),
            "reduceOnly": True,
        }
        return await self._command(
            client_order_id,
            lambda: self.client.create_order(
                to_venue(symbol), "market", side.value, _text(qty), None, params
            ),
            lambda raw: self._placed(symbol, raw),
        )

    async def _placed(self, symbol: str, raw: Mapping[str, Any]) -> Order:
        """The order as the venue holds it after the command, its state proven: read back
        with pauses on the clock while the venue does not show it yet (Bybit answers ids
        only; a Binance answer that leaves a market order open is read again on the plain
        order endpoint). Unproven within the bound: `NotProven`, the command `Unknown`."""
        info = raw["info"]
        unified = to_venue(symbol)
        if self._binance:
            order = self._read_order(info)
            if "algoId" in info:
                self._algos[order.order_id] = order
            if proven(order):
                return order
            placed = order.order_id
            return await self._proven(
                lambda: self._maybe(lambda: self.client.fetch_order(placed, unified)),
                f"binance took order {placed}",
            )
        order_id = str(info["orderId"])
        return await self._proven(
            lambda: self._bybit_find(unified, {"orderId": order_id}),
            f"bybit acknowledged order {order_id}",
        )

    async def _proven(self, find: Callable[[], Awaitable[Order | None]], what: str) -> Order:
        order = await read_back(find, clock=self._clock, policy=self._read_back)
        if order is None:
            raise NotProven(
                f"{what}, but its state was not proven within {self._read_back.looks} "
                "look-ups; look it up by its client id"
            )
        return order

    async def _bybit_order(self, symbol: str, order_id: str) -> Order:
        """Bybit answers a command with ids only: read the order back."""
        order = await self._bybit_find(to_venue(symbol), {"orderId": order_id})
        if order is None:
            raise ccxt.OrderNotFound(f"bybit accepted order {order_id} but does not list it")
        return order

    @_at(Q.STOP)
    async def set_position_stop(self, symbol: str, trigger_price: Decimal | None) -> Outcome:
        if not self.capabilities.position_stop:
            return Rejected(
                reason=R.NOT_SUPPORTED,
                message=f"{self._venue.value} has no position-attached stop; place a "
                "reduce-only stop order instead",
            )
        rules = await self._market_rules(symbol)
        if isinstance(rules, Rejected):
            return rules
        trigger: Decimal | None = None
        if trigger_price is not None:
            checked = self._price(rules, trigger_price, stop=True)
            if isinstance(checked, Rejected):
                return checked
            trigger = checked
        request: dict[str, Any] = {
            "category": "linear",
            "symbol": symbol,
            "tpslMode": "Full",
            "positionIdx": 0,  # required by the venue; ccxt adds it only in hedge mode
            "stopLoss": "0" if trigger is None else _text(trigger),  # "0" removes it
        }
        if trigger is not None:
            request.update({"slTriggerBy": "MarkPrice", "slOrderType": "Market"})
        try:
            before = await self._position_stop(symbol) if trigger is None else None
        except ccxt.BaseError as error:
            return command_outcome(self._venue, error)
        if trigger is None and before is None:
            return Rejected(reason=R.NOT_MODIFIED, message="the position has no stop to remove")

        async def after(_: object) -> Order:
            if before is not None:
                return attrs.evolve(before, status=OrderStatus.CANCELED)
            placed = await self._position_stop(symbol)
            if placed is None:  # fired or removed in between: the venue has no such stop now
                raise parse.Unreadable("trading-stop accepted but no position stop is listed")
            return placed

        return await self._command(
            None, lambda: self.client.privatePostV5PositionTradingStop(request), after
        )

    async def _position_stop(self, symbol: str) -> Order | None:
        stops = await self._call(
            lambda: self.client.fetch_open_orders(to_venue(symbol), None, None, {"trigger": True})
        )
        for item in stops:
            order = parse.bybit_order(item["info"])
            if order.type is OrderType.POSITION_STOP:
                return order
        return None

    @_at(_amend_priority)
    async def amend_order(
        self,
        symbol: str,
        order_id: str,
        *,
        trigger_price: Decimal | None = None,
        price: Decimal | None = None,
    ) -> Outcome:
        rules = await self._market_rules(symbol)
        if isinstance(rules, Rejected):
            return rules
        try:
            current = await self.fetch_order(symbol, order_id)
        except ExchangeUnavailable as error:
            reason = R.RATE_LIMITED if error.rate_limited else R.VENUE_UNAVAILABLE
            return Rejected(reason=reason, message=str(error), retryable=error.retryable)
        if current is None or not current.is_open:
            return order_not_found(self._profile.refusals)
        if current.is_stop:
            return await self._amend_stop(rules, current, trigger_price)
        limit = self._price(rules, price, stop=False)
        if isinstance(limit, Rejected):
            return limit
        unified = to_venue(symbol)
        quantity = _text(current.quantity)

        async def read(raw: Mapping[str, Any]) -> Order:
            if self._binance:
                return parse.binance_order(raw["info"])
            return await self._bybit_order(symbol, order_id)

        return await self._command(
            current.client_order_id,
            lambda: self.client.edit_order(
                order_id, unified, "limit", current.side.value, quantity, _text(limit)
            ),
            read,
        )

    async def _amend_stop(
        self, rules: MarketRules, current: Order, trigger_price: Decimal | None
    ) -> Outcome:
        if current.type is OrderType.POSITION_STOP:
            return await self.set_position_stop(current.symbol, trigger_price)
        if not self.capabilities.amend_stop:
            return Rejected(
                reason=R.NOT_SUPPORTED,
                message=f"{self._venue.value} cannot move a stop in place; create the new "
                "stop, then cancel the old one",
            )
        trigger = self._price(rules, trigger_price, stop=True)
        if isinstance(trigger, Rejected):
            return trigger
        params = {"triggerPrice": _text(trigger), "triggerBy": "MarkPrice"}  # else LastPrice
        return await self._command(
            current.client_order_id,
            lambda: self.client.edit_order(
                current.order_id,
                to_venue(current.symbol),
                "market",
                current.side.value,
                None,
                None,
                params,
            ),
            lambda _: self._bybit_order(current.symbol, current.order_id),
        )

    @_at(Q.STOP)
    async def cancel_order(self, symbol: str, order_id: str) -> Outcome:
        rules = await self._market_rules(symbol)
        if isinstance(rules, Rejected):
            return rules
        unified = to_venue(symbol)
        if not self._binance:
            return await self._command(
                None,
                lambda: self.client.cancel_order(order_id, unified),
                lambda _: self._bybit_order(symbol, order_id),
            )
        algo = self._algos.get(order_id) or await self._open_algo(unified, order_id)
        if algo is None:
            return await self._command(
                None,
                lambda: self.client.cancel_order(order_id, unified),
                lambda raw: _ready(self._read_order(raw["info"]))(),
            )

        async def cancelled(raw: Mapping[str, Any]) -> Order:
            order = _algo_cancelled(raw["info"], algo)
            self._algos[order.order_id] = order
            return order

        return await self._command(
            None,
            lambda: self.client.cancel_order(order_id, unified, {"trigger": True}),
            cancelled,
        )

    async def _open_algo(self, unified: str, order_id: str) -> Order | None:
        """The open algo (conditional) order of an id this process has not seen, if any."""
        try:
            stops = await self._call(
                lambda: self.client.fetch_open_orders(unified, None, None, {"trigger": True})
            )
        except ccxt.BaseError:
            return None  # the plain cancel then answers for itself
        for item in stops:
            if str(item["info"].get("algoId")) == order_id:
                try:
                    return parse.binance_algo(item["info"])
                except parse.Unreadable:
                    return None
        return None

    # ----------------------------------------------------------------- leverage, margin mode
    # (adapters/ccxt/margin.py: what ccxt sends for each, per venue)

    async def set_leverage(self, symbol: str, leverage: Decimal) -> SettingOutcome:
        return await margin.set_leverage(self, symbol, leverage)

    async def fetch_leverage(self, symbol: str) -> Decimal:
        return await margin.fetch_leverage(self, symbol)

    async def set_margin_mode(self, symbol: str, mode: MarginMode) -> SettingOutcome:
        return await margin.set_margin_mode(self, symbol, mode)

    async def fetch_margin_mode(self, symbol: str) -> MarginMode:
        return await margin.fetch_margin_mode(self, symbol)

    async def fetch_leverage_tiers(self, symbol: str) -> Sequence[LeverageTier]:
        return await margin.fetch_leverage_tiers(self, symbol)

    async def close(self) -> None:
        for feed in self._feeds:
            await feed.aclose()
        self._feeds.clear()
        await self.client.close()


def _ready(value: T) -> Callable[[], Awaitable[T]]:
    """An awaitable factory for a value already in hand."""

    async def give() -> T:
        return value

    return give


def _algo_cancelled(info: Mapping[str, Any], order: Order) -> Order:
    """The cancelled algo order from Binance's cancel answer: the documented `{"algoId",
    "clientAlgoId", "code": "200", "msg": "success"}`, or a whole algo order (with its
    `algoStatus`) as the websocket API's answer carries it."""
    if "algoStatus" in info:
        return parse.binance_algo(info)
    return parse.binance_algo_cancelled(info, order)


def _linear_usdt(markets: Mapping[str, Any]) -> dict[str, Any]:
    return {
        unified: market
        for unified, market in markets.items()
        if market.get("swap") and market.get("linear") and market.get("settle") == "USDT"
    }


def _binance_rules(markets: Mapping[str, Any], tiers: Mapping[str, Any]) -> list[MarketRules]:
    rules = []
    for unified, market in markets.items():
        leverages = [parse.dec(t["info"]["initialLeverage"]) for t in tiers.get(unified) or []]
        top = max(leverages) if leverages else Decimal(1)
        rules.append(parse.binance_rules(market["info"], top))
    return rules
