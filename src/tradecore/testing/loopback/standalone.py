"""A loopback exchange as its own process: the paper engine on the wall clock, a seeded
random-walk mark feed, the venue's HTTP and websocket dialect, and a read-only view of the
venue's books for tests that watch a real runner from outside.

    python -m tradecore.testing.loopback --venue binance --port 8901 --seed 7

The runner trades against it with `trade --testing-exchange-url http://127.0.0.1:8901`
(refused in live mode). `POST /__loopback/faults` scripts a fault as `FakeVenue.inject` does
(`DELETE` drops them). `GET /__loopback/state` answers the venue's whole state as JSON:
marks, positions, every order ever placed with its status and times, every amendment, every
position's stop counts and unprotected intervals, and the refusals (docs/testing.md).
"""

import asyncio
import signal
import socket
from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import attrs
from aiohttp import web

from tradecore.adapters.paper import (
    DEFAULT_MARKS,
    PROFILES,
    Fault,
    FaultKind,
    Interval,
    Op,
    PositionRecord,
    RandomWalk,
    VenueEngine,
    default_markets,
)
from tradecore.domain.model import Venue
from tradecore.domain.orders import Order
from tradecore.ports.exchange import RejectReason
from tradecore.testing.loopback import binance, bybit  # noqa: F401  (they register themselves)
from tradecore.testing.loopback.server import Dialect, LoopbackServer, dialect_class

STATE_PATH = "/__loopback/state"
# Facts the loopback can answer differently from the corpus (`--alter`), so a test sees
# venue-check flag exactly that one: "leverage_not_applied" acknowledges a set-leverage
# (Binance `POST /fapi/v1/leverage`, Bybit `POST /v5/position/set-leverage`) and keeps the
# old leverage; "entry_stop_not_set" acknowledges a Bybit entry's `stopLoss` and fills the
# entry without setting it on the position.
ALTERATIONS = ("leverage_not_applied", "entry_stop_not_set")
FAULTS_PATH = "/__loopback/faults"


@attrs.frozen(kw_only=True)
class WalkSettings:
    """The mark feed: one step per symbol every `interval` seconds of the wall clock."""

    seed: int = 7
    interval: float = 0.25
    volatility: float = 0.002  # a step's standard deviation, as a fraction of the price
    jump_probability: float = 0.0
    jump_size: float = 0.02


def _wall_clock() -> datetime:
    return datetime.now(UTC)


class StandaloneExchange:
    """The engine, its server on a TCP port, and the mark feed, in the current event loop."""

    def __init__(
        self,
        venue: Venue,
        *,
        symbols: Sequence[str] | None = None,
        walk: WalkSettings | None = None,
        balance: Decimal = Decimal(10_000),
        alter: Sequence[str] = (),
    ) -> None:
        markets = [
            rules for rules in default_markets(venue) if not symbols or rules.symbol in set(symbols)
        ]
        unknown = set(symbols or ()) - {rules.symbol for rules in markets}
        if unknown:
            raise ValueError(
                f"unknown symbols {sorted(unknown)}; the loopback lists "
                f"{[r.symbol for r in default_markets(venue)]}"
            )
        self.walk = walk or WalkSettings()
        self.engine = VenueEngine(
            PROFILES[venue],
            now=_wall_clock,
            markets=markets,
            marks={r.symbol: DEFAULT_MARKS[r.symbol] for r in markets},
            balance=balance,
        )
        self.dialect: Dialect = dialect_class(venue)(self.engine)
        wrong = set(alter) - set(ALTERATIONS)
        if wrong:
            raise ValueError(f"unknown alterations {sorted(wrong)}; known: {list(ALTERATIONS)}")
        self.dialect.altered = frozenset(alter)
        self.server = LoopbackServer(
            self.engine,
            self.dialect,
            extra_routes={STATE_PATH: self._state, FAULTS_PATH: self._faults},
        )
        self._feed: asyncio.Task[None] | None = None

    async def start(self, port: int = 0, host: str = "127.0.0.1") -> str:
        """Serve on `host:port` (0: any free port) and start the mark feed; the base URL."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        # a restarted exchange takes its port back at once (a closed port sits in TIME_WAIT)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        url = await self.server.start_on(sock)
        self._feed = asyncio.create_task(self._walk(), name="loopback-marks")
        return url

    async def close(self) -> None:
        if self._feed is not None:
            self._feed.cancel()
        await self.server.close()

    async def _walk(self) -> None:
        loop = asyncio.get_running_loop()
        start, started = _wall_clock(), loop.time()
        walks = {
            symbol: RandomWalk(
                start=self.engine.mark(symbol) or DEFAULT_MARKS[symbol],
                tick=rules.tick_size,
                seed=self.walk.seed * 1000 + number,
                interval=self.walk.interval,
                volatility=self.walk.volatility,
                jump_probability=self.walk.jump_probability,
                jump_size=self.walk.jump_size,
            ).points(start)
            for number, (symbol, rules) in enumerate(sorted(self.engine.markets.items()))
        }
        while True:
            moment = None
            for symbol, points in walks.items():
                moment, mark = next(points)
                self.engine.set_mark(symbol, mark)
            assert moment is not None
            due = started + (moment - start).total_seconds()
            await asyncio.sleep(max(0.0, due - loop.time()))

    async def _state(self, _: web.Request) -> web.Response:
        return web.json_response(state_of(self.engine))

    async def _faults(self, request: web.Request) -> web.Response:
        """POST a fault to script (JSON: kind, op, symbol, times, skip, reason, fill_ratio);
        DELETE drops every pending one. A network error cannot be carried over HTTP."""
        if request.method == "DELETE":
            self.engine.faults.clear()
        elif request.method == "POST":
            try:
                self.engine.faults.add(fault_from(await request.json()))
            except (ValueError, KeyError, TypeError) as exc:
                return web.json_response({"error": str(exc)}, status=400)
        elif request.method != "GET":
            return web.json_response({"error": "GET, POST or DELETE"}, status=405)
        return web.json_response({"pending": len(self.engine.faults.pending)})


def fault_from(body: dict[str, Any]) -> Fault:
    kind = FaultKind(body["kind"])
    if kind is FaultKind.NETWORK_ERROR:
        raise ValueError("a network error is a refused connect; script it in-process")
    ratio = body.get("fill_ratio")
    return Fault(
        kind=kind,
        op=Op(body["op"]) if body.get("op") else None,
        symbol=body.get("symbol"),
        times=int(body.get("times", 1)),
        skip=int(body.get("skip", 0)),
        reason=RejectReason(body["reason"]) if body.get("reason") else None,
        fill_ratio=None if ratio is None else Decimal(str(ratio)),
    )


def state_of(engine: VenueEngine) -> dict[str, Any]:
    """Everything a test may check on the venue, as JSON (times ISO, numbers as strings)."""
    return {
        "venue": engine.venue.value,
        "now": _iso(engine.now()),
        "marks": {s: _num(engine.mark(s)) for s in engine.markets},
        "positions": [
            {
                "symbol": p.symbol,
                "side": p.side.value,
                "quantity": _num(p.quantity),
                "entry_price": _num(p.entry_price),
            }
            for p in engine.positions()
        ],
        "orders": [_order(o, origin) for o, origin in _with_origin(engine)],
        "amendments": [
            {
                "at": _iso(a.at),
                "order_id": a.order_id,
                "symbol": a.symbol,
                "old_trigger": _num(a.old_trigger),
                "new_trigger": _num(a.new_trigger),
            }
            for a in engine.books.amendments
        ],
        "position_records": [_record(r) for r in engine.books.positions],
        "pending_faults": len(engine.faults.pending),
        "refusals": [
            {
                "at": _iso(r.at),
                "op": r.op,
                "symbol": r.symbol,
                "code": r.rejected.code,
                "reason": r.rejected.reason.value,
            }
            for r in engine.books.refusals
        ],
    }


def _with_origin(engine: VenueEngine) -> list[tuple[Order, str]]:
    origins = {record.order_id: record.origin for record in engine.books.orders}
    return [(order, origins.get(order.order_id, "api")) for order in engine.all_orders()]


def _order(order: Order, origin: str) -> dict[str, Any]:
    return {
        "order_id": order.order_id,
        "client_order_id": order.client_order_id,
        "symbol": order.symbol,
        "side": order.side.value,
        "type": order.type.value,
        "status": order.status.value,
        "open": order.is_open,
        "stop": order.is_stop,
        "quantity": _num(order.quantity),
        "filled": _num(order.filled),
        "trigger_price": _num(order.trigger_price),
        "reduce_only": order.reduce_only,
        "close_position": order.close_position,
        "origin": origin,
        "created_at": _iso(order.created_at),
        "updated_at": _iso(order.updated_at),
    }


def _record(record: PositionRecord) -> dict[str, Any]:
    return {
        "position_id": record.position_id,
        "symbol": record.symbol,
        "side": record.side.value,
        "opened_at": _iso(record.opened_at),
        "closed_at": _iso(record.closed_at),
        "close_reason": record.close_reason,
        "stop_counts": [[_iso(at), count] for at, count in record.stop_counts],
        "unprotected": [_interval(gap) for gap in record.unprotected()],
    }


def _interval(gap: Interval) -> list[str | None]:
    return [_iso(gap.start), _iso(gap.end)]


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


def _num(value: Decimal | None) -> str | None:
    return None if value is None else format(value, "f")


async def serve(exchange: StandaloneExchange, port: int, *, ready: str | None = None) -> None:
    """Serve until SIGINT / SIGTERM; print one line with the base URL once listening."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    url = await exchange.start(port)
    venue = exchange.engine.venue.value
    print(ready or f"loopback {venue} exchange listening on {url}", flush=True)
    try:
        await stop.wait()
    finally:
        await exchange.close()
