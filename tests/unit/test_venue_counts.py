"""The limiter listens to the venue: what its answers' headers say it has counted.

Other clients on the same key or IP spend the same budgets, so our own count runs low. A
budget's count is the larger of ours and the venue's until the venue's window ends; a share
of it (`reserve`) is kept for stops, so a venue count running ahead of ours slows entries,
queries and sweeps, never a stop. A rate-limit refusal (429, Bybit 10006) closes the budget,
stops included, until the venue says it may be used again.
"""

import asyncio
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from tradecore.adapters.ccxt.limiter import Budget, Heard, RequestLimiter, VenueCount, VenueLimits
from tradecore.adapters.ccxt.limits import VENUE_LIMITS
from tradecore.adapters.ccxt.venues import binance, bybit
from tradecore.adapters.clock import VirtualClock, settle
from tradecore.domain.model import OrderSide
from tradecore.ports.exchange import RequestPriority as P
from tradecore.testing.loopback import LoopbackVenue

START = datetime(2026, 3, 1, 12, 0, 30, tzinfo=UTC)
SYMBOL = "BTCUSDT"


def limiter(*budgets: Budget) -> tuple[RequestLimiter, VirtualClock]:
    clock = VirtualClock(START)
    return RequestLimiter(clock, VenueLimits(budgets=budgets), venue="test"), clock


async def served(
    limits: RequestLimiter, clock: VirtualClock, asks: list[tuple[str, P, dict[str, int]]]
) -> dict[str, float]:
    """Ask for each at the same instant; run virtual time; seconds after START each went."""
    went: dict[str, float] = {}

    async def ask(label: str, priority: P, costs: dict[str, int]) -> None:
        await limits.acquire(priority, costs)
        went[label] = (clock.now() - START).total_seconds()

    tasks = [asyncio.create_task(ask(*a)) for a in asks]
    await settle()
    await clock.run_all()
    await asyncio.gather(*tasks)
    return went


async def test_a_venue_count_ahead_of_ours_slows_entries_and_queries_not_stops() -> None:
    limits, clock = limiter(Budget(name="w", limit=100, window=60.0, reserve=10))
    # another client on the same IP spent 95 this minute; we spent nothing
    window_end = START + timedelta(seconds=30)
    limits.hear({"w": 1}, Heard(counts=(VenueCount(budget="w", used=95, until=window_end),)))
    assert limits.venue_count("w") == 95
    went = await served(
        limits,
        clock,
        [("entry", P.ENTRY, {"w": 1}), ("query", P.QUERY, {"w": 1}), ("stop", P.STOP, {"w": 1})],
    )
    assert went == {"stop": 0.0, "entry": 30.0, "query": 30.0}  # at the venue's window end
    assert limits.venue_count("w") == 3  # ours again: the venue's minute is over


async def test_without_the_venues_count_nothing_waits() -> None:
    """The same requests, the venue silent: our own count has room for all."""
    limits, clock = limiter(Budget(name="w", limit=100, window=60.0, reserve=10))
    went = await served(
        limits,
        clock,
        [("entry", P.ENTRY, {"w": 1}), ("query", P.QUERY, {"w": 1}), ("stop", P.STOP, {"w": 1})],
    )
    assert went == {"entry": 0.0, "query": 0.0, "stop": 0.0}


async def test_what_we_spend_after_the_venue_counted_adds_to_its_count() -> None:
    limits, _ = limiter(Budget(name="w", limit=100, window=60.0, reserve=10))
    limits.hear({}, Heard(counts=(VenueCount(budget="w", used=80, until=START + timedelta(30)),)))
    for _ in range(5):
        await limits.acquire(P.QUERY, {"w": 2})
    assert limits.venue_count("w") == 90
    # an older answer, counted before those five, never lowers it
    limits.hear({}, Heard(counts=(VenueCount(budget="w", used=81, until=START + timedelta(30)),)))
    assert limits.venue_count("w") == 90


async def test_steady_traffic_the_venue_agrees_with_never_piles_up() -> None:
    """Bybit's window rolls: 5 entries a second against 10 (1 kept for stops), the venue's
    count always equal to ours, for 20 seconds: nothing ever waits."""
    limits, clock = limiter(Budget(name="order/create", limit=10, window=1.0, reserve=1))
    for _ in range(100):
        await limits.acquire(P.ENTRY, {"order/create": 1})
        used = limits.venue_count("order/create")
        limits.hear({}, Heard(counts=(VenueCount(budget="order/create", used=used),)))
        await clock.advance(0.2)
    assert limits.held == 0


async def test_another_clients_burst_is_forgotten_once_the_venue_stops_counting_it() -> None:
    limits, clock = limiter(Budget(name="order/create", limit=10, window=1.0, reserve=1))
    limits.hear({}, Heard(counts=(VenueCount(budget="order/create", used=9),)))  # others: 9
    assert limits.venue_count("order/create") == 9
    await clock.advance(0.5)
    await limits.acquire(P.STOP, {"order/create": 1})
    limits.hear({}, Heard(counts=(VenueCount(budget="order/create", used=1),)))  # only ours
    assert limits.venue_count("order/create") == 1


async def test_a_429_still_stops_the_bucket_stops_included_until_retry_after() -> None:
    limits, clock = limiter(
        Budget(name="w", limit=100, window=60.0, reserve=10),
        Budget(name="other", limit=10, window=1.0),
    )
    limits.hear({"w": 1}, Heard(refused=True, retry_at=START + timedelta(seconds=5)))
    went = await served(
        limits,
        clock,
        [
            ("stop", P.STOP, {"w": 1}),
            ("query", P.QUERY, {"w": 1}),
            ("elsewhere", P.QUERY, {"other": 1}),
        ],
    )
    assert went == {"elsewhere": 0.0, "stop": 5.0, "query": 5.0}
    assert limits.refusals == 1


async def test_a_429_without_a_retry_time_closes_the_bucket_for_one_window() -> None:
    limits, clock = limiter(Budget(name="w", limit=10, window=2.0, reserve=1))
    limits.hear({"w": 1}, Heard(refused=True))
    went = await served(limits, clock, [("stop", P.STOP, {"w": 1})])
    assert went == {"stop": 2.0}


async def test_a_refusal_naming_its_budget_closes_only_that_one() -> None:
    """Bybit's 10006 is about the endpoint's budget: the IP's stays open."""
    limits, clock = limiter(
        Budget(name="ip", limit=600, window=5.0), Budget(name="order/create", limit=10, window=1.0)
    )
    limits.hear(
        {"ip": 1, "order/create": 1},
        Heard(refused=True, retry_at=START + timedelta(seconds=1), closes=("order/create",)),
    )
    went = await served(
        limits,
        clock,
        [("stop", P.STOP, {"ip": 1, "order/create": 1}), ("cancel", P.STOP, {"ip": 1})],
    )
    assert went == {"cancel": 0.0, "stop": 1.0}


def test_a_reserve_must_leave_room_for_others() -> None:
    with pytest.raises(ValueError, match="reserve"):
        Budget(name="w", limit=10, window=1.0, reserve=10)


# ------------------------------------------------------------------ the venues' headers


def test_binance_headers_give_the_ips_weight_and_the_accounts_order_counts() -> None:
    heard = binance.heard(
        "/fapi/v1/order",
        200,
        {
            "X-MBX-USED-WEIGHT-1M": "2300",
            "X-MBX-ORDER-COUNT-10S": "7",
            "X-MBX-ORDER-COUNT-1M": "40",
        },
        "{}",
        START,
    )
    assert not heard.refused
    assert set(heard.counts) == {
        VenueCount(budget=binance.IP, used=2300, until=datetime(2026, 3, 1, 12, 1, tzinfo=UTC)),
        VenueCount(budget=binance.ORDERS_10S, used=7, until=START + timedelta(seconds=10)),
        VenueCount(
            budget=binance.ORDERS_1M, used=40, until=datetime(2026, 3, 1, 12, 1, tzinfo=UTC)
        ),
    }


def test_a_binance_429_refuses_until_its_retry_after() -> None:
    body = '{"code":-1003,"msg":"Too many requests; current limit is 2400 requests per minute."}'
    heard = binance.heard("/fapi/v1/positionRisk", 429, {"Retry-After": "7"}, body, START)
    assert heard.refused and heard.retry_at == START + timedelta(seconds=7)
    assert heard.closes is None  # every budget the request was charged to


def test_bybit_headers_give_what_is_left_of_the_endpoints_budget() -> None:
    now_ms = int(START.timestamp() * 1000)
    headers = {
        "X-Bapi-Limit": "10",
        "X-Bapi-Limit-Status": "3",
        "X-Bapi-Limit-Reset-Timestamp": str(now_ms),  # not exceeded: "just the current timestamp"
    }
    heard = bybit.heard("/v5/order/create", 200, headers, '{"retCode":0}', START)
    assert heard.counts == (VenueCount(budget="order/create", used=7, until=None),)
    assert not heard.refused
    assert bybit.heard("/v5/market/tickers", 200, {}, "{}", START) == Heard()


def test_a_bybit_10006_refuses_the_endpoint_until_its_reset() -> None:
    reset = START + timedelta(milliseconds=640)
    headers = {
        "X-Bapi-Limit": "10",
        "X-Bapi-Limit-Status": "0",
        "X-Bapi-Limit-Reset-Timestamp": str(int(reset.timestamp() * 1000)),
    }
    body = '{"retCode":10006,"retMsg":"Too many visits!","result":{},"retExtInfo":{},"time":1}'
    heard = bybit.heard("/v5/order/create", 200, headers, body, START)
    assert heard.refused and heard.retry_at == reset and heard.closes == ("order/create",)
    assert heard.counts == (VenueCount(budget="order/create", used=10, until=reset),)


# ------------------------------------------------------------------ over loopback


async def test_binance_over_loopback_the_ips_weight_follows_the_venue() -> None:
    """Another client spent 2,300 of the IP's 2,400 this minute: after one answer our
    limiter holds a position query, while a stop (no IP weight, its read-back within the
    reserve) goes at once."""
    venue = LoopbackVenue.binance(marks={SYMBOL: "50000"})
    try:
        exchange = venue.connect(limits=VENUE_LIMITS[venue.engine.venue])
        await exchange.load_markets()
        venue.dialect.rates.others[binance.IP] = 2300  # type: ignore[attr-defined]
        await exchange.fetch_mark_price(SYMBOL)  # its answer carries the venue's count
        assert exchange.limiter.venue_count(binance.IP) >= 2300
        query = asyncio.create_task(exchange.fetch_positions())
        await settle()
        assert exchange.limiter.waiting == 1 and not query.done()
        venue.engine.place_market(SYMBOL, OrderSide.BUY, Decimal("0.01"))
        stop = await exchange.create_stop_order(
            SYMBOL, OrderSide.SELL, Decimal("0.01"), Decimal("48000"), client_order_id="tc-v1-s0"
        )
        assert type(stop).__name__ == "Accepted", stop
        assert not query.done()
        venue.dialect.rates.others.clear()  # type: ignore[attr-defined]
        await venue.advance(60)  # the venue's minute ends
        await asyncio.wait_for(query, 5)
    finally:
        await venue.close()


async def test_bybit_over_loopback_an_endpoints_count_follows_the_venue() -> None:
    """Another client of the same UID placed 8 orders this second: our entry is the 9th,
    the venue says 1 left; the next entry waits for the window, a stop takes the reserve."""
    venue = LoopbackVenue.bybit(marks={SYMBOL: "50000"})
    try:
        exchange = venue.connect(limits=VENUE_LIMITS[venue.engine.venue])
        await exchange.load_markets()
        venue.dialect.rates.others["order/create"] = 8  # type: ignore[attr-defined]
        first = await exchange.create_market_order(
            SYMBOL, OrderSide.BUY, Decimal("0.01"), client_order_id="tc-v2-e0"
        )
        assert type(first).__name__ == "Accepted", first
        assert exchange.limiter.venue_count("order/create") == 9
        second = asyncio.create_task(
            exchange.create_market_order(
                SYMBOL, OrderSide.BUY, Decimal("0.01"), client_order_id="tc-v3-e0"
            )
        )
        await settle()
        assert exchange.limiter.waiting == 1
        stop = await exchange.create_stop_order(
            SYMBOL, OrderSide.SELL, Decimal("0.01"), Decimal("48000"), client_order_id="tc-v2-s0"
        )
        assert type(stop).__name__ == "Accepted", stop
        assert not second.done()
        venue.dialect.rates.others.clear()  # type: ignore[attr-defined]
        await venue.advance(1)
        assert type(await asyncio.wait_for(second, 5)).__name__ == "Accepted"
    finally:
        await venue.close()


async def test_concurrent_answers_each_count_for_their_own_request() -> None:
    """ccxt's `last_response_headers` is one slot per client: with requests in flight at
    once the last answer wins. Each request's own answer reaches the limiter instead."""
    venue = LoopbackVenue.bybit(marks={SYMBOL: "50000"})
    try:
        exchange = venue.connect(limits=VENUE_LIMITS[venue.engine.venue])
        await exchange.load_markets()
        venue.dialect.rates.others["order/create"] = 6  # type: ignore[attr-defined]
        venue.dialect.rates.others["position/list"] = 30  # type: ignore[attr-defined]
        await asyncio.gather(
            exchange.create_market_order(
                SYMBOL, OrderSide.BUY, Decimal("0.01"), client_order_id="tc-v4-e0"
            ),
            exchange.fetch_positions(),
            exchange.fetch_positions(),
        )
        assert exchange.limiter.venue_count("order/create") == 7
        assert exchange.limiter.venue_count("position/list") == 32
    finally:
        await venue.close()
