"""Loopback exchanges: the real ccxt client talking HTTP to a local Binance or Bybit.

    venue = LoopbackVenue.binance()          # or .bybit(); a VenueHarness
    exchange = venue.exchange                # tradecore's ccxt adapter, pointed at 127.0.0.1
    await venue.set_mark("BTCUSDT", "48000")
    venue.inject(Fault.rate_limit(Op.STOP_ORDER))   # answered as HTTP 429 / retCode 10006
    await venue.close()

The server speaks the venue's wire format over the paper engine (`VenueEngine`), so the
books, faults and controls of `FakeVenue` work unchanged. A network error is a refused TCP
connect (the request provably never left); the other transport faults are carried over
HTTP by the server. Mark prices stream over the venue's own websocket messages (ccxt.pro:
Binance `markPriceUpdate`, Bybit `tickers.*`); with `websockets=False` the adapter polls REST
and `set_mark` advances the clock one poll interval for it.
"""

import asyncio
import json
import re
import socket
from collections.abc import Mapping
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qsl

import aiohttp
import ccxt.async_support as ccxt

from tradecore.adapters.ccxt.exchange import CcxtExchange, Environment, build_client
from tradecore.adapters.ccxt.limiter import NO_LIMITS
from tradecore.adapters.ccxt.venues import dialect_for
from tradecore.adapters.clock import VirtualClock, settle
from tradecore.adapters.paper import (
    BINANCE,
    BYBIT,
    DEFAULT_MARKS,
    Books,
    Fault,
    FaultKind,
    Profile,
    VenueEngine,
    default_markets,
)
from tradecore.domain.model import Venue
from tradecore.domain.numbers import to_decimal
from tradecore.domain.precision import MarketRules
from tradecore.testing.loopback.binance import BinanceDialect
from tradecore.testing.loopback.bybit import BybitDialect
from tradecore.testing.loopback.server import (
    Dialect,
    LoopbackServer,
    dialect_class,
    registered_dialects,
)

__all__ = ["BinanceDialect", "BybitDialect", "LoopbackServer", "LoopbackVenue", "point_at"]

_NETWORK = frozenset({FaultKind.NETWORK_ERROR})


def _client_class(venue: Venue, *, websockets: bool) -> type[ccxt.Exchange]:
    return dialect_for(venue).client_class(websockets=websockets)


def _rewrite(value: Any, http: str, ws: str) -> Any:
    if isinstance(value, dict):
        return {key: _rewrite(item, http, ws) for key, item in value.items()}
    if isinstance(value, str):
        if value.startswith(("ws://", "wss://")):
            return re.sub(r"^wss?://[^/]+", ws, value)
        return re.sub(r"^https?://[^/]+", http, value)
    return value


def point_at(client: ccxt.Exchange, base_url: str) -> None:
    """Send every REST and websocket call of `client` to `base_url`, keeping the paths."""
    ws_url = base_url.replace("http://", "ws://", 1)
    client.urls["api"] = _rewrite(client.urls["api"], base_url, ws_url)
    for dialect in registered_dialects():
        if dialect.ccxt_id == client.id:
            dialect.prepare_client(client)


class _FaultConnector(aiohttp.TCPConnector):
    """Starts the server on first use; refuses the connect for a scripted network error."""

    def __init__(self, venue: "LoopbackVenue") -> None:
        super().__init__(force_close=False)
        self._venue = venue

    async def connect(self, req: Any, traces: Any, timeout: Any) -> Any:
        await self._venue.start()
        params: dict[str, str] = dict(req.url.query)
        # aiohttp keeps a bytes body on the payload's `_value`; reading it here is the only
        # way a connector (which runs before anything is sent) can tell which command it is
        raw = getattr(req.body, "_value", b"") or b""
        if raw:
            text = raw.decode() if isinstance(raw, bytes) else str(raw)
            if text.lstrip().startswith("{"):
                params.update({k: str(v) for k, v in json.loads(text).items()})
            else:
                params.update(dict(parse_qsl(text)))
        routed = self._venue.dialect.route(req.method, req.url.path, params)
        if routed is not None and routed[0] is not None:
            fault = self._venue.engine.faults.take(routed[0], params.get("symbol"), _NETWORK)
            if fault is not None:
                raise aiohttp.ClientConnectorError(
                    req.connection_key, ConnectionRefusedError(111, "Connection refused")
                )
        return await super().connect(req, traces, timeout)


class LoopbackVenue:
    """A `VenueHarness`: the ccxt adapter, a loopback server, and the engine behind it.

    The constructor binds the server's socket (so the client's URLs know the port and the
    contract suite's factories stay synchronous); the server starts serving on the first
    request. `close()` closes every adapter made by `connect()` and the server.
    """

    def __init__(
        self,
        profile: Profile,
        *,
        marks: Mapping[str, Decimal | str | int] | None = None,
        balance: Decimal | str | int = "10000",
        clock: VirtualClock | None = None,
        timeout_ms: int = 400,
        poll_interval: float = 1.0,
        websockets: bool = True,
        **engine_options: Any,
    ) -> None:
        self.clock = clock or VirtualClock()
        markets = default_markets(profile.venue)
        prices = dict(DEFAULT_MARKS)
        prices.update({s: to_decimal(m, name=f"mark of {s}") for s, m in (marks or {}).items()})
        self.engine = VenueEngine(
            profile,
            now=self.clock.now,
            markets=markets,
            marks={r.symbol: prices[r.symbol] for r in markets if r.symbol in prices},
            balance=to_decimal(balance, name="balance"),
            **engine_options,
        )
        self.dialect: Dialect = dialect_class(profile.venue)(self.engine)
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.bind(("127.0.0.1", 0))
        self._socket.listen(64)
        self._socket.setblocking(False)
        self.port = self._socket.getsockname()[1]
        self.server = LoopbackServer(self.engine, self.dialect)
        self._started = False
        self._lock: asyncio.Lock | None = None
        self._timeout_ms = timeout_ms
        self._poll_interval = poll_interval
        self._websockets = websockets
        self._connections: list[CcxtExchange] = []
        self._exchange = self.connect()

    def connect(self, **options: Any) -> CcxtExchange:
        """Another ccxt client and adapter on this venue (e.g. a process after a restart).

        Our request limiter has no budgets here unless `limits=` names some (e.g.
        `VENUE_LIMITS[venue]`): in virtual time nobody moves the clock for a limiter that
        waits, so only its 418 gate works. `rate_limit_ms` is ccxt's own spacing, used only if
        a test switches ccxt's limiter back on.
        """
        venue = self
        websockets = options.pop("websockets", self._websockets)
        rate_limit_ms = options.pop("rate_limit_ms", 1)
        options.setdefault("limits", NO_LIMITS)
        base = _client_class(self.engine.venue, websockets=websockets)

        class _Client(base):  # type: ignore[misc, valid-type]
            def open(self, lazy: bool = False) -> None:
                if getattr(self, "session", None) is None:
                    self.asyncio_loop = asyncio.get_running_loop()
                    self.throttler.loop = self.asyncio_loop
                    self.session = aiohttp.ClientSession(connector=_FaultConnector(venue))
                super().open(lazy)

        client = build_client(
            self.engine.venue,
            api_key="loopback-key",
            secret="loopback-secret",
            environment=Environment.DEMO,
            timeout_ms=self._timeout_ms,
            client_class=_Client,
            rate_limit_ms=rate_limit_ms,
        )
        point_at(client, f"http://127.0.0.1:{self.port}")
        client.timeout_on_exit = 0  # ccxt waits for TLS shutdowns; plain loopback has none
        options.setdefault("poll_interval", self._poll_interval)
        exchange = CcxtExchange(
            client, self.engine.venue, clock=self.clock, use_websockets=websockets, **options
        )
        self._connections.append(exchange)
        return exchange

    @classmethod
    def binance(cls, **options: Any) -> "LoopbackVenue":
        return cls(BINANCE, **options)

    @classmethod
    def bybit(cls, **options: Any) -> "LoopbackVenue":
        return cls(BYBIT, **options)

    async def start(self) -> None:
        if self._started:
            return
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            if not self._started:
                await self.server.start_on(self._socket)
                self._started = True

    # ----------------------------------------------------------------- the harness surface

    @property
    def exchange(self) -> CcxtExchange:
        return self._exchange

    @property
    def books(self) -> Books:
        return self.engine.books

    def now(self) -> datetime:
        return self.clock.now()

    async def set_mark(self, symbol: str, mark: Decimal | str | int) -> None:
        """Move the mark; wait until every stream watching `symbol` has seen it.

        A stream first reads its baseline; a websocket feed then gets the push, a polling
        feed sees it after one poll interval of the clock.
        """
        value = to_decimal(mark, name="mark")
        feeds = [f for c in self._connections for f in c.feeds if symbol in f.symbols]
        pushed = [f for f in feeds if f.watching]
        for feed in feeds:
            await _until(lambda f=feed: f.polls > 0 and f.idle.is_set())
        if pushed:
            await _until(lambda: self.server.subscriptions.get(symbol, 0) >= len(pushed))
        self.engine.set_mark(symbol, value)
        await settle()
        polled = [f for f in feeds if not f.watching]
        if polled:
            await self.clock.advance(max(f.poll_interval for f in polled))
        for feed in feeds:
            await _until(lambda f=feed: f.last(symbol) == value and f.idle.is_set())

    async def advance(self, seconds: float) -> None:
        await self.clock.advance(seconds)

    def inject(self, *faults: Fault) -> None:
        self.engine.faults.add(*faults)

    def lag_listing(self, seconds: float) -> None:
        """From now on a look-up by id misses an order for `seconds` after its creation, as
        Bybit's may (its create only acknowledges; see `VenueEngine.listing_lag`)."""
        self.engine.listing_lag = timedelta(seconds=seconds)

    def rules(self, symbol: str) -> MarketRules:
        return self.engine.markets[symbol]

    async def drop_websockets(self) -> None:
        """Cut every stream connection, as a venue restart or a network cut does."""
        await self.server.drop_websockets()

    async def close(self) -> None:
        for exchange in self._connections:
            await exchange.close()
        await self.server.close()
        self._socket.close()


async def _until(condition: Any, timeout: float = 5.0) -> None:
    """Wait (real time: HTTP is real) until `condition()` holds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        if loop.time() > deadline:
            raise TimeoutError("the loopback venue's mark stream did not catch up")
        await asyncio.sleep(0.002)
