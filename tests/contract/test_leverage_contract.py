"""The exchange contract for leverage and margin mode: every adapter, the same behaviour.

Run against the paper adapter and the ccxt adapter over the loopback servers (Binance
USDⓈ-M, Bybit linear). "Already so" answers (Binance -4046, Bybit 110043) are success, never
a refusal; a Bybit unified account's margin mode is the account's and is only read.
"""

from collections.abc import AsyncIterator, Callable
from decimal import Decimal
from functools import partial
from typing import Any

import pytest
from toy_venue import TOY, TOY_DIALECT

from tradecore.domain.leverage import MarginMode
from tradecore.domain.model import OrderSide, Venue
from tradecore.ports.exchange import Accepted, Applied, Rejected, RejectReason
from tradecore.testing import FakeVenue, VenueHarness
from tradecore.testing.loopback import LoopbackVenue

SYMBOL = "BTCUSDT"
MARK = Decimal("50000")
QTY = Decimal("0.01")

Maker = Callable[..., VenueHarness]
MAKERS: dict[str, Maker] = {
    "paper-binance": FakeVenue.binance,
    "paper-bybit": FakeVenue.bybit,
    # a third venue added as docs/extending.md says (tests/contract/toy_venue.py)
    "paper-toy": partial(FakeVenue, TOY_DIALECT),
    "ccxt-binance": LoopbackVenue.binance,
    "ccxt-bybit": LoopbackVenue.bybit,
    "ccxt-toy": partial(LoopbackVenue, TOY_DIALECT),
}
INVALID_LEVERAGE_CODES = {Venue.BINANCE: "-4028", Venue.BYBIT: "110013", TOY: "90114"}
MARGIN_MODE_LOCKED_CODES = {Venue.BINANCE: "-4048"}


def make(name: str, **options: Any) -> VenueHarness:
    return MAKERS[name](marks={SYMBOL: MARK}, **options)


@pytest.fixture(params=sorted(MAKERS))
async def venue(request: pytest.FixtureRequest) -> AsyncIterator[VenueHarness]:
    harness = make(request.param)
    yield harness
    await harness.close()


@pytest.fixture(params=sorted(MAKERS))
async def cross_account(request: pytest.FixtureRequest) -> AsyncIterator[VenueHarness]:
    """A venue whose account (where the venue keeps one mode for it) is in cross margin."""
    harness = make(request.param, margin_mode=MarginMode.CROSS)
    yield harness
    await harness.close()


async def test_a_leverage_set_on_a_symbol_is_read_back(venue: VenueHarness) -> None:
    ex = venue.exchange
    assert await ex.set_leverage(SYMBOL, Decimal(5)) == Applied(changed=True)
    assert await ex.fetch_leverage(SYMBOL) == Decimal(5)
    assert await ex.set_leverage(SYMBOL, Decimal(20)) == Applied(changed=True)
    assert await ex.fetch_leverage(SYMBOL) == Decimal(20)


async def test_setting_the_leverage_a_symbol_already_has_is_success(venue: VenueHarness) -> None:
    ex = venue.exchange
    await ex.set_leverage(SYMBOL, Decimal(7))
    # Binance answers the same leverage again; Bybit answers 110043 "Set leverage not
    # modified", which must read as done, not as a refusal
    assert isinstance(await ex.set_leverage(SYMBOL, Decimal(7)), Applied)
    assert await ex.fetch_leverage(SYMBOL) == Decimal(7)


async def test_a_leverage_above_the_symbols_maximum_is_refused_and_nothing_changes(
    venue: VenueHarness,
) -> None:
    ex = venue.exchange
    await ex.set_leverage(SYMBOL, Decimal(10))
    top = venue.rules(SYMBOL).max_leverage
    outcome = await ex.set_leverage(SYMBOL, top + 1)
    assert isinstance(outcome, Rejected), outcome
    assert outcome.reason is RejectReason.INVALID_LEVERAGE
    assert outcome.code == INVALID_LEVERAGE_CODES[ex.venue]
    assert not outcome.retryable
    assert await ex.fetch_leverage(SYMBOL) == Decimal(10)


async def test_the_margin_mode_is_set_per_symbol_where_the_venue_keeps_it_so(
    venue: VenueHarness,
) -> None:
    ex = venue.exchange
    if not ex.capabilities.margin_mode_per_symbol:
        pytest.skip("the margin mode is the account's on this venue (next test)")
    assert await ex.fetch_margin_mode(SYMBOL) is MarginMode.CROSS  # a new account's default
    assert await ex.set_margin_mode(SYMBOL, MarginMode.ISOLATED) == Applied(changed=True)
    assert await ex.fetch_margin_mode(SYMBOL) is MarginMode.ISOLATED
    # Binance answers -4046 "No need to change margin type.": done, not refused
    assert await ex.set_margin_mode(SYMBOL, MarginMode.ISOLATED) == Applied(changed=False)
    assert await ex.set_margin_mode(SYMBOL, MarginMode.CROSS) == Applied(changed=True)
    assert await ex.fetch_margin_mode(SYMBOL) is MarginMode.CROSS


async def test_an_account_wide_margin_mode_is_read_and_never_set_per_symbol(
    cross_account: VenueHarness,
) -> None:
    ex = cross_account.exchange
    if ex.capabilities.margin_mode_per_symbol:
        pytest.skip("the margin mode is each symbol's on this venue")
    assert await ex.fetch_margin_mode(SYMBOL) is MarginMode.CROSS
    outcome = await ex.set_margin_mode(SYMBOL, MarginMode.ISOLATED)
    assert isinstance(outcome, Rejected) and outcome.reason is RejectReason.NOT_SUPPORTED
    assert await ex.fetch_margin_mode(SYMBOL) is MarginMode.CROSS


async def test_the_margin_mode_cannot_change_under_an_open_position(venue: VenueHarness) -> None:
    ex = venue.exchange
    if not ex.capabilities.margin_mode_per_symbol:
        pytest.skip("the margin mode is the account's on this venue")
    await ex.set_margin_mode(SYMBOL, MarginMode.ISOLATED)
    opened = await ex.create_market_order(SYMBOL, OrderSide.BUY, QTY, client_order_id="tc-m-e0")
    assert isinstance(opened, Accepted), opened
    outcome = await ex.set_margin_mode(SYMBOL, MarginMode.CROSS)
    assert isinstance(outcome, Rejected) and outcome.reason is RejectReason.MARGIN_MODE_LOCKED
    assert outcome.code == MARGIN_MODE_LOCKED_CODES[ex.venue]
    assert await ex.fetch_margin_mode(SYMBOL) is MarginMode.ISOLATED


async def test_leverage_tiers_name_the_symbols_maximum_and_a_maintenance_rate(
    venue: VenueHarness,
) -> None:
    tiers = await venue.exchange.fetch_leverage_tiers(SYMBOL)
    assert tiers, "no tiers"
    assert tiers[0].min_notional == 0
    assert max(t.max_leverage for t in tiers) == venue.rules(SYMBOL).max_leverage
    assert all(0 < t.maintenance_rate < 1 for t in tiers)


async def test_a_position_opened_at_more_leverage_is_liquidated_closer_to_its_entry(
    venue: VenueHarness,
) -> None:
    ex = venue.exchange
    liquidations = []
    for n, leverage in enumerate((Decimal(5), Decimal(25))):
        await ex.set_leverage(SYMBOL, leverage)
        buy = await ex.create_market_order(
            SYMBOL, OrderSide.BUY, QTY, client_order_id=f"tc-l{n}-e0"
        )
        assert isinstance(buy, Accepted), buy
        (position,) = await ex.fetch_positions()
        assert position.liquidation_price is not None
        assert 0 < position.liquidation_price < position.entry_price
        liquidations.append(position.liquidation_price)
        sell = await ex.create_market_order(
            SYMBOL, OrderSide.SELL, QTY, client_order_id=f"tc-l{n}-x0", reduce_only=True
        )
        assert isinstance(sell, Accepted), sell
    assert liquidations[0] < liquidations[1]
