"""The loopback exchange as its own process: a venue the real ccxt client trades on, whose
books a test reads from outside."""

import asyncio
from decimal import Decimal

import pytest

from tradecore.adapters.ccxt import CcxtExchange, Environment, build_client
from tradecore.adapters.clock import SystemClock
from tradecore.domain.model import OrderSide, Side, Venue
from tradecore.ports.exchange import Accepted, Unknown
from tradecore.testing.loopback import point_at

from .processes import Loopback

pytestmark = pytest.mark.crossprocess


@pytest.mark.parametrize("venue", ["binance", "bybit"])
async def test_a_loopback_process_trades_over_http_and_shows_its_books(venue: str) -> None:
    async with Loopback.running(venue, seed=3, symbols=["BTCUSDT"], interval=0.05) as loopback:
        first = await loopback.state()
        for _ in range(1200):  # the feed walks: a step every 0.05 s, however busy the machine
            if (await loopback.state())["marks"] != first["marks"]:
                break
            await asyncio.sleep(0.05)
        else:
            pytest.fail(f"the marks stood still for a minute: {first['marks']}")

        client = build_client(Venue(venue), api_key="k", secret="s", environment=Environment.DEMO)
        point_at(client, loopback.url)
        exchange = CcxtExchange(client, Venue(venue), clock=SystemClock())
        try:
            side = OrderSide.BUY
            entry = await exchange.create_market_order(
                "BTCUSDT", side, Decimal("0.01"), client_order_id="tc-entry-1"
            )
            assert isinstance(entry, Accepted)
            mark = Decimal(first["marks"]["BTCUSDT"])
            stop = await exchange.create_stop_order(
                "BTCUSDT",
                OrderSide.SELL,
                Decimal("0.01"),
                (mark * Decimal("0.8")).quantize(Decimal("0.1")),
                client_order_id="tc-stop-1",
            )
            assert isinstance(stop, Accepted)
        finally:
            await exchange.close()

        state = await loopback.state()
        [position] = state["positions"]
        assert position["side"] == Side.LONG.value and Decimal(position["quantity"]) == Decimal(
            "0.01"
        )
        stops = [o for o in state["orders"] if o["stop"] and o["open"]]
        assert [o["client_order_id"] for o in stops] == ["tc-stop-1"]
        [record] = state["position_records"]
        assert record["closed_at"] is None and record["stop_counts"][-1][1] == 1
        assert len(record["unprotected"]) == 1  # the instant between the fill and the stop


async def test_a_fault_scripted_over_http_acts_and_holds_the_answer_back() -> None:
    async with Loopback.running("binance", seed=4, symbols=["ETHUSDT"]) as loopback:
        client = build_client(
            Venue.BINANCE, api_key="k", secret="s", environment=Environment.DEMO, timeout_ms=500
        )
        point_at(client, loopback.url)
        exchange = CcxtExchange(client, Venue.BINANCE, clock=SystemClock())
        try:
            await loopback.inject(kind="lost_response", op="create_market_order")
            outcome = await exchange.create_market_order(
                "ETHUSDT", OrderSide.SELL, Decimal("0.1"), client_order_id="tc-held-1"
            )
            assert isinstance(outcome, Unknown)
        finally:
            await exchange.close()
        state = await loopback.state()
        assert state["pending_faults"] == 0
        assert [p["side"] for p in state["positions"]] == [Side.SHORT.value]  # it did act
