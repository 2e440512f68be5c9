"""The toy third venue's own differences show through the exchange port.

The contract suites run it with the others (`paper-toy`); this file checks what only the toy
does, so its dialect is proven to be the one the engine follows (not Binance's or Bybit's).
"""

from decimal import Decimal

from toy_venue import TOY, TOY_DIALECT

from tradecore.domain.model import OrderSide
from tradecore.ports.exchange import Accepted, Outcome, Rejected, RejectReason
from tradecore.testing import FakeVenue

SYMBOL = "BTCUSDT"


async def _stops(venue: FakeVenue, count: int) -> list[Outcome]:
    ex = venue.exchange
    await ex.create_market_order(SYMBOL, OrderSide.BUY, Decimal("1"), client_order_id="tc-t-e0")
    return [
        await ex.create_stop_order(
            SYMBOL, OrderSide.SELL, Decimal("0.001"), Decimal(40_000 + n), client_order_id=f"s{n}"
        )
        for n in range(count)
    ]


async def test_the_toy_venue_has_no_conditional_order_cap_where_binance_stops_at_200() -> None:
    toy = FakeVenue(TOY_DIALECT, marks={SYMBOL: "50000"}, balance="1000000")
    assert all(isinstance(o, Accepted) for o in await _stops(toy, 250))
    binance = FakeVenue.binance(marks={SYMBOL: "50000"}, balance="1000000")
    refused = (await _stops(binance, 201))[-1]
    assert isinstance(refused, Rejected)
    assert refused.reason is RejectReason.TOO_MANY_CONDITIONAL_ORDERS


async def test_the_toy_venue_answers_in_its_own_codes_and_ids() -> None:
    toy = FakeVenue(TOY_DIALECT, marks={SYMBOL: "50000"})
    ex = toy.exchange
    assert ex.venue is TOY
    opened = await ex.create_market_order(
        SYMBOL, OrderSide.BUY, Decimal("0.01"), client_order_id="tc-t-e0"
    )
    assert isinstance(opened, Accepted) and opened.order.order_id == "toy-101"
    late = await ex.create_stop_order(
        SYMBOL, OrderSide.SELL, Decimal("0.01"), Decimal("50500"), client_order_id="tc-t-s0"
    )
    assert isinstance(late, Rejected) and late.code == "T100"
    assert late.message == "trigger 50500 is already past the mark 50000"
    same = await ex.set_leverage(SYMBOL, await ex.fetch_leverage(SYMBOL))
    assert not isinstance(same, Rejected)  # "not modified" reads as done
