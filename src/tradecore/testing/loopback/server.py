"""The HTTP shell shared by the loopback venues: routing, the api-key check, and faults.

A dialect (Binance fapi, Bybit v5) turns a request into an operation on the engine and the
engine's answer into the venue's JSON; this shell carries the engine's scripted transport
faults over HTTP the way the real venues show them: a rate limit (Binance 429 with -1003,
Bybit retCode 10006), a 5xx (the venue acted first or not), a request that never gets an
answer (the venue never saw it), and an answer that never comes (the venue acted, the
response is lost).
"""

import asyncio
import json
import socket
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any, ClassVar, Protocol
from urllib.parse import parse_qsl

from aiohttp import WSMsgType, web

from tradecore.adapters.paper.engine import VenueEngine
from tradecore.adapters.paper.faults import FaultKind, Op
from tradecore.domain.model import Venue
from tradecore.testing.corpus import Answer

SERVER_KINDS = frozenset(
    {FaultKind.LOST_RESPONSE, FaultKind.TIMEOUT, FaultKind.RATE_LIMIT, FaultKind.SERVER_ERROR}
)

Params = dict[str, str]
Reply = tuple[int, Any]  # HTTP status, JSON body
Handler = Callable[[Params], Reply]
# Told of every REST answer of every loopback server: (venue, answer). The contract suite
# checks each against the documented answers (tests/contract/conftest.py).
Observer = Callable[[str, Answer], None]


class Dialect(Protocol):
    """One venue's wire format over the engine (a module per venue, registered with
    `register_dialect`; docs/extending.md)."""

    venue: Venue
    ccxt_id: str  # the id of ccxt's client for the venue (`client.id`)
    api_key_header: str
    altered: frozenset[str]  # facts answered differently from the corpus (venue-check tests)

    def __init__(self, engine: VenueEngine) -> None: ...

    @staticmethod
    def prepare_client(client: Any) -> None:
        """Adjust a ccxt client pointed at the loopback (see `point_at`)."""
        ...

    def route(self, method: str, path: str, params: Params) -> tuple[Op | None, Handler] | None:
        """The operation (for faults) and handler of a request, or None for an unknown path."""
        ...

    def rate_limited(self) -> Reply: ...

    def server_error(self) -> Reply: ...

    def unauthorized(self) -> Reply: ...

    def not_found(self, path: str) -> Reply: ...

    def public(self, path: str) -> bool: ...

    def stale(self, headers: Mapping[str, str], params: Params, now_ms: int) -> Reply | None:
        """The venue's clock-skew refusal when the signed timestamp is outside its window."""
        ...

    def ws_request(self, message: Any) -> tuple[list[Any], list[str]]:
        """Replies to one websocket request and the symbols it subscribes to."""
        ...

    def ws_tick(self, symbol: str, mark: Decimal, at: datetime) -> Any:
        """The venue's mark-price push for one tick."""
        ...


_DIALECTS: dict[Venue, type[Dialect]] = {}
# A REST request's parsed params, kept on the request for the answer's rate-limit headers
# (a dialect's optional `limit_headers(method, path, params, status) -> headers`).
_PARAMS = web.RequestKey("tradecore.params", dict)


def register_dialect(dialect: type[Dialect]) -> type[Dialect]:
    """Make `dialect` the loopback's wire format for `dialect.venue`."""
    _DIALECTS[dialect.venue] = dialect
    return dialect


def dialect_class(venue: Venue) -> type[Dialect]:
    """The loopback dialect registered for `venue`."""
    try:
        return _DIALECTS[venue]
    except KeyError:
        raise ValueError(f"no loopback dialect for {venue!s}") from None


def registered_dialects() -> tuple[type[Dialect], ...]:
    return tuple(_DIALECTS.values())


class LoopbackServer:
    """An aiohttp server on 127.0.0.1 speaking one venue's REST dialect over an engine.

    `canned[(method, path)]` answers that endpoint with a fixed (status, body) instead (the
    corpus tests serve documented answers this way); `answers` keeps the last 10,000 REST
    answers given.
    """

    observers: ClassVar[list[Observer]] = []

    def __init__(
        self,
        engine: VenueEngine,
        dialect: Dialect,
        *,
        extra_routes: Mapping[str, Callable[[web.Request], Awaitable[web.StreamResponse]]]
        | None = None,
    ) -> None:
        self.engine = engine
        self.dialect = dialect
        self.requests: list[tuple[str, str, Params]] = []
        self._extra = dict(extra_routes or {})
        self._runner: web.AppRunner | None = None
        self._closing = asyncio.Event()
        self.port = 0
        self.subscriptions: dict[str, int] = {}  # symbol -> live websocket subscribers
        self._sockets: set[web.WebSocketResponse] = set()
        self.canned: dict[tuple[str, str], Reply] = {}
        self.answers: deque[Answer] = deque(maxlen=10_000)  # bounded: a process runs for days

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def _runner_ready(self) -> web.AppRunner:
        app = web.Application(client_max_size=1024**2, middlewares=[self._observed])
        for path, handler in self._extra.items():
            app.router.add_route("*", path, handler)
        app.router.add_route("*", "/{tail:.*}", self._dispatch)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        return self._runner

    async def start(self) -> str:
        """Listen on a free port of 127.0.0.1; returns the base URL."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        return await self.start_on(sock)

    async def start_on(self, sock: socket.socket) -> str:
        """Serve on an already bound socket (so a client can know the port before start)."""
        runner = await self._runner_ready()
        site = web.SockSite(runner, sock)
        await site.start()
        self.port = sock.getsockname()[1]
        return self.base_url

    async def drop_websockets(self) -> None:
        """Close every websocket connection, as a venue does on maintenance or a network cut."""
        for ws in tuple(self._sockets):
            await ws.close(code=1006, message=b"dropped by the loopback venue")

    async def close(self) -> None:
        self._closing.set()
        await self.drop_websockets()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    @web.middleware
    async def _observed(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        """A canned answer where one is set; every REST answer recorded and observed."""
        canned = self.canned.get((request.method, request.path))
        response = _json(*canned) if canned is not None else await handler(request)
        params = request.get(_PARAMS)
        limit_headers = getattr(self.dialect, "limit_headers", None)
        if isinstance(response, web.Response) and params is not None and limit_headers:
            # the venue's own rate-limit count, as the real venue sends it on every answer
            response.headers.update(
                limit_headers(request.method, request.path, params, response.status)
            )
        if isinstance(response, web.Response):
            answer = Answer(
                method=request.method,
                path=request.path,
                status=response.status,
                body=_body(response),
            )
            self.answers.append(answer)
            for observer in self.observers:
                observer(self.engine.venue.value, answer)
        return response

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        if request.headers.get("Upgrade", "").lower() == "websocket":
            return await self._websocket(request)
        params = await _params(request)
        request[_PARAMS] = params
        path = request.path
        self.requests.append((request.method, path, params))
        if not self.dialect.public(path):
            if not request.headers.get(self.dialect.api_key_header):
                return _json(*self.dialect.unauthorized())
            skewed = self.dialect.stale(request.headers, params, int(time.time() * 1000))
            if skewed is not None:
                return _json(*skewed)
        routed = self.dialect.route(request.method, path, params)
        if routed is None:
            return _json(*self.dialect.not_found(path))
        op, handler = routed
        fault = None
        if op is not None:
            fault = self.engine.faults.take(op, params.get("symbol"), SERVER_KINDS)
        if fault is None:
            return _json(*handler(params))
        if fault.kind is FaultKind.RATE_LIMIT:
            return _json(*self.dialect.rate_limited())
        if fault.kind is FaultKind.SERVER_ERROR:
            if fault.acted:
                handler(params)  # the venue acted, then failed to answer (a 5xx)
            return _json(*self.dialect.server_error())
        if fault.kind is FaultKind.LOST_RESPONSE:
            handler(params)  # the venue acts; only the answer never arrives
        await self._closing.wait()  # hold the request until the client gives up
        raise web.HTTPServiceUnavailable()

    async def _websocket(self, request: web.Request) -> web.WebSocketResponse:
        """Public mark-price streams: subscribe requests in, one push per engine tick out."""
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        self._sockets.add(ws)
        outbox: asyncio.Queue[Any] = asyncio.Queue()
        symbols: list[str] = []

        def on_tick(symbol: str, mark: Decimal, at: datetime) -> None:
            outbox.put_nowait(self.dialect.ws_tick(symbol, mark, at))

        async def writer() -> None:
            while True:
                await ws.send_json(await outbox.get())

        sending = asyncio.ensure_future(writer())
        unsubscribers = []
        try:
            async for message in ws:
                if message.type is not WSMsgType.TEXT:
                    continue
                replies, wanted = self.dialect.ws_request(json.loads(message.data))
                for reply in replies:
                    outbox.put_nowait(reply)
                fresh = [s for s in wanted if s not in symbols]
                if fresh:
                    unsubscribers.append(self.engine.subscribe(fresh, on_tick))
                    symbols.extend(fresh)
                    for symbol in fresh:
                        self.subscriptions[symbol] = self.subscriptions.get(symbol, 0) + 1
        finally:
            for unsubscribe in unsubscribers:
                unsubscribe()
            for symbol in symbols:
                self.subscriptions[symbol] -= 1
            sending.cancel()
            self._sockets.discard(ws)
        return ws


async def _params(request: web.Request) -> Params:
    params: Params = dict(request.query)
    if request.can_read_body:
        raw = await request.text()
        if raw:
            if request.content_type == "application/json" or raw.lstrip().startswith("{"):
                body = json.loads(raw)
                params.update({k: _text(v) for k, v in body.items()})
            else:
                params.update(dict(parse_qsl(raw, keep_blank_values=True)))
    return params


def _text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return value if isinstance(value, str) else json.dumps(value)


def _body(response: web.Response) -> Any:
    text = response.text or ""
    if response.content_type == "application/json":
        return json.loads(text)
    return text


def _json(status: int, body: Any) -> web.Response:
    if isinstance(body, str):
        return web.Response(status=status, text=body, content_type="text/html")
    return web.json_response(body, status=status)
