"""Unprotected time per 1,000 trailing stop moves: the stop keeper vs cancel-then-create.

One long position on the simulated venue (50 ms virtual round trip). 1,000 times its stop is
moved up by one tick: by the stop keeper (Binance: create the new stop, confirm, cancel the
old; Bybit: the position-attached stop moved in place), and by the earlier bot's way (cancel
the old stop, then create the new one). The venue's books measure how long the position had
no stop during the moves.

    .venv/bin/python benchmarks/trailing_gap.py
"""

import asyncio
from decimal import Decimal

from tradecore.adapters.clock import RandomIds
from tradecore.adapters.sqlite.database import SqliteDatabase
from tradecore.adapters.virtual_time import CountedStore, ThreadWork, run_driven
from tradecore.app.kernel import KernelParts, build_services
from tradecore.app.open_position import OpenRequest
from tradecore.domain.model import OrderSide, Side
from tradecore.domain.positions import StopOwner
from tradecore.ports.exchange import Accepted
from tradecore.testing import EventLog, FakeVenue, FreeLock

MOVES = 1_000
ROUND_TRIP = 0.05
SYMBOL = "BTCUSDT"


def gap_since(venue: FakeVenue, mark: float) -> float:
    now = venue.clock.now()
    return sum(
        gap.seconds(now)
        for gap in venue.unprotected_intervals(SYMBOL)
        if gap.start.timestamp() >= mark
    )


async def keeper_moves(venue: FakeVenue) -> float:
    database = await SqliteDatabase.connect(":memory:")
    work = ThreadWork()
    parts = KernelParts(
        exchange=venue.exchange,
        store=CountedStore(database.store, work),
        events=EventLog(),
        clock=venue.clock,
        ids=RandomIds(),
        lock=FreeLock(),
        account="bench",
    )
    services = build_services(parts, venue.engine.markets)
    request = OpenRequest(
        symbol=SYMBOL, side=Side.LONG, quantity=Decimal("0.01"), rules=venue.rules(SYMBOL)
    )
    result = await run_driven(venue.clock, work, services.opener.open(request))
    assert result.opened and result.position is not None
    began = venue.clock.now().timestamp()
    stop = result.position.stop_price
    assert stop is not None
    for _ in range(MOVES):
        stop += Decimal("0.1")
        moved = await run_driven(
            venue.clock,
            work,
            services.keeper.apply(result.position, stop, owner=StopOwner.TRAILING, reason="bench"),
        )
        assert moved.ok, moved.detail
    await database.close()
    return gap_since(venue, began)


async def cancel_then_create(venue: FakeVenue) -> float:
    exchange = venue.exchange
    clock = venue.clock
    work = ThreadWork()
    await run_driven(
        clock,
        work,
        exchange.create_market_order(
            SYMBOL, OrderSide.BUY, Decimal("0.01"), client_order_id="bench-e"
        ),
    )
    placed = await run_driven(
        clock,
        work,
        exchange.create_stop_order(
            SYMBOL, OrderSide.SELL, Decimal("0.01"), Decimal("48500"), client_order_id="bench-s0"
        ),
    )
    assert isinstance(placed, Accepted)
    began = clock.now().timestamp()
    order_id, stop = placed.order.order_id, Decimal("48500")
    for n in range(1, MOVES + 1):
        stop += Decimal("0.1")
        await run_driven(clock, work, exchange.cancel_order(SYMBOL, order_id))
        placed = await run_driven(
            clock,
            work,
            exchange.create_stop_order(
                SYMBOL, OrderSide.SELL, Decimal("0.01"), stop, client_order_id=f"bench-s{n}"
            ),
        )
        assert isinstance(placed, Accepted)
        order_id = placed.order.order_id
    return gap_since(venue, began)


async def main() -> None:
    print(f"{MOVES} stop moves, {ROUND_TRIP * 1000:.0f} ms virtual round trip")
    print(f"{'venue':<9} {'the stop keeper':>18} {'cancel-then-create':>20}")
    for name, maker in (("binance", FakeVenue.binance), ("bybit", FakeVenue.bybit)):
        ours = await keeper_moves(maker(latency=ROUND_TRIP))
        naive = await cancel_then_create(maker(latency=ROUND_TRIP))
        print(f"{name:<9} {ours:>16.3f} s {naive:>18.3f} s")


if __name__ == "__main__":
    asyncio.run(main())
