"""Which request the venue sees first: through the real ccxt client over a loopback venue.

With ccxt's own limiter every request waits `rateLimit` × its cost behind the one before, in
arrival order: a stop asked for after five entries leaves after all five. With ours in its
place the stop leaves as soon as a budget has room, before the entries still waiting.
"""

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from decimal import Decimal

import pytest

from tradecore.adapters.ccxt.limiter import NO_LIMITS, VenueLimits
from tradecore.adapters.ccxt.limits import VENUE_LIMITS
from tradecore.adapters.ccxt.venues.binance import ORDERS_10S as BINANCE_ORDERS_10S
from tradecore.domain.model import OrderSide, Venue
from tradecore.ports.exchange import RequestPriority, request_priority
from tradecore.testing.loopback import LoopbackVenue

SYMBOL = "BTCUSDT"
QTY = Decimal("0.01")
ENTRIES = [f"tc-q{n}-e0" for n in range(5)]
STOP = "tc-q0-s0"


def arrivals(venue: LoopbackVenue, ids: list[str]) -> list[str]:
    """The client order ids among `ids`, in the order their commands reached the venue."""
    seen = []
    for _, _, params in venue.server.requests:
        for cid in ids:
            if cid in params.values() and cid not in seen:
                seen.append(cid)
    return seen


async def until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    """Wait (real time: HTTP is real) until `condition()` holds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        assert loop.time() < deadline, "condition never held"
        await asyncio.sleep(0.001)


async def test_with_ccxts_own_limiter_a_stop_waits_behind_five_entries() -> None:
    """The problem, as seen from outside (issue 11, item 6): ccxt's default spacing."""
    venue = LoopbackVenue.binance(marks={SYMBOL: "50000"})
    try:
        exchange = venue.connect(limits=NO_LIMITS, rate_limit_ms=None)
        client = exchange.client
        client.enableRateLimit = True  # ccxt's limiter, as before ours replaced it
        await exchange.load_markets()
        spacing = client.rateLimit * 4 / 1000  # binanceusdm: 50 ms x cost 4 per order
        venue.engine.place_market(SYMBOL, OrderSide.BUY, QTY * 5)
        entries = [
            asyncio.create_task(
                exchange.create_market_order(SYMBOL, OrderSide.BUY, QTY, client_order_id=cid)
            )
            for cid in ENTRIES
        ]
        await asyncio.sleep(0)  # every entry is in ccxt's queue
        loop = asyncio.get_running_loop()
        asked = loop.time()
        await exchange.create_stop_order(
            SYMBOL, OrderSide.SELL, QTY, Decimal("48000"), client_order_id=STOP
        )
        waited = loop.time() - asked
        await asyncio.gather(*entries)
        assert arrivals(venue, [*ENTRIES, STOP]) == [*ENTRIES, STOP]
        assert waited >= 4 * spacing
    finally:
        await venue.close()


def tight(venue: Venue) -> tuple[VenueLimits, float]:
    """The venue's real limits with its order budget cut to 2, and that budget's window."""
    if venue is Venue.BINANCE:
        return VENUE_LIMITS[venue].with_limit(BINANCE_ORDERS_10S, 2), 10.0
    return VENUE_LIMITS[venue].with_limit("order/create", 2), 1.0


@pytest.mark.parametrize("venue_name", ["binance", "bybit"])
async def test_a_stop_leaves_before_the_entries_queued_ahead_of_it(venue_name: str) -> None:
    venue = getattr(LoopbackVenue, venue_name)(marks={SYMBOL: "50000"})
    try:
        limits, window = tight(venue.engine.venue)
        exchange = venue.connect(limits=limits)
        await exchange.load_markets()
        venue.engine.place_market(SYMBOL, OrderSide.BUY, QTY * 5)
        entries = [
            asyncio.create_task(
                exchange.create_market_order(SYMBOL, OrderSide.BUY, QTY, client_order_id=cid)
            )
            for cid in ENTRIES
        ]
        await until(lambda: exchange.limiter.waiting == 3)  # two went, three wait
        stop = asyncio.create_task(
            exchange.create_stop_order(
                SYMBOL, OrderSide.SELL, QTY, Decimal("48000"), client_order_id=STOP
            )
        )
        await until(lambda: exchange.limiter.waiting == 4)
        while not all(task.done() for task in [*entries, stop]):
            await venue.advance(window)  # the budget comes back
            await asyncio.sleep(0.01)
        order = arrivals(venue, [*ENTRIES, STOP])
        assert set(order[:2]) <= set(ENTRIES) and order[2] == STOP, order
    finally:
        await venue.close()


async def test_each_request_carries_its_commands_priority_read_backs_included() -> None:
    venue = LoopbackVenue.bybit(marks={SYMBOL: "50000"})  # Bybit reads every command back
    try:
        exchange = venue.connect()
        seen: list[RequestPriority] = []
        acquire = exchange.limiter.acquire

        async def noting(priority: RequestPriority, costs: Mapping[str, int]) -> None:
            seen.append(priority)
            await acquire(priority, costs)

        exchange.limiter.acquire = noting  # type: ignore[method-assign]

        async def priorities(call: Awaitable[object]) -> set[RequestPriority]:
            seen.clear()
            await call
            return set(seen)

        P = RequestPriority
        assert await priorities(exchange.load_markets()) == {P.SWEEP}
        buy = exchange.create_market_order(SYMBOL, OrderSide.BUY, QTY, client_order_id="tc-p-e0")
        assert await priorities(buy) == {P.ENTRY}
        stop = exchange.create_stop_order(
            SYMBOL, OrderSide.SELL, QTY, Decimal("48000"), client_order_id="tc-p-s0"
        )
        assert await priorities(stop) == {P.STOP}
        exit_ = exchange.create_limit_order(
            SYMBOL, OrderSide.SELL, QTY, Decimal("52000"), client_order_id="tc-p-x0"
        )
        assert await priorities(exit_) == {P.CLOSE}
        assert await priorities(exchange.fetch_open_orders(SYMBOL)) == {P.QUERY}
        assert await priorities(exchange.fetch_open_orders()) == {P.SWEEP}
        with request_priority(P.SWEEP):  # a use case's own declaration wins
            assert await priorities(exchange.fetch_positions()) == {P.SWEEP}
    finally:
        await venue.close()
