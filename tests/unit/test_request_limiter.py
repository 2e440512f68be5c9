"""Our request limiter in virtual time: budgets, weights, priorities, the 418 gate."""

import asyncio
import itertools
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tradecore.adapters.ccxt.errors import IpBanned
from tradecore.adapters.ccxt.limiter import Budget, RequestLimiter, VenueLimits
from tradecore.adapters.ccxt.venues.binance import IP as BINANCE_IP
from tradecore.adapters.ccxt.venues.binance import LIMITS as BINANCE_LIMITS
from tradecore.adapters.ccxt.venues.binance import ORDERS_1M as BINANCE_ORDERS_1M
from tradecore.adapters.ccxt.venues.binance import ORDERS_10S as BINANCE_ORDERS_10S
from tradecore.adapters.ccxt.venues.bybit import IP as BYBIT_IP
from tradecore.adapters.ccxt.venues.bybit import LIMITS as BYBIT_LIMITS
from tradecore.adapters.clock import VirtualClock, settle
from tradecore.ports.exchange import RequestPriority as P

START = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def limiter(*budgets: Budget) -> tuple[RequestLimiter, VirtualClock]:
    clock = VirtualClock(START)
    return RequestLimiter(clock, VenueLimits(budgets=budgets), venue="test"), clock


def one_per_second(name: str = "b", limit: int = 1, window: float = 1.0) -> Budget:
    return Budget(name=name, limit=limit, window=window)


async def served_in_order(
    limits: RequestLimiter, clock: VirtualClock, asks: list[tuple[str, P, dict[str, int]]]
) -> list[str]:
    """Queue `asks` in this order (same instant), run virtual time, return who went when."""
    served: list[str] = []

    async def ask(label: str, priority: P, costs: dict[str, int]) -> None:
        await limits.acquire(priority, costs)
        served.append(label)

    tasks = [asyncio.create_task(ask(*a)) for a in asks]
    await settle()
    await clock.run_all()
    await asyncio.gather(*tasks)
    return served


async def test_requests_within_the_budget_go_at_once() -> None:
    limits, clock = limiter(one_per_second(limit=3))
    for _ in range(3):
        await limits.acquire(P.ENTRY, {"b": 1})
    assert clock.now() == START and limits.waiting == 0


async def test_a_stop_goes_first_however_late_it_was_asked_for() -> None:
    limits, clock = limiter(one_per_second())
    await limits.acquire(P.QUERY, {"b": 1})  # the budget is spent
    asks = [
        ("sweep", P.SWEEP, {"b": 1}),
        ("entry", P.ENTRY, {"b": 1}),
        ("query", P.QUERY, {"b": 1}),
        ("close", P.CLOSE, {"b": 1}),
        ("stop", P.STOP, {"b": 1}),
    ]
    assert await served_in_order(limits, clock, asks) == [
        "stop",
        "close",
        "entry",
        "query",
        "sweep",
    ]
    assert clock.now() == START + timedelta(seconds=5)  # one a second, none early


async def test_within_a_priority_first_come_first_served() -> None:
    limits, clock = limiter(one_per_second())
    await limits.acquire(P.ENTRY, {"b": 1})
    asks = [(f"e{n}", P.ENTRY, {"b": 1}) for n in range(4)]
    assert await served_in_order(limits, clock, asks) == ["e0", "e1", "e2", "e3"]


async def test_a_heavy_request_waits_until_its_whole_weight_is_back() -> None:
    limits, clock = limiter(one_per_second(limit=5, window=10.0))
    await limits.acquire(P.QUERY, {"b": 3})
    clock_at: list[datetime] = []

    async def heavy() -> None:
        await limits.acquire(P.QUERY, {"b": 3})
        clock_at.append(clock.now())

    await clock.advance(4)
    task = asyncio.create_task(heavy())
    await settle()
    await clock.run_all()
    await task
    assert clock_at == [START + timedelta(seconds=10)]  # 3 + 3 > 5 until the first expires


async def test_a_light_request_never_spends_weight_a_more_urgent_one_waits_for() -> None:
    limits, clock = limiter(one_per_second(limit=3))
    await limits.acquire(P.ENTRY, {"b": 2})  # 1 left: the query would fit, the stop not
    asks = [("stop", P.STOP, {"b": 2}), ("query", P.QUERY, {"b": 1})]
    assert await served_in_order(limits, clock, asks) == ["stop", "query"]


async def test_a_request_on_other_budgets_is_not_held_up_by_a_waiting_stop() -> None:
    ip = one_per_second("ip", limit=600, window=5.0)  # Bybit: per endpoint, and per IP
    limits, clock = limiter(one_per_second("orders"), one_per_second("positions"), ip)
    await limits.acquire(P.ENTRY, {"orders": 1, "ip": 1})
    stop = asyncio.create_task(limits.acquire(P.STOP, {"orders": 1, "ip": 1}))
    await settle()
    await limits.acquire(P.QUERY, {"positions": 1, "ip": 1})  # at once
    assert clock.now() == START and not stop.done()
    await clock.run_all()
    await stop


async def test_the_budget_refills_one_window_after_it_was_spent() -> None:
    limits, clock = limiter(one_per_second(limit=2, window=10.0))
    await limits.acquire(P.ENTRY, {"b": 1})
    await clock.advance(3)
    await limits.acquire(P.ENTRY, {"b": 1})
    waiting = asyncio.create_task(limits.acquire(P.ENTRY, {"b": 1}))
    await clock.advance(6.999)
    assert not waiting.done()
    await clock.advance(0.001)  # ten seconds after the first
    await asyncio.sleep(0)
    assert waiting.done()


async def test_a_cancelled_request_frees_its_place_for_the_next() -> None:
    limits, clock = limiter(one_per_second())
    await limits.acquire(P.ENTRY, {"b": 1})
    stop = asyncio.create_task(limits.acquire(P.STOP, {"b": 1}))
    entry = asyncio.create_task(limits.acquire(P.ENTRY, {"b": 1}))
    await asyncio.sleep(0)
    stop.cancel()
    await settle()
    await clock.run_all()
    await entry
    assert limits.waiting == 0


async def test_an_ip_ban_sends_nothing_until_it_ends_and_refuses_those_waiting() -> None:
    limits, clock = limiter(one_per_second())
    await limits.acquire(P.ENTRY, {"b": 1})
    waiting = asyncio.create_task(limits.acquire(P.STOP, {"b": 1}))
    await asyncio.sleep(0)
    limits.note(IpBanned("binanceusdm 418 I'm a teapot", retry_after=120))
    with pytest.raises(IpBanned):
        await waiting
    with pytest.raises(IpBanned, match="banned until"):
        await limits.acquire(P.STOP, {})
    await clock.advance(119)
    with pytest.raises(IpBanned):
        await limits.acquire(P.STOP, {"b": 1})
    await clock.advance(1)
    await limits.acquire(P.STOP, {"b": 1})


async def test_a_weight_that_can_never_fit_is_refused_with_what_to_change() -> None:
    limits, _ = limiter(one_per_second(limit=5))
    with pytest.raises(ValueError, match="can never fit"):
        await limits.acquire(P.QUERY, {"b": 6})


def test_binance_weights_follow_the_published_figures() -> None:
    weigh = BINANCE_LIMITS.weigh
    order = {BINANCE_ORDERS_10S: 1, BINANCE_ORDERS_1M: 1}  # 0 on the IP's weight
    assert weigh("POST", "order", "fapiPrivate", {"symbol": "BTCUSDT"}) == order
    assert weigh("POST", "algoOrder", "fapiPrivate", {"symbol": "BTCUSDT"}) == order
    assert weigh("DELETE", "order", "fapiPrivate", {"symbol": "BTCUSDT"}) == {BINANCE_IP: 1}
    assert weigh("GET", "openOrders", "fapiPrivate", {"symbol": "BTCUSDT"}) == {BINANCE_IP: 1}
    assert weigh("GET", "openOrders", "fapiPrivate", {}) == {BINANCE_IP: 40}
    assert weigh("GET", "positionRisk", "fapiPrivateV3", {}) == {BINANCE_IP: 5}


def test_bybit_charges_the_ip_and_the_endpoints_own_budget() -> None:
    weigh = BYBIT_LIMITS.weigh
    assert weigh("POST", "v5/order/create", "private", {}) == {BYBIT_IP: 1, "order/create": 1}
    assert weigh("GET", "v5/market/tickers", "public", {}) == {BYBIT_IP: 1}
    budgets = {b.name: (b.limit, b.window) for b in BYBIT_LIMITS.budgets}
    assert budgets["order/create"] == (10, 1.0) and budgets[BYBIT_IP] == (600, 5.0)


# ------------------------------------------------------------------ properties

BUDGETS = (Budget(name="x", limit=3, window=1.0), Budget(name="y", limit=5, window=2.0))
request = st.tuples(
    st.integers(0, 3000),  # arrival, ms
    st.sampled_from(list(P)),
    st.dictionaries(st.sampled_from(["x", "y"]), st.integers(1, 3), max_size=2),
)


def simulate(asks: list[tuple[int, P, dict[str, int]]]) -> list[tuple[int, int, int, int]]:
    """Run `asks` in virtual time: per request (asked, served: the order of those events
    among all requests), the virtual time it was served (µs), and its index."""
    clock = VirtualClock(START)
    limits = RequestLimiter(clock, VenueLimits(budgets=BUDGETS))
    events = itertools.count()
    seen: dict[int, tuple[int, int, int]] = {}

    async def ask(index: int, at_ms: int, priority: P, costs: dict[str, int]) -> None:
        await clock.sleep(at_ms / 1000)
        asked = next(events)
        await limits.acquire(priority, costs)
        seen[index] = (asked, next(events), (clock.now() - START) // timedelta(microseconds=1))

    async def run() -> None:
        tasks = [asyncio.create_task(ask(i, *a)) for i, a in enumerate(asks)]
        await settle()
        await clock.run_all()
        await asyncio.gather(*tasks)

    asyncio.run(run())
    return [(*seen[i], i) for i in range(len(asks))]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(request, min_size=1, max_size=25))
def test_no_window_of_any_budget_ever_holds_more_than_its_limit(
    asks: list[tuple[int, P, dict[str, int]]],
) -> None:
    outcome = simulate(asks)
    for budget in BUDGETS:
        span = int(budget.window * 1_000_000)
        spends = [(at, asks[i][2].get(budget.name, 0)) for _, _, at, i in outcome]
        for end, _ in spends:  # every window (end - span, end] that ends at a spend
            inside = sum(w for at, w in spends if end - span < at <= end)
            assert inside <= budget.limit


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(request, min_size=1, max_size=25))
def test_a_less_urgent_request_never_takes_weight_a_more_urgent_waiting_one_needs(
    asks: list[tuple[int, P, dict[str, int]]],
) -> None:
    """Whenever a request B leaves while a more urgent A (higher priority, or equal and asked
    for first) is waiting, A would still fit, in every budget they share, beside all that was
    sent in that budget's window, B included. So A never waits because of B; B may go first
    only on weight A does not need (e.g. A waits for a budget B does not use)."""
    outcome = simulate(asks)
    windows = {b.name: (int(b.window * 1_000_000), b.limit) for b in BUDGETS}
    for asked_a, served_a, _, a in outcome:
        for _, served_b, at_b, b in outcome:
            more_urgent = (asks[a][1], asked_a) < (asks[b][1], outcome[b][0])
            if not (more_urgent and asked_a < served_b < served_a):
                continue
            for name in asks[a][2].keys() & asks[b][2].keys():
                span, limit = windows[name]
                sent = sum(
                    asks[i][2].get(name, 0)
                    for _, seq, at, i in outcome
                    if seq <= served_b and at_b - span < at <= at_b
                )
                assert sent + asks[a][2][name] <= limit, (asks[a], asks[b], name)
