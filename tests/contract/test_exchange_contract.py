"""The exchange contract: what every adapter of the Exchange port must do, venue by venue.

Each test drives an adapter through a `VenueHarness` (the port under test plus a control
surface on the venue behind it: set the mark, advance time, inject a fault, read the books).
Adapters skip only what their declared capabilities say they cannot do. The ccxt adapters
join through loopback servers wrapping the same engine by adding a harness factory below.
"""

import itertools
from collections.abc import AsyncIterator, Callable, Coroutine
from datetime import timedelta
from decimal import Decimal
from typing import Any, TypeVar, cast

import pytest
from toy_venue import CODES as TOY_CODES
from toy_venue import TOY, TOY_DIALECT

from tradecore.adapters.clock import VirtualClock
from tradecore.adapters.paper import PROFILES
from tradecore.adapters.paper.engine import DEFAULT_FUNDING_RATE
from tradecore.adapters.virtual_time import ThreadWork, run_driven
from tradecore.domain.model import OrderSide, Side, Venue
from tradecore.domain.orders import OrderStatus, OrderType
from tradecore.domain.pnl import position_fills, realized_pnl
from tradecore.ports.exchange import (
    Accepted,
    Exchange,
    ExchangeUnavailable,
    Rejected,
    RejectReason,
    Unknown,
)
from tradecore.testing import FakeVenue, Fault, Op, VenueHarness
from tradecore.testing.loopback import LoopbackVenue

T = TypeVar("T")

SYMBOL = "BTCUSDT"
MARK = Decimal("50000")
QTY = Decimal("0.01")

HARNESSES: dict[str, Callable[[], VenueHarness]] = {
    "paper-binance": lambda: FakeVenue.binance(marks={SYMBOL: MARK}),
    "paper-bybit": lambda: FakeVenue.bybit(marks={SYMBOL: MARK}),
    # a third venue added as docs/extending.md says: one module, tests/contract/toy_venue.py
    "paper-toy": lambda: FakeVenue(TOY_DIALECT, marks={SYMBOL: MARK}),
    "ccxt-binance": lambda: LoopbackVenue.binance(marks={SYMBOL: MARK}),
    "ccxt-bybit": lambda: LoopbackVenue.bybit(marks={SYMBOL: MARK}),
    # the same toy through the real ccxt adapter and a loopback answering from its corpus
    "ccxt-toy": lambda: LoopbackVenue(TOY_DIALECT, marks={SYMBOL: MARK}),
}

# The venues' own codes (Binance USDⓈ-M, Bybit v5), as their docs and ccxt's tables list them.
VENUE_CODES = {
    Venue.BINANCE: {
        RejectReason.WOULD_TRIGGER_IMMEDIATELY: {"-2021"},
        RejectReason.ORDER_NOT_FOUND: {"-2011", "-2013"},
        RejectReason.DUPLICATE_CLIENT_ID: {"-4116"},
        RejectReason.REDUCE_ONLY_WOULD_INCREASE: {"-2022"},
        RejectReason.BELOW_MIN_NOTIONAL: {"-4164"},
        RejectReason.INSUFFICIENT_BALANCE: {"-2019"},
        RejectReason.INVALID_PRICE: {"-4014", "-1111"},
        RejectReason.INVALID_QUANTITY: {"-1111", "-4003", "-4004", "-4005", "-4023", "-1100"},
        RejectReason.UNKNOWN_SYMBOL: {"-1121"},
    },
    Venue.BYBIT: {
        RejectReason.WOULD_TRIGGER_IMMEDIATELY: {"110092", "110093"},
        RejectReason.ORDER_NOT_FOUND: {"110001"},
        RejectReason.DUPLICATE_CLIENT_ID: {"110072"},
        RejectReason.REDUCE_ONLY_WOULD_INCREASE: {"110017"},
        RejectReason.BELOW_MIN_NOTIONAL: {"110094"},
        RejectReason.INSUFFICIENT_BALANCE: {"110007"},
        RejectReason.INVALID_PRICE: {"10001"},
        RejectReason.INVALID_QUANTITY: {"10001"},
        RejectReason.UNKNOWN_SYMBOL: {"10001"},
    },
    TOY: TOY_CODES,
}


@pytest.fixture(params=sorted(HARNESSES))
async def venue(request: pytest.FixtureRequest) -> AsyncIterator[VenueHarness]:
    harness = HARNESSES[request.param]()
    yield harness
    await harness.close()


def rejected_by_venue(outcome: object, reason: RejectReason, venue: Venue) -> Rejected:
    assert isinstance(outcome, Rejected), outcome
    assert outcome.reason is reason, outcome
    assert outcome.code in VENUE_CODES[venue][reason], outcome
    assert outcome.message
    return outcome


def accepted(outcome: object) -> Accepted:
    assert isinstance(outcome, Accepted), outcome
    return outcome


async def open_long(exchange: Exchange, qty: Decimal = QTY, cid: str = "tc-op1-e0") -> None:
    accepted(await exchange.create_market_order(SYMBOL, OrderSide.BUY, qty, client_order_id=cid))


async def stop(exchange: Exchange, trigger: str, cid: str, qty: Decimal = QTY) -> object:
    return await exchange.create_stop_order(
        SYMBOL, OrderSide.SELL, qty, Decimal(trigger), client_order_id=cid
    )


def test_every_harness_offers_the_exchange_port_and_the_venue_controls() -> None:
    for make in HARNESSES.values():
        harness = make()
        assert isinstance(harness, VenueHarness)
        assert isinstance(harness.exchange, Exchange)


async def test_market_order_fills_at_the_mark_and_opens_the_position(venue: VenueHarness) -> None:
    ex = venue.exchange
    outcome = accepted(
        await ex.create_market_order(SYMBOL, OrderSide.BUY, QTY, client_order_id="tc-a-e0")
    )
    assert outcome.order.status is OrderStatus.FILLED
    assert outcome.order.filled == QTY
    assert outcome.order.average_price == MARK
    (position,) = await ex.fetch_positions()
    assert (position.symbol, position.side, position.quantity) == (SYMBOL, Side.LONG, QTY)
    assert position.entry_price == MARK


async def test_stop_is_listed_and_closes_the_position_when_the_mark_crosses_it(
    venue: VenueHarness,
) -> None:
    ex = venue.exchange
    await open_long(ex)
    placed = accepted(await stop(ex, "49000", "tc-op1-s0")).order
    listed = [o for o in await ex.fetch_open_orders(SYMBOL) if o.is_stop]
    assert [(o.order_id, o.trigger_price, o.reduce_only) for o in listed] == [
        (placed.order_id, Decimal("49000"), True)
    ]
    await venue.set_mark(SYMBOL, "49500")
    assert len(await ex.fetch_positions()) == 1
    await venue.set_mark(SYMBOL, "48990")
    assert await ex.fetch_positions() == []
    fired = await ex.fetch_order_by_client_id(SYMBOL, "tc-op1-s0")
    assert fired is not None and fired.status is OrderStatus.FILLED
    assert await ex.fetch_open_orders(SYMBOL) == []


async def test_a_stop_that_would_trigger_now_is_rejected_and_not_placed(
    venue: VenueHarness,
) -> None:
    ex = venue.exchange
    await open_long(ex)
    outcome = await stop(ex, "50000", "tc-op1-s0")
    rejected_by_venue(outcome, RejectReason.WOULD_TRIGGER_IMMEDIATELY, ex.venue)
    assert not outcome.retryable  # type: ignore[union-attr]
    assert await ex.fetch_open_orders(SYMBOL) == []


async def test_reduce_only_order_cannot_increase_the_position(venue: VenueHarness) -> None:
    ex = venue.exchange
    await open_long(ex)
    outcome = await ex.create_market_order(
        SYMBOL, OrderSide.BUY, QTY, client_order_id="tc-x-x0", reduce_only=True
    )
    rejected_by_venue(outcome, RejectReason.REDUCE_ONLY_WOULD_INCREASE, ex.venue)
    (position,) = await ex.fetch_positions()
    assert position.quantity == QTY


async def test_reduce_only_order_larger_than_the_position_is_cut_to_it(
    venue: VenueHarness,
) -> None:
    ex = venue.exchange
    await open_long(ex)
    outcome = accepted(
        await ex.create_market_order(
            SYMBOL, OrderSide.SELL, QTY * 3, client_order_id="tc-x-x0", reduce_only=True
        )
    )
    assert outcome.order.filled == QTY
    assert await ex.fetch_positions() == []


async def test_lost_response_is_unknown_and_the_client_id_finds_the_single_order(
    venue: VenueHarness,
) -> None:
    ex = venue.exchange
    await open_long(ex)
    venue.inject(Fault.lost_response(Op.STOP_ORDER))
    outcome = await stop(ex, "49000", "tc-op1-s0")
    assert isinstance(outcome, Unknown)
    found = await ex.fetch_order_by_client_id(SYMBOL, "tc-op1-s0")
    assert found is not None and found.is_open and found.trigger_price == Decimal("49000")
    placed = [o for o in venue.books.orders_for(SYMBOL) if o.client_order_id == "tc-op1-s0"]
    assert len(placed) == 1


async def test_an_entry_that_carried_a_stop_reads_back_by_client_id_with_its_level(
    venue: VenueHarness,
) -> None:
    """The level a restarted open must not loosen: the venue lists it with the entry."""
    ex = venue.exchange
    if not ex.capabilities.entry_stop:
        pytest.skip(f"{ex.venue} cannot carry a stop on an entry")
    accepted(
        await ex.create_market_order(
            SYMBOL, OrderSide.BUY, QTY, client_order_id="tc-op1-e0", stop_loss=Decimal("48500")
        )
    )
    found = await ex.fetch_order_by_client_id(SYMBOL, "tc-op1-e0")
    assert found is not None and found.filled == QTY
    assert found.stop_loss == Decimal("48500")
    [held] = await ex.fetch_positions()
    assert held.stop_price == Decimal("48500")


async def test_an_entry_without_a_carried_stop_reads_back_with_none(venue: VenueHarness) -> None:
    ex = venue.exchange
    await open_long(ex)
    found = await ex.fetch_order_by_client_id(SYMBOL, "tc-op1-e0")
    assert found is not None and found.filled == QTY and found.stop_loss is None
    stop_order = accepted(await stop(ex, "49000", "tc-op1-s0")).order
    listed = await ex.fetch_order(SYMBOL, stop_order.order_id)
    assert listed is not None and listed.stop_loss is None  # a stop's trigger is not one


async def test_timed_out_request_that_never_arrived_is_unknown_and_lookup_finds_nothing(
    venue: VenueHarness,
) -> None:
    ex = venue.exchange
    await open_long(ex)
    venue.inject(Fault.timeout(Op.STOP_ORDER))
    assert isinstance(await stop(ex, "49000", "tc-op1-s0"), Unknown)
    assert await ex.fetch_order_by_client_id(SYMBOL, "tc-op1-s0") is None
    accepted(await stop(ex, "49000", "tc-op1-s0"))
    assert len([o for o in await ex.fetch_open_orders(SYMBOL) if o.is_stop]) == 1


async def in_virtual_time(venue: VenueHarness, coroutine: Coroutine[Any, Any, T]) -> T:
    """Run `coroutine`, moving the harness's virtual clock while it waits on it (a
    read-back's pauses between look-ups are on the clock)."""
    clock: VirtualClock = cast(Any, venue).clock
    return await run_driven(clock, ThreadWork(), coroutine)


async def test_an_order_the_venue_lists_late_is_read_back_until_its_fill_is_proven(
    venue: VenueHarness,
) -> None:
    """Bybit's create only acknowledges and a look-up may miss the order for a while: the
    adapter reads it back until the venue shows its state, with the quantity filled."""
    venue.lag_listing(2)
    ex = venue.exchange
    outcome = accepted(
        await in_virtual_time(
            venue,
            ex.create_market_order(SYMBOL, OrderSide.BUY, QTY, client_order_id="tc-lag-e0"),
        )
    )
    assert outcome.order.client_order_id == "tc-lag-e0"
    assert (outcome.order.status, outcome.order.filled) == (OrderStatus.FILLED, QTY)


async def test_an_order_not_listed_within_the_read_back_is_unknown_never_refused(
    venue: VenueHarness,
) -> None:
    """Past the read-back's bound the order stays unknown (the caller resolves it by its
    client id later); where the create's answer carries the order (Binance) it is proven."""
    venue.lag_listing(3600)
    ex = venue.exchange
    outcome = await in_virtual_time(
        venue, ex.create_market_order(SYMBOL, OrderSide.BUY, QTY, client_order_id="tc-late-e0")
    )
    if PROFILES[ex.venue].acknowledges_only:
        assert isinstance(outcome, Unknown), outcome
        assert outcome.client_order_id == "tc-late-e0"
    else:
        assert accepted(outcome).order.filled == QTY
    (held,) = await ex.fetch_positions()
    assert held.quantity == QTY  # it did fill: never read as refused
    await venue.advance(3600)
    found = await ex.fetch_order_by_client_id(SYMBOL, "tc-late-e0")
    assert found is not None and (found.status, found.filled) == (OrderStatus.FILLED, QTY)


async def test_transport_failures_are_retryable_rejections_and_nothing_is_placed(
    venue: VenueHarness,
) -> None:
    ex = venue.exchange
    await open_long(ex)
    venue.inject(Fault.network_error(Op.STOP_ORDER), Fault.rate_limit(Op.STOP_ORDER))
    reasons = []
    for _ in range(2):
        outcome = await stop(ex, "49000", "tc-op1-s0")
        assert isinstance(outcome, Rejected) and outcome.retryable, outcome
        reasons.append(outcome.reason)
    assert reasons == [RejectReason.NETWORK_ERROR, RejectReason.RATE_LIMITED]
    assert await ex.fetch_open_orders(SYMBOL) == []


async def test_a_5xx_answer_to_a_command_is_unknown_and_the_look_up_tells_what_happened(
    venue: VenueHarness,
) -> None:
    """Story 9: a venue's 5xx on an order command leaves the execution status unknown."""
    ex = venue.exchange
    venue.inject(Fault.server_error(Op.MARKET_ORDER, acted=True))
    entry = await ex.create_market_order(SYMBOL, OrderSide.BUY, QTY, client_order_id="tc-e-e0")
    assert isinstance(entry, Unknown), entry
    assert entry.client_order_id == "tc-e-e0"
    filled = await ex.fetch_order_by_client_id(SYMBOL, "tc-e-e0")
    assert filled is not None and filled.filled == QTY
    venue.inject(Fault.server_error(Op.STOP_ORDER))
    refused = await stop(ex, "49000", "tc-e-s0")
    assert isinstance(refused, Unknown), refused
    assert await ex.fetch_order_by_client_id(SYMBOL, "tc-e-s0") is None
    placed = accepted(await stop(ex, "49000", "tc-e-s1")).order
    venue.inject(Fault.server_error(Op.CANCEL, acted=True))
    assert isinstance(await ex.cancel_order(SYMBOL, placed.order_id), Unknown)
    assert [o for o in await ex.fetch_open_orders(SYMBOL) if o.is_stop] == []


async def test_a_5xx_answer_to_a_query_is_the_venue_unavailable_worth_retrying(
    venue: VenueHarness,
) -> None:
    venue.inject(Fault.server_error(Op.FETCH_POSITIONS))
    with pytest.raises(ExchangeUnavailable) as raised:
        await venue.exchange.fetch_positions()
    assert raised.value.retryable and not raised.value.rate_limited


async def test_query_during_an_outage_raises_exchange_unavailable(venue: VenueHarness) -> None:
    venue.inject(Fault.rate_limit(Op.FETCH_POSITIONS))
    with pytest.raises(ExchangeUnavailable) as raised:
        await venue.exchange.fetch_positions()
    assert raised.value.retryable and raised.value.rate_limited
    assert await venue.exchange.fetch_positions() == []


async def test_cancel_of_a_missing_order_reports_not_found(venue: VenueHarness) -> None:
    ex = venue.exchange
    await open_long(ex)
    placed = accepted(await stop(ex, "49000", "tc-op1-s0")).order
    accepted(await ex.cancel_order(SYMBOL, placed.order_id))
    again = await ex.cancel_order(SYMBOL, placed.order_id)
    rejected_by_venue(again, RejectReason.ORDER_NOT_FOUND, ex.venue)
    never = await ex.cancel_order(SYMBOL, "123456789")
    rejected_by_venue(never, RejectReason.ORDER_NOT_FOUND, ex.venue)


async def test_replacing_a_stop_by_the_venues_safe_path_never_leaves_the_position_bare(
    venue: VenueHarness,
) -> None:
    ex = venue.exchange
    await open_long(ex)
    current = accepted(await stop(ex, "48000", "tc-op1-s0")).order
    for step, trigger in enumerate(("48500", "49000", "49500"), start=1):
        await venue.set_mark(SYMBOL, Decimal(trigger) + 1000)
        await venue.advance(1)
        if ex.capabilities.amend_stop:
            moved = accepted(
                await ex.amend_order(SYMBOL, current.order_id, trigger_price=Decimal(trigger))
            )
            assert moved.order.order_id == current.order_id
        else:  # create the new stop first, cancel the old one after
            new = accepted(await stop(ex, trigger, f"tc-op1-s{step}")).order
            await venue.advance(1)
            accepted(await ex.cancel_order(SYMBOL, current.order_id))
            current = new
    (record,) = venue.books.positions_for(SYMBOL)
    (opening_gap,) = record.unprotected()
    assert opening_gap.seconds(venue.now()) == 0  # only the instant between fill and stop
    assert [count for _, count in record.stop_counts][1:].count(0) == 0
    assert record.max_stops <= 2
    (left,) = [o for o in await ex.fetch_open_orders(SYMBOL) if o.is_stop]
    assert left.trigger_price == Decimal("49500")


async def test_position_stop_is_attached_moved_in_place_and_fires(venue: VenueHarness) -> None:
    ex = venue.exchange
    if not ex.capabilities.position_stop:
        pytest.skip(f"{ex.venue} has no position-attached stop")
    await open_long(ex)
    accepted(await ex.set_position_stop(SYMBOL, Decimal("48000")))
    await venue.advance(5)
    accepted(await ex.set_position_stop(SYMBOL, Decimal("49000")))
    (position,) = await ex.fetch_positions()
    assert position.stop_price == Decimal("49000")
    (record,) = venue.books.positions_for(SYMBOL)
    assert record.unprotected_seconds(venue.now()) == 0
    await venue.set_mark(SYMBOL, "48900")
    assert await ex.fetch_positions() == []


async def test_position_stop_that_would_trigger_now_is_rejected(venue: VenueHarness) -> None:
    ex = venue.exchange
    if not ex.capabilities.position_stop:
        pytest.skip(f"{ex.venue} has no position-attached stop")
    await open_long(ex)
    outcome = await ex.set_position_stop(SYMBOL, Decimal("50100"))
    assert isinstance(outcome, Rejected)
    assert outcome.reason is RejectReason.WOULD_TRIGGER_IMMEDIATELY
    (position,) = await ex.fetch_positions()
    assert position.stop_price is None


async def test_a_close_all_stop_closes_the_whole_position_and_stands_once_per_direction(
    venue: VenueHarness,
) -> None:
    """Binance closePosition=true (USDⓈ-M "New Algo Order": no quantity with it; -4130 for
    a second one in the direction); a venue without it says so before anything is placed."""
    ex = venue.exchange
    await open_long(ex)

    async def close_all(trigger: str, cid: str) -> object:
        return await ex.create_stop_order(
            SYMBOL, OrderSide.SELL, QTY, Decimal(trigger), client_order_id=cid, close_position=True
        )

    if not ex.capabilities.close_position_stop:
        outcome = await close_all("49000", "tc-ca1-s0")
        assert isinstance(outcome, Rejected) and outcome.reason is RejectReason.NOT_SUPPORTED
        assert not [o for o in await ex.fetch_open_orders(SYMBOL) if o.is_stop]
        return
    placed = accepted(await close_all("49000", "tc-ca1-s0")).order
    assert placed.close_position and placed.is_stop_loss
    if isinstance(venue, LoopbackVenue):  # on the wire: the flag, and no quantity
        [sent] = [p for m, _, p in venue.server.requests if p.get("closePosition") and m == "POST"]
        assert sent["closePosition"] == "true" and "quantity" not in sent, sent
        assert "reduceOnly" not in sent, sent
    second = await close_all("49500", "tc-ca2-s0")
    assert isinstance(second, Rejected) and second.reason is RejectReason.STOP_ALREADY_EXISTS
    assert second.code == "-4130"
    [listed] = [o for o in await ex.fetch_open_orders(SYMBOL) if o.is_stop]
    assert listed.order_id == placed.order_id and listed.close_position
    accepted(  # the position grows: the close-all stop follows it
        await ex.create_market_order(SYMBOL, OrderSide.BUY, QTY, client_order_id="tc-op2-e0")
    )
    await venue.set_mark(SYMBOL, "48990")
    assert await ex.fetch_positions() == []


async def test_venue_without_position_stops_says_so_instead_of_pretending(
    venue: VenueHarness,
) -> None:
    ex = venue.exchange
    if ex.capabilities.position_stop:
        pytest.skip(f"{ex.venue} has position-attached stops")
    await open_long(ex)
    outcome = await ex.set_position_stop(SYMBOL, Decimal("48000"))
    assert isinstance(outcome, Rejected) and outcome.reason is RejectReason.NOT_SUPPORTED


async def test_amending_a_stop_that_would_trigger_now_is_rejected_and_keeps_the_old_one(
    venue: VenueHarness,
) -> None:
    ex = venue.exchange
    if not ex.capabilities.amend_stop:
        pytest.skip(f"{ex.venue} cannot amend a stop")
    await open_long(ex)
    placed = accepted(await stop(ex, "49000", "tc-op1-s0")).order
    outcome = await ex.amend_order(SYMBOL, placed.order_id, trigger_price=Decimal("50500"))
    rejected_by_venue(outcome, RejectReason.WOULD_TRIGGER_IMMEDIATELY, ex.venue)
    (kept,) = await ex.fetch_open_orders(SYMBOL)
    assert kept.trigger_price == Decimal("49000")


@pytest.mark.parametrize(
    ("quantity", "trigger", "reason"),
    [
        ("0.0105", "49000", RejectReason.INVALID_QUANTITY),
        ("0.01", "49000.05", RejectReason.INVALID_PRICE),
        ("0.01", "49000.123456", RejectReason.INVALID_PRICE),
    ],
)
async def test_values_off_the_step_or_tick_are_rejected_with_the_venues_reason(
    venue: VenueHarness, quantity: str, trigger: str, reason: RejectReason
) -> None:
    ex = venue.exchange
    await open_long(ex)
    outcome = await ex.create_stop_order(
        SYMBOL, OrderSide.SELL, Decimal(quantity), Decimal(trigger), client_order_id="tc-q-s0"
    )
    rejected_by_venue(outcome, reason, ex.venue)
    assert await ex.fetch_open_orders(SYMBOL) == []


async def test_a_client_id_of_an_open_order_is_refused_as_already_used_not_retryable(
    venue: VenueHarness,
) -> None:
    """Story 7: "already done" is -4116 / 110072, and retrying it cannot help."""
    ex = venue.exchange
    await open_long(ex)
    accepted(await stop(ex, "49000", "tc-op1-s0"))
    again = rejected_by_venue(
        await stop(ex, "48000", "tc-op1-s0"), RejectReason.DUPLICATE_CLIENT_ID, ex.venue
    )
    assert not again.retryable
    assert len([o for o in await ex.fetch_open_orders(SYMBOL) if o.is_stop]) == 1


async def test_a_client_id_of_a_closed_order_is_free_on_binance_and_used_for_good_on_bybit(
    venue: VenueHarness,
) -> None:
    """Binance: newClientOrderId is "a unique id among open orders" (USDⓈ-M New Order), so a
    filled entry's id opens a second position if re-sent. Bybit: orderLinkId "should be
    unique" (v5 Place Order) and a re-used one is refused with 110072."""
    ex = venue.exchange
    await open_long(ex, cid="tc-op1-e0")
    first = accepted(await stop(ex, "49000", "tc-op1-s0")).order
    accepted(await ex.cancel_order(SYMBOL, first.order_id))
    resent_stop = await stop(ex, "48000", "tc-op1-s0")
    resent_entry = await ex.create_market_order(
        SYMBOL, OrderSide.BUY, QTY, client_order_id="tc-op1-e0"
    )
    (position,) = await ex.fetch_positions()
    if PROFILES[ex.venue].client_ids_free_once_closed:
        accepted(resent_stop)
        accepted(resent_entry)
        assert position.quantity == 2 * QTY
    else:
        rejected_by_venue(resent_stop, RejectReason.DUPLICATE_CLIENT_ID, ex.venue)
        rejected_by_venue(resent_entry, RejectReason.DUPLICATE_CLIENT_ID, ex.venue)
        assert position.quantity == QTY


async def test_setting_the_same_position_stop_again_is_not_modified_and_not_retryable(
    venue: VenueHarness,
) -> None:
    """Story 7: Bybit answers 34040 "not modified" when the stop is already there."""
    ex = venue.exchange
    if not ex.capabilities.position_stop:
        pytest.skip(f"{ex.venue} has no position-attached stop")
    await open_long(ex)
    accepted(await ex.set_position_stop(SYMBOL, Decimal("48000")))
    again = await ex.set_position_stop(SYMBOL, Decimal("48000"))
    assert isinstance(again, Rejected), again
    assert (again.reason, again.code, again.retryable) == (
        RejectReason.NOT_MODIFIED,
        "34040",
        False,
    )
    (position,) = await ex.fetch_positions()
    assert position.stop_price == Decimal("48000")


async def test_below_minimum_notional_and_insufficient_margin_are_rejected(
    venue: VenueHarness,
) -> None:
    ex = venue.exchange
    tiny = venue.rules(SYMBOL).smallest_quantity
    if tiny * MARK < venue.rules(SYMBOL).min_notional:
        rejected_by_venue(
            await ex.create_market_order(SYMBOL, OrderSide.BUY, tiny, client_order_id="tc-n-e0"),
            RejectReason.BELOW_MIN_NOTIONAL,
            ex.venue,
        )
    huge = Decimal("1000")
    rejected_by_venue(
        await ex.create_market_order(SYMBOL, OrderSide.BUY, huge, client_order_id="tc-n-e1"),
        RejectReason.INSUFFICIENT_BALANCE,
        ex.venue,
    )
    assert await ex.fetch_positions() == []


BAD_QUANTITIES = [Decimal("NaN"), Decimal("-0.01"), Decimal("0"), Decimal("Infinity"), "abc"]


@pytest.mark.parametrize("quantity", BAD_QUANTITIES, ids=str)
async def test_bad_quantities_are_rejected_not_raised(
    venue: VenueHarness, quantity: object
) -> None:
    ex = venue.exchange
    outcome = await ex.create_market_order(
        SYMBOL,
        OrderSide.BUY,
        quantity,  # type: ignore[arg-type]
        client_order_id="tc-b-e0",
    )
    rejected_by_venue(outcome, RejectReason.INVALID_QUANTITY, ex.venue)


@pytest.mark.parametrize(
    "trigger", [Decimal("NaN"), Decimal("-1"), Decimal("0"), None, "x"], ids=str
)
async def test_bad_trigger_prices_are_rejected_not_raised(
    venue: VenueHarness, trigger: object
) -> None:
    ex = venue.exchange
    await open_long(ex)
    outcome = await ex.create_stop_order(
        SYMBOL,
        OrderSide.SELL,
        QTY,
        trigger,  # type: ignore[arg-type]
        client_order_id="tc-b-s0",
    )
    assert isinstance(outcome, Rejected) and outcome.reason is RejectReason.INVALID_PRICE
    assert outcome.code is not None and not outcome.retryable


async def test_unknown_symbol_is_rejected_not_raised(venue: VenueHarness) -> None:
    ex = venue.exchange
    outcome = await ex.create_market_order(
        "NOPEUSDT", OrderSide.BUY, QTY, client_order_id="tc-u-e0"
    )
    rejected_by_venue(outcome, RejectReason.UNKNOWN_SYMBOL, ex.venue)


async def test_mark_price_stream_delivers_each_tick_of_the_watched_symbols(
    venue: VenueHarness,
) -> None:
    ex = venue.exchange
    opening = await ex.fetch_mark_price(SYMBOL)
    stream = ex.watch_mark_prices([SYMBOL])
    # the stream opens with the current mark, as the venues' do (a restart learns the mark
    # without waiting for it to move), then each change; other symbols' are not its
    now = await anext(stream)
    assert (now.symbol, now.mark) == (SYMBOL, opening)
    await venue.set_mark("ETHUSDT", "3100")
    await venue.set_mark(SYMBOL, "50100")
    await venue.set_mark(SYMBOL, "50200")
    first, second = await anext(stream), await anext(stream)
    assert (first.symbol, first.mark, second.mark) == (SYMBOL, Decimal("50100"), Decimal("50200"))
    assert await ex.fetch_mark_price(SYMBOL) == Decimal("50200")


async def test_load_markets_reports_the_rules_orders_are_checked_against(
    venue: VenueHarness,
) -> None:
    markets = await venue.exchange.load_markets()
    rules = markets[SYMBOL]
    assert rules == venue.rules(SYMBOL)
    assert rules.tick_size > 0 and rules.step_size > 0


async def test_stops_count_as_stops_in_the_open_order_listing(venue: VenueHarness) -> None:
    ex = venue.exchange
    await open_long(ex)
    accepted(await stop(ex, "49000", "tc-op1-s0"))
    accepted(
        await ex.create_limit_order(
            SYMBOL, OrderSide.SELL, QTY, Decimal("52000"), client_order_id="tc-op1-x0"
        )
    )
    kinds = sorted(o.type for o in await ex.fetch_open_orders(SYMBOL))
    assert kinds == sorted([OrderType.STOP_MARKET, OrderType.LIMIT])


async def test_limit_exit_rests_and_fills_when_the_mark_reaches_its_price(
    venue: VenueHarness,
) -> None:
    ex = venue.exchange
    await open_long(ex)
    placed = accepted(
        await ex.create_limit_order(
            SYMBOL, OrderSide.SELL, QTY, Decimal("51000"), client_order_id="tc-op1-x0"
        )
    ).order
    assert placed.is_open and placed.reduce_only
    await venue.set_mark(SYMBOL, "50900")
    assert len(await ex.fetch_positions()) == 1
    await venue.set_mark(SYMBOL, "51000")
    assert await ex.fetch_positions() == []
    filled = await ex.fetch_order_by_client_id(SYMBOL, "tc-op1-x0")
    assert filled is not None and filled.status is OrderStatus.FILLED
    assert filled.average_price == Decimal("51000")


async def test_limit_exit_price_is_moved_in_place(venue: VenueHarness) -> None:
    ex = venue.exchange
    if not ex.capabilities.amend_limit:
        pytest.skip(f"{ex.venue} cannot amend a limit order")
    await open_long(ex)
    placed = accepted(
        await ex.create_limit_order(
            SYMBOL, OrderSide.SELL, QTY, Decimal("52000"), client_order_id="tc-op1-x0"
        )
    ).order
    moved = accepted(await ex.amend_order(SYMBOL, placed.order_id, price=Decimal("51500")))
    assert (moved.order.order_id, moved.order.price) == (placed.order_id, Decimal("51500"))
    (listed,) = await ex.fetch_open_orders(SYMBOL)
    assert listed.price == Decimal("51500")


async def test_an_order_is_found_by_its_exchange_id_while_open_and_after_it_filled(
    venue: VenueHarness,
) -> None:
    exchange = venue.exchange
    accepted(
        await exchange.create_market_order(SYMBOL, OrderSide.BUY, QTY, client_order_id="tc-f-e0")
    )
    stop = accepted(
        await exchange.create_stop_order(
            SYMBOL, OrderSide.SELL, QTY, Decimal("49000"), client_order_id="tc-f-s0"
        )
    ).order

    found = await exchange.fetch_order(SYMBOL, stop.order_id)
    assert found is not None and found.is_open and found.trigger_price == Decimal("49000")

    await venue.set_mark(SYMBOL, "48900")
    fired = await exchange.fetch_order(SYMBOL, stop.order_id)
    assert fired is not None and not fired.is_open and fired.filled == QTY
    assert await exchange.fetch_order(SYMBOL, "no-such-order") is None


# -- fills and funding: the figures a closed position's realized PnL is made of ------------


async def test_the_fills_of_an_open_and_its_stop_come_back_with_price_quantity_and_fee(
    venue: VenueHarness,
) -> None:
    ex = venue.exchange
    since = venue.now()
    entry = accepted(
        await ex.create_market_order(SYMBOL, OrderSide.BUY, QTY, client_order_id="tc-f-e0")
    ).order
    accepted(await stop(ex, "49000", "tc-f-s0"))
    await venue.set_mark(SYMBOL, "48990")
    assert await ex.fetch_positions() == []
    fills = await ex.fetch_fills(SYMBOL, since=since)
    assert [(f.side, f.quantity) for f in fills] == [(OrderSide.BUY, QTY), (OrderSide.SELL, QTY)]
    assert fills[0].order_id == entry.order_id and fills[0].price == MARK
    assert fills[1].price == Decimal("48990")
    # (the stop's fill names the order that filled: on Binance the market order the algo
    # order became, its `actualOrderId`, not the algo id)
    assert all(f.fee > 0 and f.fee_asset == "USDT" for f in fills)
    assert fills[0].at <= fills[1].at
    pnl = realized_pnl(Side.LONG, position_fills(fills, Side.LONG, since=since))
    assert pnl.gross == (Decimal("48990") - MARK) * QTY
    assert pnl.realized == pnl.gross - fills[0].fee - fills[1].fee


async def test_fills_can_be_asked_for_by_order_and_from_a_time(venue: VenueHarness) -> None:
    ex = venue.exchange
    first = accepted(
        await ex.create_market_order(SYMBOL, OrderSide.BUY, QTY, client_order_id="tc-g-e0")
    ).order
    await venue.advance(5)
    later = venue.now()
    second = accepted(
        await ex.create_market_order(SYMBOL, OrderSide.BUY, QTY, client_order_id="tc-g-e1")
    ).order
    assert [f.order_id for f in await ex.fetch_fills(SYMBOL, since=later)] == [second.order_id]
    chosen = await ex.fetch_fills(
        SYMBOL, since=later - timedelta(hours=1), order_ids=[first.order_id]
    )
    assert [f.order_id for f in chosen] == [first.order_id]


async def test_a_position_held_over_a_funding_time_pays_funding_and_the_venue_reports_it(
    venue: VenueHarness,
) -> None:
    ex = venue.exchange
    since = venue.now()
    await open_long(ex)
    assert await ex.fetch_funding(SYMBOL, since=since) == []
    await venue.advance(8 * 3600 + 1)
    await venue.set_mark(SYMBOL, MARK)
    (payment,) = await ex.fetch_funding(SYMBOL, since=since)
    assert payment.symbol == SYMBOL and payment.asset == "USDT"
    assert payment.amount == -QTY * MARK * DEFAULT_FUNDING_RATE  # a long pays a positive rate
    assert since < payment.at <= venue.now()


async def test_a_position_held_for_days_has_every_funding_payment_reported(
    venue: VenueHarness,
) -> None:
    # Bybit's transaction log answers 24 hours for `startTime` alone and at most 7 days a
    # request (v5 Get Transaction Log: "Only startTime is passed, return range between
    # startTime and startTime+24 hours"; "If both are passed, the rule is endTime -
    # startTime <= 7 days"): a position held 9 days pays 27 fundings, all of them count.
    ex = venue.exchange
    since = venue.now()
    await open_long(ex)
    for _ in range(27):
        await venue.advance(8 * 3600)
        await venue.set_mark(SYMBOL, MARK)
    payments = await ex.fetch_funding(SYMBOL, since=since)
    assert len(payments) == 27
    assert len({p.at for p in payments}) == 27
    assert all(p.amount == -QTY * MARK * DEFAULT_FUNDING_RATE for p in payments)


async def test_funding_of_one_symbol_is_not_crowded_out_by_the_account_s_others(
    venue: VenueHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Bybit's transaction log has no symbol filter, only `baseCoin`; asked for the whole
    # account, the page cap (`_LOG_PAGES`, here 1 page of 50 rows) was reached by another
    # symbol's settlements and this one's oldest payments were silently dropped.
    from tradecore.adapters.ccxt.venues import bybit

    monkeypatch.setattr(bybit, "_LOG_PAGES", 1)
    ex = venue.exchange
    if not {"ETHUSDT", "SOLUSDT"} <= set(await ex.load_markets()):
        pytest.skip("this venue lists no ETHUSDT and SOLUSDT")
    since = venue.now()
    await open_long(ex)
    accepted(
        await ex.create_market_order(
            "ETHUSDT", OrderSide.BUY, Decimal("1"), client_order_id="tc-f-e1"
        )
    )
    accepted(
        await ex.create_market_order(
            "SOLUSDT", OrderSide.BUY, Decimal("10"), client_order_id="tc-f-e2"
        )
    )
    for _ in range(27):  # 9 days: 21 fundings a symbol in 7, 63 rows on the account
        await venue.advance(8 * 3600)
        await venue.set_mark(SYMBOL, MARK)
        await venue.set_mark("ETHUSDT", "3000")
        await venue.set_mark("SOLUSDT", "150")
    payments = await ex.fetch_funding(SYMBOL, since=since)
    assert len(payments) == 27


async def test_a_trade_history_that_cannot_be_read_is_exchange_unavailable(
    venue: VenueHarness,
) -> None:
    # (ccxt's paginated calls retry a failed page up to 3 times: the venue refuses them all)
    venue.inject(
        Fault.rate_limit(Op.FETCH_FILLS, times=5), Fault.network_error(Op.FETCH_FUNDING, times=5)
    )
    with pytest.raises(ExchangeUnavailable):
        await venue.exchange.fetch_fills(SYMBOL, since=venue.now())
    with pytest.raises(ExchangeUnavailable):
        await venue.exchange.fetch_funding(SYMBOL, since=venue.now())


async def test_mark_candles_hold_every_mark_since_oldest_first_the_last_closing_at_the_mark(
    venue: VenueHarness,
) -> None:
    # what a restart reads to catch up on the marks it never judged (binance seed 2508):
    # the highest and the lowest since, in candles as the venues keep them
    ex = venue.exchange
    since = venue.now()
    for seconds, mark in ((20, "50400"), (50, "49700"), (70, "50150"), (40, "50050")):
        await venue.advance(seconds)
        await venue.set_mark(SYMBOL, mark)
    candles = list(await ex.fetch_mark_candles(SYMBOL, since=since))
    assert candles[0].opened_at <= since < candles[0].closes_at
    assert all(a.closes_at == b.opened_at for a, b in itertools.pairwise(candles))
    assert max(c.high for c in candles) == Decimal("50400")
    assert min(c.low for c in candles) == Decimal("49700")
    assert candles[-1].opened_at <= venue.now() < candles[-1].closes_at
    assert candles[-1].close == Decimal("50050") == await ex.fetch_mark_price(SYMBOL)


async def test_mark_candles_over_most_of_a_day_come_in_a_few_requests_and_miss_no_extreme(
    venue: VenueHarness,
) -> None:
    # Bybit answers at most 200 klines a request, Binance 1500: 20 hours of one-minute
    # candles are 1,200 — Bybit's come as 5-minute candles in 2 pages, Binance's in 2 pages
    ex = venue.exchange
    since = venue.now()
    for hour in range(20):
        await venue.advance(3600)
        await venue.set_mark(SYMBOL, "51000" if hour == 3 else "48500" if hour == 17 else MARK)
    candles = list(await ex.fetch_mark_candles(SYMBOL, since=since))
    assert candles[0].opened_at <= since and candles[-1].closes_at > venue.now()
    assert all(a.closes_at == b.opened_at for a, b in itertools.pairwise(candles))
    assert (max(c.high for c in candles), min(c.low for c in candles)) == (
        Decimal("51000"),
        Decimal("48500"),
    )


async def test_mark_candles_that_cannot_be_read_are_exchange_unavailable(
    venue: VenueHarness,
) -> None:
    venue.inject(Fault.server_error(Op.FETCH_MARK_CANDLES, times=5))
    with pytest.raises(ExchangeUnavailable):
        await venue.exchange.fetch_mark_candles(SYMBOL, since=venue.now())
