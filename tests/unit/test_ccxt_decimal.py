"""Prices and quantities cross ccxt and the wire exactly: Decimal in, Decimal out."""

import contextlib
from decimal import Decimal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tradecore.adapters.ccxt import parse
from tradecore.adapters.ccxt.parse import dec
from tradecore.adapters.ccxt.venues import binance, bybit
from tradecore.domain.model import OrderSide, Side
from tradecore.ports.exchange import Accepted, Rejected, RejectReason
from tradecore.testing.loopback import LoopbackVenue

PEPE = "1000PEPEUSDT"


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.decimals(allow_nan=False, allow_infinity=False, places=12, min_value=0, max_value=10**9))
def test_any_decimal_the_venue_writes_is_read_back_unchanged(value: Decimal) -> None:
    assert dec(format(value, "f")) == value


async def test_a_mark_of_0_0000001234_survives_the_round_trip_unchanged_on_both_venues() -> None:
    for venue in (LoopbackVenue.binance(), LoopbackVenue.bybit()):
        try:
            venue.engine.set_mark(PEPE, Decimal("0.0000001234"))
            assert await venue.exchange.fetch_mark_price(PEPE) == Decimal("0.0000001234")
        finally:
            await venue.close()


async def test_a_seven_decimal_stop_is_placed_and_listed_at_exactly_its_trigger() -> None:
    for venue in (LoopbackVenue.binance(), LoopbackVenue.bybit()):
        try:
            ex = venue.exchange
            qty = venue.rules(PEPE).smallest_quantity * 1000
            opened = await ex.create_market_order(
                PEPE, OrderSide.BUY, qty, client_order_id="tc-p-e0"
            )
            assert isinstance(opened, Accepted), opened
            placed = await ex.create_stop_order(
                PEPE, OrderSide.SELL, qty, Decimal("0.0111111"), client_order_id="tc-p-s0"
            )
            assert isinstance(placed, Accepted), placed
            (listed,) = [o for o in await ex.fetch_open_orders(PEPE) if o.is_stop]
            assert listed.trigger_price == Decimal("0.0111111")
            assert venue.engine.open_orders(PEPE)[0].trigger_price == Decimal("0.0111111")
            (position,) = await ex.fetch_positions()
            assert (position.side, position.quantity) == (Side.LONG, qty)
        finally:
            await venue.close()


async def test_an_off_tick_price_is_refused_rather_than_rounded_by_ccxt() -> None:
    venue = LoopbackVenue.binance()
    try:
        ex = venue.exchange
        await ex.create_market_order(
            PEPE, OrderSide.BUY, Decimal("1000"), client_order_id="tc-r-e0"
        )
        outcome = await ex.create_stop_order(
            PEPE, OrderSide.SELL, Decimal("1000"), Decimal("0.01111114"), client_order_id="tc-r-s0"
        )
        assert isinstance(outcome, Rejected) and outcome.reason is RejectReason.INVALID_PRICE
        assert venue.engine.open_orders(PEPE) == []
    finally:
        await venue.close()


JSON_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True),
    st.text(max_size=12),
    st.sampled_from(["", "0", "NaN", "-1", "1e400", "0.1", "Buy", "Sell", "BUY", "FILLED"]),
)
JSON = st.recursive(
    JSON_SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=8,
)
FIELDS = st.sampled_from(
    [
        "symbol", "side", "positionAmt", "entryPrice", "markPrice", "size", "avgPrice",
        "orderId", "algoId", "status", "algoStatus", "orderStatus", "origQty", "qty",
        "executedQty", "cumExecQty", "quantity", "triggerPrice", "price", "assets",
        "result", "filters", "lotSizeFilter", "priceFilter", "leverageFilter",
    ]
)  # fmt: skip
READERS = [
    binance.read_plain,
    binance.read_algo,
    binance.read_position,
    binance.read_balance,
    bybit.read_v5_order,
    bybit.read_position,
    bybit.read_balance,
    bybit.read_rules,
    lambda info: binance.read_rules(info, Decimal(10)),
]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(FIELDS, JSON, max_size=10), st.sampled_from(READERS))
def test_a_hostile_venue_answer_is_read_or_refused_as_unreadable_never_a_crash(
    info: dict, read: object
) -> None:
    # the adapter turns these into ExchangeUnavailable / Unknown with the payload
    with contextlib.suppress(parse.Unreadable, KeyError, TypeError, ValueError):
        read(info)  # type: ignore[operator]


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_a_float_from_the_venue_is_refused_rather_than_guessed(value: float) -> None:
    try:
        dec(value)
    except parse.Unreadable:
        return
    raise AssertionError("a float must never become a price")
