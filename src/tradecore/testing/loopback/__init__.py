"""Loopback exchanges: the real ccxt client talking HTTP to a local Binance or Bybit.

    venue = LoopbackVenue.binance()          # or .bybit(); a VenueHarness
    exchange = venue.exchange                # tradecore's ccxt adapter, pointed at 127.0.0.1
    await venue.set_mark("BTCUSDT", "48000")
    venue.inject(Fault.rate_limit(Op.STOP_ORDER))   # answered as HTTP 429 / retCode 10006
    await venue.close()

The server speaks the venue's wire format over the paper engine (`VenueEngine`), so the
books, faults and controls of `FakeVenue` work unchanged. A network error is a refused TCP
connect (the request provably never left); the other transport faults are carried over
HTTP by the server. Mark streams poll REST here (ccxt.pro websockets are not served), and
`set_mark` advances the clock one poll interval when a stream watches the symbol.
"""

import asyncio
import json
import re
import socket
from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qsl

import aiohttp
import ccxt.async_support as ccxt

from tradecore.adapters.ccxt.exchange import CcxtExchange, Environment, build_client
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
from tradecore.testing.loopback.server import Dialect, LoopbackServer

__all__ = ["BinanceDialect", "BybitDialect", "LoopbackServer", "LoopbackVenue", "point_at"]

_NETWORK = frozenset({FaultKind.NETWORK_ERROR})


def point_at(client: ccxt.Exchange, base_url: str) -> None:
    """Send every REST call of `client` to `base_url`, keeping each endpoint's path."""
    client.urls["api"] = {
        key: re.sub(r"^https?://[^/]+", base_url, value) if isinstance(value, str) else value
        for key, value in client.urls["api"].items()
    }
    if client.id == "binanceusdm":
        # off binance.com ccxt maps codes through its generic table; use the futures one
        client.exceptions["exact"].update(client.exceptions["linear"]["exact"])


class _FaultConnector(aiohttp.TCPConnector):
    """Starts the server on first use; refuses the connect for a scripted network error."""

    def __init__(self, venue: "LoopbackVenue") -> None:
        super().__init__(force_close=False)
        self._venue = venue

    async def connect(self, req: Any, traces: Any, timeout: Any) -> Any:
        await self._venue.start()
        params: dict[str, str] = dict(req.url.query)
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
    """A `VenueHarness`: the ccxt adapter, a loopback server, and the engine behind it."""

    def __init__(
        self,
        profile: Profile,
        *,
        marks: Mapping[str, Decimal | str | int] | None = None,
        balance: Decimal | str | int = "10000",
        clock: VirtualClock | None = None,
        timeout_ms: int = 400,
        poll_interval: float = 1.0,
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
        self.dialect: Dialect = (
            BinanceDialect(self.engine)
            if profile.venue is Venue.BINANCE
            else BybitDialect(self.engine)
        )
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.bind(("127.0.0.1", 0))
        self._socket.listen(64)
        self._socket.setblocking(False)
        self.port = self._socket.getsockname()[1]
        self.server = LoopbackServer(self.engine, self.dialect)
        self._started = False
        self._lock: asyncio.Lock | None = None
        venue = self

        base = ccxt.binanceusdm if profile.venue is Venue.BINANCE else ccxt.bybit

        class _Client(base):  # type: ignore[misc, valid-type]
            def open(self, lazy: bool = False) -> None:
                if getattr(self, "session", None) is None:
                    self.asyncio_loop = asyncio.get_running_loop()
                    self.throttler.loop = self.asyncio_loop
                    self.session = aiohttp.ClientSession(connector=_FaultConnector(venue))
                super().open(lazy)

        client = build_client(
            profile.venue,
            api_key="loopback-key",
            secret="loopback-secret",
            environment=Environment.DEMO,
            timeout_ms=timeout_ms,
            client_class=_Client,
        )
        point_at(client, f"http://127.0.0.1:{self.port}")
        self._exchange = CcxtExchange(
            client, profile.venue, clock=self.clock, poll_interval=poll_interval
        )

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
        value = to_decimal(mark, name="mark")
        watching = [f for f in self._exchange.feeds if symbol in f.symbols]
        for feed in watching:  # the stream's baseline is read before the mark moves
            await _until(lambda f=feed: f.polls > 0 and f.idle.is_set())
        self.engine.set_mark(symbol, value)
        await settle()
        if watching:
            interval = max(f.poll_interval for f in watching)
            await self.clock.advance(interval)
            for feed in watching:
                await _until(lambda f=feed: f.last(symbol) == value and f.idle.is_set())

    async def advance(self, seconds: float) -> None:
        await self.clock.advance(seconds)

    def inject(self, *faults: Fault) -> None:
        self.engine.faults.add(*faults)

    def rules(self, symbol: str) -> MarketRules:
        return self.engine.markets[symbol]

    async def close(self) -> None:
        await self._exchange.close()
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
