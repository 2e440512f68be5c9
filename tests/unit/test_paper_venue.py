"""The simulated venue's own rules: the books, gap fills, partial fills, caps, outside actions."""

import asyncio
import itertools
from datetime import timedelta
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from tradecore.adapters.paper import ListPath, RandomWalk
from tradecore.domain.model import OrderSide, Side
from tradecore.domain.orders import OrderStatus
from tradecore.ports.exchange import Accepted, Rejected, RejectReason
from tradecore.testing import FakeVenue, Fault, Op

BTC = "BTCUSDT"
QTY = Decimal("0.01")


def rejected(outcome: object, reason: RejectReason) -> Rejected:
    assert isinstance(outcome, Rejected), outcome
    assert outcome.reason is reason, outcome
    return outcome


def accepted(outcome: object) -> Accepted:
    assert isinstance(outcome, Accepted), outcome
    return outcome


async def test_cancel_then_create_replacement_shows_an_unprotected_gap_in_the_books() -> None:
    venue = FakeVenue.binance()
    await venue.open_position(BTC, Side.LONG, QTY)
    old = await venue.place_stop(BTC, OrderSide.SELL, QTY, "48000")
    await venue.advance(10)
    accepted(await venue.exchange.cancel_order(BTC, old.order_id))
    await venue.advance(2)
    await venue.place_stop(BTC, OrderSide.SELL, QTY, "49000")
    (record,) = venue.books.positions_for(BTC)
    gaps = [gap.seconds(venue.now()) for gap in record.unprotected()]
    assert gaps == [0, 2]
    assert record.stops_at(venue.now() - timedelta(seconds=1)) == 0


async def test_create_then_cancel_replacement_shows_no_gap_and_two_stops_briefly() -> None:
    venue = FakeVenue.binance()
    await venue.open_position(BTC, Side.LONG, QTY)
    old = await venue.place_stop(BTC, OrderSide.SELL, QTY, "48000")
    await venue.advance(10)
    await venue.place_stop(BTC, OrderSide.SELL, QTY, "49000")
    await venue.advance(2)
    accepted(await venue.exchange.cancel_order(BTC, old.order_id))
    (record,) = venue.books.positions_for(BTC)
    assert [gap.seconds(venue.now()) for gap in record.unprotected()] == [0]
    assert [count for _, count in record.stop_counts] == [0, 1, 2, 1]


async def test_with_latency_the_opening_gap_is_one_round_trip_and_no_longer() -> None:
    venue = FakeVenue.binance(latency=0.4)

    async def open_and_protect() -> None:
        await venue.open_position(BTC, Side.LONG, QTY)
        await venue.place_stop(BTC, OrderSide.SELL, QTY, "48000")

    task = asyncio.create_task(open_and_protect())
    await venue.advance(5)
    assert task.done()
    # filled half a trip in, the stop landed half a trip after the answer came back
    assert venue.books.longest_unprotected(venue.now(), BTC) == 0.4


async def test_a_position_left_without_a_stop_shows_an_open_interval_until_protected() -> None:
    venue = FakeVenue.bybit()
    await venue.open_position(BTC, Side.SHORT, QTY)
    await venue.advance(30)
    (gap,) = venue.unprotected_intervals(BTC)
    assert gap.end is None and gap.seconds(venue.now()) == 30
    accepted(await venue.exchange.set_position_stop(BTC, Decimal("51000")))
    (gap,) = venue.unprotected_intervals(BTC)
    assert gap.end == venue.now()


async def test_stop_fills_at_the_ticks_price_when_the_mark_gaps_through_it() -> None:
    venue = FakeVenue.binance()
    await venue.open_position(BTC, Side.LONG, QTY)
    placed = await venue.place_stop(BTC, OrderSide.SELL, QTY, "49000")
    await venue.set_mark(BTC, "45000")
    fired = venue.engine.order(placed.order_id)
    assert fired is not None and fired.status is OrderStatus.FILLED
    assert fired.average_price == Decimal("45000")


async def test_short_position_stop_fires_when_the_mark_rises_through_it() -> None:
    venue = FakeVenue.bybit()
    await venue.open_position(BTC, Side.SHORT, QTY)
    await venue.place_stop(BTC, OrderSide.BUY, QTY, "51000")
    await venue.set_mark(BTC, "50900")
    assert venue.position(BTC) is not None
    await venue.set_mark(BTC, "51000")
    assert venue.position(BTC) is None


async def test_partial_fill_fault_fills_only_part_and_expires_the_rest() -> None:
    venue = FakeVenue.binance()
    venue.inject(Fault.partial_fill("0.5"))
    outcome = accepted(
        await venue.exchange.create_market_order(
            BTC, OrderSide.BUY, Decimal("0.010"), client_order_id="tc-p-e0"
        )
    )
    assert (outcome.order.filled, outcome.order.status) == (Decimal("0.005"), OrderStatus.EXPIRED)
    position = venue.position(BTC)
    assert position is not None and position.quantity == Decimal("0.005")


async def test_binance_caps_open_conditional_orders_at_200_across_the_account() -> None:
    venue = FakeVenue.binance(balance="1000000")
    for symbol in ("BTCUSDT", "ETHUSDT"):
        side = Side.LONG
        await venue.open_position(symbol, side, "1")
    for n in range(200):
        symbol = "BTCUSDT" if n % 2 else "ETHUSDT"
        trigger = (Decimal(40000) if symbol == "BTCUSDT" else Decimal(2000)) + n
        await venue.place_stop(symbol, OrderSide.SELL, "0.001", trigger)
    outcome = await venue.exchange.create_stop_order(
        BTC, OrderSide.SELL, Decimal("0.001"), Decimal("39000"), client_order_id="tc-cap-s0"
    )
    assert rejected(outcome, RejectReason.TOO_MANY_CONDITIONAL_ORDERS).code == "-4045"
    first = venue.stops(BTC)[0]
    accepted(await venue.exchange.cancel_order(BTC, first.order_id))
    accepted(
        await venue.exchange.create_stop_order(
            BTC, OrderSide.SELL, Decimal("0.001"), Decimal("39000"), client_order_id="tc-cap-s0"
        )
    )


async def test_bybit_caps_conditional_orders_per_symbol() -> None:
    venue = FakeVenue.bybit()
    await venue.open_position(BTC, Side.LONG, "0.1")
    for n in range(10):
        await venue.place_stop(BTC, OrderSide.SELL, "0.001", Decimal(40000 + n))
    outcome = await venue.exchange.create_stop_order(
        BTC, OrderSide.SELL, Decimal("0.001"), Decimal("39000"), client_order_id="tc-cap-s0"
    )
    assert rejected(outcome, RejectReason.TOO_MANY_CONDITIONAL_ORDERS).code == "110009"
    await venue.open_position("ETHUSDT", Side.LONG, "0.1")
    await venue.place_stop("ETHUSDT", OrderSide.SELL, "0.01", "2900")


async def test_binance_rejects_a_second_close_position_stop_in_the_same_direction() -> None:
    venue = FakeVenue.binance()
    await venue.open_position(BTC, Side.LONG, QTY)
    engine = venue.engine
    accepted(engine.place_stop(BTC, OrderSide.SELL, None, Decimal(48000), close_position=True))
    doubled = engine.place_stop(BTC, OrderSide.SELL, None, Decimal(47000), close_position=True)
    assert rejected(doubled, RejectReason.STOP_ALREADY_EXISTS).code == "-4130"
    await venue.set_mark(BTC, "47500")
    assert venue.position(BTC) is None


async def test_bybit_has_no_close_position_stop_orders() -> None:
    venue = FakeVenue.bybit()
    await venue.open_position(BTC, Side.LONG, QTY)
    outcome = venue.engine.place_stop(
        BTC, OrderSide.SELL, None, Decimal(48000), close_position=True
    )
    rejected(outcome, RejectReason.NOT_SUPPORTED)


async def test_bybit_refuses_to_set_the_same_position_stop_twice_as_not_modified() -> None:
    venue = FakeVenue.bybit()
    await venue.open_position(BTC, Side.LONG, QTY)
    accepted(await venue.exchange.set_position_stop(BTC, Decimal("48000")))
    again = await venue.exchange.set_position_stop(BTC, Decimal("48000"))
    assert rejected(again, RejectReason.NOT_MODIFIED).code == "34040"


async def test_position_stop_is_removed_with_none_and_dies_with_the_position() -> None:
    venue = FakeVenue.bybit()
    await venue.open_position(BTC, Side.LONG, QTY)
    accepted(await venue.exchange.set_position_stop(BTC, Decimal("48000")))
    accepted(await venue.exchange.set_position_stop(BTC, None))
    assert venue.stops(BTC) == []
    accepted(await venue.exchange.set_position_stop(BTC, Decimal("48000")))
    accepted(venue.manual_close(BTC))
    assert venue.stops(BTC) == []
    rejected(
        await venue.exchange.set_position_stop(BTC, Decimal("48000")), RejectReason.NO_POSITION
    )


async def test_mark_below_the_liquidation_price_liquidates_and_cancels_the_orders() -> None:
    venue = FakeVenue.binance()
    await venue.open_position(BTC, Side.LONG, QTY)
    position = venue.position(BTC)
    assert position is not None and position.liquidation_price is not None
    await venue.exchange.create_limit_order(
        BTC, OrderSide.SELL, QTY, Decimal("55000"), client_order_id="tc-l-x0"
    )
    await venue.set_mark(BTC, position.liquidation_price - 1)
    assert venue.position(BTC) is None
    assert venue.books.positions_for(BTC)[0].close_reason == "liquidation"
    assert await venue.exchange.fetch_open_orders(BTC) == []


async def test_manual_close_ends_the_position_and_cancels_its_reduce_only_stops() -> None:
    venue = FakeVenue.binance()
    await venue.open_position(BTC, Side.LONG, QTY)
    await venue.place_stop(BTC, OrderSide.SELL, QTY, "48000")
    accepted(venue.manual_close(BTC))
    assert venue.position(BTC) is None
    assert venue.stops(BTC) == []
    assert venue.books.positions_for(BTC)[0].close_reason == "manual"


async def test_reduce_only_stops_can_be_left_behind_when_the_venue_does_not_clean_up() -> None:
    venue = FakeVenue.binance(cancel_reduce_only_when_flat=False)
    await venue.open_position(BTC, Side.LONG, QTY)
    await venue.place_stop(BTC, OrderSide.SELL, QTY, "48000")
    accepted(venue.manual_close(BTC))
    (zombie,) = venue.stops(BTC)
    await venue.set_mark(BTC, "47000")
    fired = venue.engine.order(zombie.order_id)
    assert fired is not None and fired.status is OrderStatus.EXPIRED
    assert venue.position(BTC) is None


async def test_manual_order_shows_up_as_a_foreign_order_and_position() -> None:
    venue = FakeVenue.bybit()
    accepted(venue.manual_order(BTC, OrderSide.SELL, "0.002"))
    accepted(venue.manual_stop(BTC, OrderSide.BUY, "0.002", "52000"))
    (position,) = await venue.exchange.fetch_positions()
    assert position.side is Side.SHORT
    (stop,) = await venue.exchange.fetch_open_orders(BTC)
    assert stop.client_order_id is None


async def test_closed_order_is_found_by_client_id_only_within_the_retention() -> None:
    venue = FakeVenue.binance()
    await venue.open_position(BTC, Side.LONG, QTY)
    placed = await venue.place_stop(BTC, OrderSide.SELL, QTY, "48000", client_order_id="tc-r-s0")
    await venue.exchange.cancel_order(BTC, placed.order_id)
    await venue.advance(timedelta(days=2).total_seconds())
    found = await venue.exchange.fetch_order_by_client_id(BTC, "tc-r-s0")
    assert found is not None and found.status is OrderStatus.CANCELED
    await venue.advance(timedelta(days=2).total_seconds())
    assert await venue.exchange.fetch_order_by_client_id(BTC, "tc-r-s0") is None
    filled = await venue.exchange.fetch_order_by_client_id(BTC, "fake-entry-1")
    assert filled is not None and filled.status is OrderStatus.FILLED


async def test_unavailable_symbol_refuses_opening_but_allows_reducing() -> None:
    venue = FakeVenue.binance()
    await venue.open_position(BTC, Side.LONG, "0.02")
    venue.engine.set_symbol_available(BTC, False)
    outcome = await venue.exchange.create_market_order(
        BTC, OrderSide.BUY, QTY, client_order_id="tc-u-e0"
    )
    assert rejected(outcome, RejectReason.SYMBOL_UNAVAILABLE).code == "-4140"
    accepted(
        await venue.exchange.create_market_order(
            BTC, OrderSide.SELL, QTY, client_order_id="tc-u-x0", reduce_only=True
        )
    )


async def test_region_restricted_symbol_is_refused_with_bybit_170209() -> None:
    venue = FakeVenue.bybit()
    venue.engine.restrict_region(BTC)
    outcome = await venue.exchange.create_market_order(
        BTC, OrderSide.BUY, QTY, client_order_id="tc-r-e0"
    )
    assert rejected(outcome, RejectReason.REGION_RESTRICTED).code == "170209"


async def test_scripted_rejection_fires_once_on_its_operation_only() -> None:
    venue = FakeVenue.binance()
    venue.inject(Fault.reject(RejectReason.INSUFFICIENT_BALANCE, Op.MARKET_ORDER, symbol=BTC))
    first = await venue.exchange.create_market_order(
        BTC, OrderSide.BUY, QTY, client_order_id="tc-f-e0"
    )
    assert rejected(first, RejectReason.INSUFFICIENT_BALANCE).code == "-2019"
    accepted(
        await venue.exchange.create_market_order(BTC, OrderSide.BUY, QTY, client_order_id="tc-f-e0")
    )
    assert venue.engine.faults.pending == ()


async def test_latency_spends_a_round_trip_of_virtual_time_per_command() -> None:
    venue = FakeVenue.binance(latency=0.2)
    task = asyncio.create_task(
        venue.exchange.create_market_order(BTC, OrderSide.BUY, QTY, client_order_id="tc-l-e0")
    )
    await venue.advance(0.1)
    assert not task.done() and venue.position(BTC) is not None  # arrived, answer on its way
    await venue.advance(0.1)
    assert isinstance(task.result(), Accepted)


async def test_list_path_ticks_arrive_as_the_clock_advances_and_fire_stops() -> None:
    venue = FakeVenue.binance()
    await venue.open_position(BTC, Side.LONG, QTY)
    await venue.place_stop(BTC, OrderSide.SELL, QTY, "49000")
    stream = venue.exchange.watch_mark_prices([BTC])
    venue.play({BTC: ListPath([(10, "49500"), (20, "48800"), (30, "50000")])})
    await venue.advance(15)
    assert venue.mark(BTC) == Decimal("49500") and venue.position(BTC) is not None
    await venue.advance(10)
    assert venue.position(BTC) is None
    marks = [(await anext(stream)).mark for _ in range(3)]
    assert marks == [Decimal("50000"), Decimal("49500"), Decimal("48800")]  # opening mark first


def test_random_walk_is_reproducible_from_its_seed_and_stays_on_the_tick_grid() -> None:
    start = FakeVenue.binance().now()

    def walk(seed: int) -> list[Decimal]:
        path = RandomWalk(start="50000", tick="0.1", seed=seed, jump_probability=0.1, steps=200)
        return [mark for _, mark in path.points(start)]

    assert walk(7) == walk(7)
    assert walk(7) != walk(8)
    assert all(mark % Decimal("0.1") == 0 and mark > 0 for mark in walk(7))


def test_random_walk_with_jumps_gaps_further_than_without() -> None:
    start = FakeVenue.binance().now()

    def largest_move(jumps: float) -> Decimal:
        path = RandomWalk(start="50000", tick="0.1", seed=3, jump_probability=jumps, steps=300)
        marks = [mark for _, mark in path.points(start)]
        return max(abs(b - a) / a for a, b in itertools.pairwise(marks))

    assert largest_move(0.0) < Decimal("0.01") < largest_move(0.2)


OPERATIONS = st.lists(
    st.tuples(
        st.sampled_from(["stop", "cancel", "amend", "mark", "wait"]),
        st.integers(min_value=0, max_value=40),
    ),
    max_size=30,
)


@settings(max_examples=60, deadline=None)
@given(OPERATIONS)
async def test_books_always_agree_with_the_stops_on_the_venue(operations: list) -> None:
    venue = FakeVenue.bybit(balance="100000")
    await venue.open_position(BTC, Side.LONG, "0.1")
    for kind, n in operations:
        stops = venue.stops(BTC)
        if kind == "stop":
            venue.engine.place_stop(BTC, OrderSide.SELL, Decimal("0.01"), Decimal(45000 + 100 * n))
        elif kind == "cancel" and stops:
            venue.engine.cancel(BTC, stops[n % len(stops)].order_id)
        elif kind == "amend" and stops:
            venue.engine.amend(BTC, stops[n % len(stops)].order_id, trigger_price=45000 + 50 * n)
        elif kind == "mark":
            await venue.set_mark(BTC, Decimal(48000 + 100 * n))
        elif kind == "wait":
            await venue.advance(n)
    (record,) = venue.books.positions_for(BTC)
    on_venue = len(venue.stops(BTC)) if venue.position(BTC) is not None else None
    if on_venue is not None:
        assert record.stop_counts[-1][1] == on_venue
        assert (record.unprotected()[-1].end is None) == (on_venue == 0)
    gaps = record.unprotected()
    assert all(a.end is not None and a.end <= b.start for a, b in itertools.pairwise(gaps))


async def test_bybit_one_way_mode_refuses_a_hedge_mode_position_index() -> None:
    venue = FakeVenue.bybit()
    outcome = venue.engine.place_market(BTC, OrderSide.BUY, QTY, position_idx=1)
    assert rejected(outcome, RejectReason.OTHER).code == "10001"
    accepted(venue.engine.place_market(BTC, OrderSide.BUY, QTY, position_idx=0))


async def test_client_ids_outside_the_venues_alphabet_are_refused() -> None:
    venue = FakeVenue.binance()
    for bad in ("has space", "x" * 37, "semi;colon", ""):
        outcome = await venue.exchange.create_market_order(
            BTC, OrderSide.BUY, QTY, client_order_id=bad
        )
        assert rejected(outcome, RejectReason.OTHER).code == "-4015"
    assert venue.position(BTC) is None


async def test_resting_buy_limit_fills_at_its_own_price_when_the_mark_gaps_below() -> None:
    venue = FakeVenue.binance()
    outcome = accepted(
        await venue.exchange.create_limit_order(
            BTC, OrderSide.BUY, QTY, Decimal("49000"), client_order_id="tc-l-e0", reduce_only=False
        )
    )
    await venue.set_mark(BTC, "47000")
    filled = venue.engine.order(outcome.order.order_id)
    assert filled is not None and filled.average_price == Decimal("49000")
    position = venue.position(BTC)
    assert position is not None and position.entry_price == Decimal("49000")


async def test_a_venue_configured_for_partial_fills_fills_every_market_order_partly() -> None:
    venue = FakeVenue.bybit(partial_fill_ratio=Decimal("0.3"))
    outcome = accepted(
        await venue.exchange.create_market_order(
            BTC, OrderSide.BUY, Decimal("0.1"), client_order_id="tc-p-e0"
        )
    )
    assert outcome.order.filled == Decimal("0.03")
    assert outcome.order.status is OrderStatus.EXPIRED


async def test_a_fault_can_let_the_first_matching_requests_through() -> None:
    venue = FakeVenue.binance()
    venue.inject(Fault.reject(RejectReason.OTHER, Op.MARKET_ORDER, skip=1))
    exchange = venue.exchange

    first = await exchange.create_market_order(
        "BTCUSDT", OrderSide.BUY, Decimal("0.01"), client_order_id="skip-1"
    )
    second = await exchange.create_market_order(
        "BTCUSDT", OrderSide.BUY, Decimal("0.01"), client_order_id="skip-2"
    )

    assert isinstance(first, Accepted)
    assert isinstance(second, Rejected) and second.reason is RejectReason.OTHER


# ------------------------------------------------------------------ kinds a person adds


async def test_a_take_profit_rests_as_one_fires_the_positions_way_and_is_no_protection() -> None:
    venue = FakeVenue.bybit()
    await venue.open_position(BTC, Side.LONG, QTY)
    tp = accepted(venue.add_take_profit(BTC, "55000")).order
    assert not tp.is_stop and tp.is_conditional_exit
    assert venue.stops(BTC) == []  # not counted as a stop
    (record,) = venue.books.positions_for(BTC)
    assert record.stops_at(venue.now()) == 0  # the books count the position bare
    rejected(venue.add_take_profit(BTC, "49000"), RejectReason.WOULD_TRIGGER_IMMEDIATELY)

    await venue.set_mark(BTC, "54999")
    assert venue.position(BTC) is not None
    await venue.set_mark(BTC, "55000")
    assert venue.position(BTC) is None
    assert venue.engine.order(tp.order_id).status is OrderStatus.FILLED  # type: ignore[union-attr]


async def test_a_trailing_stop_follows_the_best_mark_and_fires_when_the_mark_comes_back() -> None:
    venue = FakeVenue.binance()
    await venue.open_position(BTC, Side.LONG, QTY)
    trail = accepted(
        venue.add_trailing_stop(BTC, rate=Decimal("0.01"), activation=Decimal("51000"))
    ).order
    assert trail.trigger_price is None and not trail.is_stop  # not active yet
    await venue.set_mark(BTC, "49000")  # below its activation: nothing happens
    assert venue.position(BTC) is not None
    await venue.set_mark(BTC, "52000")
    await venue.set_mark(BTC, "51600")
    moved = venue.engine.order(trail.order_id)
    assert moved is not None and moved.trigger_price == Decimal("51480")  # 52000 less 1 %
    await venue.set_mark(BTC, "51480")
    assert venue.position(BTC) is None
