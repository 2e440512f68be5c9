"""The exchange port on ccxt (`ccxt.async_support`), for any venue with a ccxt dialect.

What differs between venues (which endpoint an order lives on, how an answer is read, what a
position stop or a leverage change sends) is the venue's `CcxtDialect`
(`adapters/ccxt/venues/<venue>.py`, docs/extending.md); this module never asks which venue
it talks to.

Numbers go to ccxt as strings made from our Decimals, and only after they were checked
against the market's tick and step: ccxt's own precision helpers truncate or round, and an
order must be sent exactly as decided or refused. Numbers come back from the venue's raw
strings (`info`), never from ccxt's floats.
"""

import asyncio
import functools
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Mapping, Sequence
from contextvars import ContextVar
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any, Concatenate, ParamSpec, TypeVar
from urllib.parse import urlsplit

import aiohttp
import attrs
import ccxt.async_support as ccxt

from tradecore.adapters.ccxt import margin, parse
from tradecore.adapters.ccxt.errors import (
    clock_skew,
    command_outcome,
    query_failure,
    watch_server_failures,
)
from tradecore.adapters.ccxt.limiter import RequestLimiter, VenueLimits
from tradecore.adapters.ccxt.profiles import (
    check_price,
    check_quantity,
    order_not_found,
    unknown_symbol,
)
from tradecore.adapters.ccxt.recent import Recent
from tradecore.adapters.ccxt.streams import MarkFeed, StatusCallback
from tradecore.adapters.ccxt.venues import ByVenue, CcxtDialect, dialect_for
from tradecore.adapters.readback import NotProven, ReadBack, read_back
from tradecore.domain.leverage import LeverageTier, MarginMode
from tradecore.domain.model import OrderSide, Venue
from tradecore.domain.orders import (
    Balance,
    MarkCandle,
    MarkTick,
    Order,
    OrderStatus,
    OrderType,
    VenuePosition,
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


# Algo orders (and fired stops' market orders) a process remembers, most recent first: a
# Binance bot trailing 200 positions places hundreds of thousands of stops a day.
REMEMBERED_ALGOS = 10_000

CAPABILITIES = ByVenue(lambda dialect: dialect.profile.capabilities)


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
    dialect = dialect_for(venue)
    config["options"] = dict(dialect.profile.options)
    client: ccxt.Exchange = (client_class or dialect.client_class(websockets=True))(config)
    dialect.prepare_client(client)
    if environment is Environment.DEMO:
        client.enable_demo_trading(True)
    elif environment is Environment.TESTNET:
        if not dialect.has_testnet:
            raise ValueError(f"{venue.value} has no testnet through ccxt; use demo trading")
        client.set_sandbox_mode(True)
    return client


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


@attrs.define
class _Answer:
    """One request's answer as ccxt's HTTP layer saw it (filled in by `on_rest_response`)."""

    url: str = ""
    status: int | None = None
    headers: Mapping[str, str] = attrs.Factory(dict)
    body: str = ""


# The answer of the request this task is sending: each request runs `fetch2` → `fetch` →
# `on_rest_response` in one task, so concurrent requests never see each other's answer
# (ccxt's `last_response_headers` is one attribute for all of them: the last to arrive wins).
_ANSWER: ContextVar[_Answer | None] = ContextVar("ccxt_answer", default=None)


def _limit_requests(client: ccxt.Exchange, limiter: RequestLimiter) -> None:
    """Put `limiter` in front of every REST request of `client`, in place of ccxt's own.

    ccxt sends each request through `fetch2(path, api, method, params, ...)` (signing comes
    after, so a request that waited is signed with a fresh timestamp). Every answer's
    rate-limit headers go to the limiter (the venue's own count; a 429 closes the budgets
    the request was charged to), read from `on_rest_response`, which ccxt calls with that
    request's own headers. An IP ban (418) in an answer closes the limiter's gate.
    """
    client.enableRateLimit = False
    original = client.fetch2
    answered = client.on_rest_response

    def on_rest_response(
        code: int, reason: str, url: str, method: str, headers: Any, body: Any, *rest: Any
    ) -> Any:
        seen = _ANSWER.get()
        if seen is not None:
            seen.url, seen.status = url, code
            seen.headers = headers if isinstance(headers, Mapping) else {}
            seen.body = body if isinstance(body, str) else ""
        return answered(code, reason, url, method, headers, body, *rest)

    async def fetch2(
        path: str, api: Any = "public", method: str = "GET", params: Any = None, *rest: Any
    ) -> Any:
        params = {} if params is None else params
        costs = limiter.costs(method, path, api, params if isinstance(params, Mapping) else {})
        priority = current_priority()  # STOP is 0: never `or` it away
        await limiter.acquire(Q.QUERY if priority is None else priority, costs)
        seen = _Answer()
        token = _ANSWER.set(seen)
        try:
            return await original(path, api, method, params, *rest)
        except ccxt.BaseError as error:
            limiter.note(error)
            raise
        finally:
            _ANSWER.reset(token)
            if seen.status is not None:
                url_path = urlsplit(seen.url).path
                limiter.hear(costs, limiter.read(url_path, seen.status, seen.headers, seen.body))

    client.on_rest_response = on_rest_response
    client.fetch2 = fetch2


class CcxtExchange:
    """One account on a venue with a ccxt dialect (Binance USDⓈ-M, Bybit linear).

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
        remembered_algos: int = REMEMBERED_ALGOS,
    ) -> None:
        self.client = client
        self._read_back = read_back or ReadBack()
        self._venue = venue
        self._dialect = dialect_for(venue)
        watch_server_failures(client, self._dialect.ip_ban_statuses)
        self._profile = self._dialect.profile
        self.limiter = RequestLimiter(
            clock, self._dialect.limits if limits is None else limits, venue=venue.value
        )
        _limit_requests(client, self.limiter)
        self._clock = clock
        self._rules: dict[str, MarketRules] = {}
        # Conditional orders as last seen, by id: on a venue that keeps them apart (Binance's
        # algo orders) the id says which endpoint to ask, and a cancel answer may name the
        # order without its state.
        # Both memories keep only the `remembered_algos` most recently used entries: a
        # forgotten one is asked of the venue again, as after a restart (docs/venues.md).
        self._algos: Recent[str, Order] = Recent(remembered_algos)
        # The order a fired conditional order became (Binance's `actualOrderId`), by its id:
        # the conditional order's own id, the one the application knows. The venue lists the
        # fills under the order it became; the dialect names them by the conditional order.
        self._fired: Recent[str, str] = Recent(remembered_algos)
        # a symbol's settings read in flight (`margin._symbol_settings`), shared by its callers
        self.settings_flights: dict[str, asyncio.Future[Any]] = {}
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
    def dialect(self) -> CcxtDialect:
        return self._dialect

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
            if not clock_skew(self._venue, error):
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
        rules = await self._dialect.market_rules(self, markets)
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
        return self._dialect.listing_params(symbol, stops=stops)

    @_at(_listing_priority)
    async def fetch_open_orders(self, symbol: str | None = None) -> Sequence[Order]:
        """Plain and conditional orders, merged: on some venues (Binance) the plain list has
        no stops."""
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
        self._algos.update((order.order_id, order) for order in stops)
        return list({order.order_id: order for order in [*plain, *stops]}.values())

    def _read_order(self, info: Mapping[str, Any], *, algo: bool = False) -> Order:
        return self._dialect.read_order(info, conditional=algo)

    @_at(Q.QUERY)
    async def fetch_order_by_client_id(self, symbol: str, client_order_id: str) -> Order | None:
        return await self._dialect.find_by_client_id(self, to_venue(symbol), client_order_id)

    @_at(Q.QUERY)
    async def fetch_order(self, symbol: str, order_id: str) -> Order | None:
        return await self._dialect.find_order(self, to_venue(symbol), order_id)

    async def _maybe(self, call: Callable[[], Awaitable[Any]]) -> Order | None:
        """The order a ccxt look-up returns, or None when the venue has no such order."""
        try:
            return await self._query(call, lambda raw: self._read_order(raw["info"]))
        except ExchangeUnavailable as error:
            if isinstance(error.__cause__, ccxt.OrderNotFound):
                return None
            raise

    @_at(Q.SWEEP)
    async def fetch_fills(
        self, symbol: str, *, since: datetime, order_ids: Sequence[str] | None = None
    ) -> Sequence[Fill]:
        """Every fill of the symbol from `since` (the dialect follows the venue's paging;
        both venues answer at most 7 days a request, so it asks window by window to now)."""
        found = await self._dialect.fills(self, to_venue(symbol), _ms(since))
        fills = sorted(found, key=lambda f: f.at)
        if order_ids is not None:
            wanted = set(order_ids)
            fills = [f for f in fills if f.order_id in wanted]
        return fills

    @_at(Q.SWEEP)
    async def fetch_funding(self, symbol: str, *, since: datetime) -> Sequence[FundingPayment]:
        """Funding payments of the symbol from `since`, oldest first (the dialect says
        which endpoint keeps them)."""
        rows = await self._dialect.funding(self, symbol, _ms(since))
        payments = [p for p in rows if p is not None and p.symbol == symbol]
        return sorted(payments, key=lambda p: p.at)

    @_at(Q.SWEEP)
    async def fetch_mark_candles(self, symbol: str, *, since: datetime) -> Sequence[MarkCandle]:
        """The symbol's mark candles from `since` to now, oldest first (the dialect asks)."""
        return await self._dialect.mark_candles(self, symbol, since)

    @_at(Q.QUERY)
    async def fetch_mark_price(self, symbol: str) -> Decimal:
        return await self._dialect.mark(self, to_venue(symbol))

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
        return self._dialect.can_watch(self.client)

    async def _watch_marks(self, symbols: Sequence[str]) -> Mapping[str, Decimal]:
        """One update of the venue's mark stream (Binance markPrice, Bybit tickers)."""
        unified = [to_venue(symbol) for symbol in symbols]
        tickers = await self._dialect.watch_marks(self.client, unified)
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
        stop_loss: Decimal | None = None,
    ) -> Outcome:
        if stop_loss is not None and not self.capabilities.entry_stop:
            return Rejected(
                reason=R.NOT_SUPPORTED,
                message=f"a {self._venue.value} order cannot carry a stop-loss",
            )
        rules = await self._market_rules(symbol)
        if isinstance(rules, Rejected):
            return rules
        qty = self._quantity(rules, quantity)
        if isinstance(qty, Rejected):
            return qty
        params = self._order_params(client_order_id)
        if reduce_only:
            params["reduceOnly"] = True
        if stop_loss is not None:
            trigger = self._price(rules, stop_loss, stop=True)
            if isinstance(trigger, Rejected):
                return trigger
            params.update(self._dialect.entry_stop_params(_text(trigger)))
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
        close_position: bool = False,
    ) -> Outcome:
        rules = await self._market_rules(symbol)
        if isinstance(rules, Rejected):
            return rules
        if close_position and not self.capabilities.close_position_stop:
            return Rejected(
                reason=RejectReason.NOT_SUPPORTED,
                message=f"{self.venue.value} has no close-position stop (refused before sending)",
            )
        qty = None if close_position else self._quantity(rules, quantity)
        if isinstance(qty, Rejected):
            return qty
        trigger = self._price(rules, trigger_price, stop=True)
        if isinstance(trigger, Rejected):
            return trigger
        # a close-all stop carries the profile's flag in place of reduceOnly, and no quantity
        closing = dict(self._profile.close_position_params) if qty is None else {"reduceOnly": True}
        params = {
            **self._order_params(client_order_id),
            **self._profile.stop_params,
            "stopLossPrice": _text(trigger),
            **closing,
        }
        amount = None if qty is None else _text(qty)
        return await self._command(
            client_order_id,
            lambda: self.client.create_order(
                to_venue(symbol), "market", side.value, amount, None, params
            ),
            lambda raw: self._placed(symbol, raw),
        )

    async def _placed(self, symbol: str, raw: Mapping[str, Any]) -> Order:
        """The order as the venue holds it after the command, its state proven: read back
        with pauses on the clock while the venue does not show it yet (Bybit answers ids
        only; a Binance answer that leaves a market order open is read again on the plain
        order endpoint). Unproven within the bound: `NotProven`, the command `Unknown`."""
        return await self._dialect.placed(self, symbol, raw)

    async def _proven(self, find: Callable[[], Awaitable[Order | None]], what: str) -> Order:
        order = await read_back(find, clock=self._clock, policy=self._read_back)
        if order is None:
            raise NotProven(
                f"{what}, but its state was not proven within {self._read_back.looks} "
                "look-ups; look it up by its client id"
            )
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
        text = None if trigger is None else _text(trigger)
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
            None, lambda: self._dialect.position_stop(self.client, symbol, text), after
        )

    async def _position_stop(self, symbol: str) -> Order | None:
        stops = await self._call(
            lambda: self.client.fetch_open_orders(to_venue(symbol), None, None, {"trigger": True})
        )
        for item in stops:
            order = self._read_order(item["info"], algo=True)
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
            return await self._dialect.read_amended(self, symbol, order_id, raw)

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
        params = self._dialect.amend_stop_params(_text(trigger))
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
            lambda raw: self._dialect.read_amended(self, current.symbol, current.order_id, raw),
        )

    @_at(Q.STOP)
    async def cancel_order(self, symbol: str, order_id: str) -> Outcome:
        rules = await self._market_rules(symbol)
        if isinstance(rules, Rejected):
            return rules
        return await self._dialect.cancel(self, symbol, order_id)

    # ----------------------------------------------------------------- leverage, margin mode
    # (adapters/ccxt/margin.py, and the dialect: what ccxt sends for each)

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


def _linear_usdt(markets: Mapping[str, Any]) -> dict[str, Any]:
    return {
        unified: market
        for unified, market in markets.items()
        if market.get("swap") and market.get("linear") and market.get("settle") == "USDT"
    }
