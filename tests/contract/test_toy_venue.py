"""The toy third venue's own differences show through the exchange port.

The contract suites run it with the others (`paper-toy`, and `ccxt-toy`: the real ccxt
adapter on ccxt's `toy` class, against a loopback answering from the toy's corpus); this
file checks what only the toy does, on both, so its dialects are proven to be the ones the
engine and the adapter follow (not Binance's or Bybit's).
"""

from collections.abc import AsyncIterator, Callable
from decimal import Decimal

import pytest
from toy_venue import TOY, TOY_DIALECT

from tradecore.domain.model import OrderSide
from tradecore.ports.exchange import Accepted, Outcome, Rejected, RejectReason
from tradecore.testing import FakeVenue, VenueHarness
from tradecore.testing.loopback import LoopbackVenue

SYMBOL = "BTCUSDT"

HARNESSES: dict[str, Callable[..., VenueHarness]] = {
    "paper-toy": lambda **o: FakeVenue(TOY_DIALECT, **o),
    "ccxt-toy": lambda **o: LoopbackVenue(TOY_DIALECT, **o),
}


@pytest.fixture(params=sorted(HARNESSES))
async def toy(request: pytest.FixtureRequest) -> AsyncIterator[VenueHarness]:
    harness = HARNESSES[request.param](marks={SYMBOL: "50000"}, balance="1000000")
    yield harness
    await harness.close()


async def _stops(venue: VenueHarness, count: int) -> list[Outcome]:
    ex = venue.exchange
    await ex.create_market_order(SYMBOL, OrderSide.BUY, Decimal("1"), client_order_id="tc-t-e0")
    return [
        await ex.create_stop_order(
            SYMBOL, OrderSide.SELL, Decimal("0.001"), Decimal(40_000 + n), client_order_id=f"s{n}"
        )
        for n in range(count)
    ]


async def test_the_toy_venue_has_no_conditional_order_cap_where_bybit_stops_at_10(
    toy: VenueHarness,
) -> None:
    assert all(isinstance(o, Accepted) for o in await _stops(toy, 12))
    bybit = FakeVenue.bybit(marks={SYMBOL: "50000"}, balance="1000000")
    refused = (await _stops(bybit, 11))[-1]
    assert isinstance(refused, Rejected)
    assert refused.reason is RejectReason.TOO_MANY_CONDITIONAL_ORDERS


async def test_the_toy_venue_has_no_conditional_order_cap_where_binance_stops_at_200() -> None:
    toy = FakeVenue(TOY_DIALECT, marks={SYMBOL: "50000"}, balance="1000000")
    assert all(isinstance(o, Accepted) for o in await _stops(toy, 250))
    binance = FakeVenue.binance(marks={SYMBOL: "50000"}, balance="1000000")
    refused = (await _stops(binance, 201))[-1]
    assert isinstance(refused, Rejected)
    assert refused.reason is RejectReason.TOO_MANY_CONDITIONAL_ORDERS


async def test_the_toy_venue_answers_in_its_own_codes_and_ids(toy: VenueHarness) -> None:
    ex = toy.exchange
    assert ex.venue is TOY
    opened = await ex.create_market_order(
        SYMBOL, OrderSide.BUY, Decimal("0.01"), client_order_id="tc-t-e0"
    )
    assert isinstance(opened, Accepted) and opened.order.order_id == "toy-101"
    assert opened.order.venue is TOY
    late = await ex.create_stop_order(
        SYMBOL, OrderSide.SELL, Decimal("0.01"), Decimal("50500"), client_order_id="tc-t-s0"
    )
    assert isinstance(late, Rejected) and late.code == "90100"
    assert late.reason is RejectReason.WOULD_TRIGGER_IMMEDIATELY
    assert late.message == "trigger 50500 is already past the mark 50000"
    same = await ex.set_leverage(SYMBOL, await ex.fetch_leverage(SYMBOL))
    assert not isinstance(same, Rejected)  # "not modified" (90113) reads as done


async def test_a_closed_orders_client_id_may_be_sent_again_on_the_toy(toy: VenueHarness) -> None:
    ex = toy.exchange
    for _ in range(2):  # Bybit refuses the second with 110072
        opened = await ex.create_market_order(
            SYMBOL, OrderSide.BUY, Decimal("0.01"), client_order_id="tc-t-e0"
        )
        assert isinstance(opened, Accepted), opened


async def test_the_toy_has_no_position_stop_and_the_adapter_never_asks_for_one(
    toy: VenueHarness,
) -> None:
    ex = toy.exchange
    assert not ex.capabilities.position_stop
    await ex.create_market_order(SYMBOL, OrderSide.BUY, Decimal("0.01"), client_order_id="tc-t-e0")
    refused = await ex.set_position_stop(SYMBOL, Decimal("49000"))
    assert isinstance(refused, Rejected) and refused.reason is RejectReason.NOT_SUPPORTED
    if isinstance(toy, LoopbackVenue):  # refused before sending: the toy has no such endpoint
        assert all(path != "/v5/position/trading-stop" for _, path, _ in toy.server.requests)


async def test_the_toy_counts_against_its_own_rate_limits_not_bybits() -> None:
    """The toy allows 5 order creates a second (Bybit 10): its loopback's X-Bapi-Limit says
    so, and the adapter's reading of the header counts against the toy's own budget."""
    venue = LoopbackVenue(TOY_DIALECT, marks={SYMBOL: "50000"})
    try:
        limits = venue.exchange.dialect.limits
        assert {b.name: b.limit for b in limits.budgets}["order/create"] == 5
        await venue.exchange.create_market_order(
            SYMBOL, OrderSide.BUY, Decimal("0.01"), client_order_id="tc-t-e0"
        )
        sent = venue.dialect.limit_headers("POST", "/v5/order/create", {}, 200)
        assert (sent["X-Bapi-Limit"], sent["X-Bapi-Limit-Status"]) == ("5", "3")  # 2 sent
        heard = limits.read("/v5/order/create", 200, sent, '{"retCode":0}', venue.now())
        assert [(c.budget, c.used) for c in heard.counts] == [("order/create", 2)]
    finally:
        await venue.close()
