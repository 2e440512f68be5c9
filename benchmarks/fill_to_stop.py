"""Fill to stop: five entries at once, each followed by its stop, through the real ccxt client.

Issue 11, item 6. The loopback exchange runs as its own process (`python -m
tradecore.testing.loopback`: the venue's HTTP dialect over the paper engine, wall clock, on
127.0.0.1); this process runs tradecore's ccxt adapter with our request limiter at the
venue's real budgets (adapters/ccxt/limits.py). Each repeat opens five positions at once: five
market entries sent together, and as each entry's fill comes back its stop is sent. The
figure is the wall time from the moment the adapter has an entry's fill (its command
returned) to the moment the venue holds that position's stop (the order's creation time on
the venue's books). The round trip printed is the median of 50 mark-price requests through
the same client. Our limiter and no limiter at all take turns, repeat by repeat (each going
first every other time), against one venue process, so the machine's load falls on both
alike; no limiter at all is the floor this machine allows (the CPU of two processes
answering and parsing five orders at once).
Bar: median <= 1 round trip + 10 ms, p95 <= 1 round trip + 25 ms. For contrast, the same
with ccxt's own limiter at its defaults (`enableRateLimit`, `rateLimit` 50 ms on Binance,
20 ms on Bybit, times each endpoint's cost), as the adapter ran before ours replaced it.
Repeats are 1.1 s apart (a wave comes every 15 minutes), so each starts with Bybit's
per-second budgets back; between repeats the stops are cancelled and the position closed
(not measured).

    .venv/bin/python benchmarks/fill_to_stop.py [--repeats 20] [--venue binance]
"""

import argparse
import asyncio
import statistics
import sys
import time
from datetime import UTC, datetime
from decimal import Decimal

import aiohttp

from tradecore.adapters.ccxt.exchange import CcxtExchange, build_client
from tradecore.adapters.ccxt.limiter import NO_LIMITS
from tradecore.adapters.ccxt.limits import VENUE_LIMITS
from tradecore.adapters.clock import SystemClock
from tradecore.domain.model import OrderSide, Venue
from tradecore.ports.exchange import Accepted
from tradecore.testing.loopback import point_at

SYMBOL = "BTCUSDT"
QTY = Decimal("0.003")
STOP_PRICE = Decimal("45000")
ENTRIES = 5
# Between repeats (a wave comes every 15 minutes): longer than every budget's window but
# Binance's minute ones, which 20 repeats of 10 orders do not come near.
PAUSE = 1.1


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


async def start_venue(venue_name: str) -> tuple[asyncio.subprocess.Process, str]:
    """The loopback exchange as its own process (wall clock); returns it and its URL."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tradecore.testing.loopback",
        "--venue",
        venue_name,
        "--symbols",
        SYMBOL,
        "--interval",
        "10",
        "--volatility",
        "0.0001",
        stdout=asyncio.subprocess.PIPE,
    )
    assert process.stdout is not None
    line = (await process.stdout.readline()).decode().strip()
    return process, line.split()[-1]


async def open_one(exchange: CcxtExchange, tag: str) -> tuple[str, datetime]:
    """An entry, then its stop as soon as the fill is in: (the stop's id, when filled)."""
    entry = await exchange.create_market_order(
        SYMBOL, OrderSide.BUY, QTY, client_order_id=f"tc-{tag}-e0"
    )
    filled = datetime.now(UTC)
    if not isinstance(entry, Accepted):
        raise SystemExit(f"the entry was refused: {entry}")
    stop_id = f"tc-{tag}-s0"
    stop = await exchange.create_stop_order(
        SYMBOL, OrderSide.SELL, QTY, STOP_PRICE, client_order_id=stop_id
    )
    if not isinstance(stop, Accepted):
        raise SystemExit(f"the stop was refused: {stop}")
    return stop_id, filled


async def flatten(exchange: CcxtExchange, tag: str) -> None:
    """Between repeats: the stops cancelled and the position closed, so margin and the
    conditional-order cap never run out (not measured)."""
    for order in await exchange.fetch_open_orders(SYMBOL):
        await exchange.cancel_order(SYMBOL, order.order_id)
    await exchange.create_market_order(
        SYMBOL, OrderSide.SELL, QTY * ENTRIES, client_order_id=f"tc-{tag}-x0", reduce_only=True
    )


def connect(venue: Venue, url: str, mode: str) -> CcxtExchange:
    """`mode`: "ours" (our limiter, the venue's real budgets), "none" (no limiter at all:
    the floor this machine allows), "ccxt" (ccxt's own limiter at its defaults, switched on
    after the round trips are measured)."""
    client = build_client(
        venue, api_key="bench-key", secret="bench-secret", timeout_ms=5000, rate_limit_ms=None
    )
    point_at(client, url)
    client.timeout_on_exit = 0
    limits = VENUE_LIMITS[venue] if mode == "ours" else NO_LIMITS
    return CcxtExchange(client, venue, clock=SystemClock(), use_websockets=False, limits=limits)


async def round_trip(exchange: CcxtExchange) -> float:
    trips = []
    for _ in range(50):
        started = time.perf_counter()
        await exchange.fetch_mark_price(SYMBOL)
        trips.append(time.perf_counter() - started)
    return statistics.median(trips)


async def measure(
    venue_name: str, repeats: int, modes: list[str]
) -> tuple[dict[str, list[float]], float, dict[str, int]]:
    """Fill-to-stop samples per mode, the modes taking turns repeat by repeat on one venue
    process (so the machine's load falls on all alike); the round trip; requests held."""
    venue = Venue(venue_name)
    process, url = await start_venue(venue_name)
    exchanges = {mode: connect(venue, url, mode) for mode in modes}
    try:
        for exchange in exchanges.values():
            await exchange.load_markets()
        trip = await round_trip(next(iter(exchanges.values())))
        if "ccxt" in exchanges:
            exchanges["ccxt"].client.enableRateLimit = True
        fills: dict[str, dict[str, datetime]] = {mode: {} for mode in modes}
        order = list(exchanges.items())
        for r in range(repeats):
            for mode, exchange in order if r % 2 == 0 else order[::-1]:  # who goes first
                tag = f"{mode}{r}"
                opened = await asyncio.gather(
                    *(open_one(exchange, f"{tag}n{n}") for n in range(ENTRIES))
                )
                fills[mode].update(opened)
                await flatten(exchange, tag)
                await asyncio.sleep(PAUSE)
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"{url}/__loopback/state") as answer,
        ):
            state = await answer.json()
        standing = {
            o["client_order_id"]: datetime.fromisoformat(o["created_at"]) for o in state["orders"]
        }
        samples = {
            mode: [(standing[cid] - at).total_seconds() for cid, at in fills[mode].items()]
            for mode in modes
        }
        for mode, exchange in exchanges.items():
            if mode == "ours":
                print(
                    f"  {venue_name}: answers carrying the venue's count heard by our limiter: "
                    f"{exchange.limiter.counted}; rate-limit refusals: "
                    f"{exchange.limiter.refusals}"
                )
        return samples, trip, {mode: e.limiter.held for mode, e in exchanges.items()}
    finally:
        for exchange in exchanges.values():
            await exchange.close()
        process.terminate()
        await process.wait()


def report(label: str, samples: list[float], round_trip: float) -> None:
    median = statistics.median(samples)
    p95 = percentile(samples, 0.95)
    ms = 1000
    print(
        f"{label:<34} n={len(samples):>4}  median {median * ms:7.2f} ms  p95 {p95 * ms:7.2f} ms"
        f"  max {max(samples) * ms:7.2f} ms  (round trip {round_trip * ms:.2f} ms)"
    )


def verdict(samples: list[float], round_trip: float) -> str:
    median_ok = statistics.median(samples) <= round_trip + 0.010
    p95_ok = percentile(samples, 0.95) <= round_trip + 0.025
    return "bar met" if median_ok and p95_ok else "BAR MISSED"


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--venue", choices=["binance", "bybit"], action="append")
    args = parser.parse_args()
    for venue_name in args.venue or ["binance", "bybit"]:
        samples, trip, held = await measure(venue_name, args.repeats, ["ours", "none"])
        report(f"{venue_name}: our limiter (real budgets)", samples["ours"], trip)
        print(
            f"  bar: median <= {(trip + 0.010) * 1000:.2f} ms, "
            f"p95 <= {(trip + 0.025) * 1000:.2f} ms: {verdict(samples['ours'], trip)}; "
            f"requests our limiter held back: {held['ours']}"
        )
        report(f"{venue_name}: no limiter at all", samples["none"], trip)
        samples, trip, _ = await measure(venue_name, max(3, args.repeats // 4), ["ccxt"])
        report(f"{venue_name}: ccxt's limiter (defaults)", samples["ccxt"], trip)


if __name__ == "__main__":
    asyncio.run(main())
