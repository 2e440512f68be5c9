"""Realized PnL from the venue's fills and funding (domain, pure)."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tradecore.domain.errors import DomainError
from tradecore.domain.model import OrderSide, Side
from tradecore.domain.pnl import (
    Fill,
    FundingPayment,
    opened_after,
    position_fills,
    realized_pnl,
    traded,
)

T0 = datetime(2026, 1, 1, tzinfo=UTC)
D = Decimal


def fill(
    side: OrderSide,
    price: str | Decimal,
    qty: str | Decimal,
    *,
    fee: str = "0",
    at: int = 0,
    asset: str = "USDT",
) -> Fill:
    return Fill(
        symbol="BTCUSDT",
        order_id=f"o{at}",
        client_order_id=None,
        side=side,
        price=D(price),
        quantity=D(qty),
        fee=D(fee),
        fee_asset=asset,
        at=T0 + timedelta(seconds=at),
    )


BUY, SELL = OrderSide.BUY, OrderSide.SELL
prices = st.decimals(min_value=D("0.01"), max_value=D("100000"), places=2)
quantities = st.decimals(min_value=D("0.001"), max_value=D("1000"), places=3)
fees = st.decimals(min_value=D("0"), max_value=D("50"), places=4)


def test_a_long_closed_higher_makes_the_move_times_quantity_less_both_fees() -> None:
    result = realized_pnl(
        Side.LONG, [fill(BUY, "100", "2", fee="0.1"), fill(SELL, "110", "2", fee="0.11", at=1)]
    )
    assert result.exit_price == D("110")
    assert result.gross == D("20")
    assert result.fees == D("0.21")
    assert result.realized == D("19.79")


def test_funding_received_adds_and_funding_paid_takes_away() -> None:
    fills = [fill(SELL, "100", "1"), fill(BUY, "90", "1", at=1)]
    paid = FundingPayment(symbol="BTCUSDT", amount=D("-0.5"), asset="USDT", at=T0)
    got = FundingPayment(symbol="BTCUSDT", amount=D("0.2"), asset="USDT", at=T0)
    assert realized_pnl(Side.SHORT, fills, [paid, got]).realized == D("9.7")


def test_fees_in_another_asset_are_kept_apart_not_added_to_usdt() -> None:
    result = realized_pnl(
        Side.LONG, [fill(BUY, "100", "1", fee="0.01", asset="BNB"), fill(SELL, "100", "1", at=1)]
    )
    assert result.fees == 0 and result.other_fees == (("BNB", D("0.01")),)


def test_a_fill_of_no_quantity_is_refused_with_a_clear_error() -> None:
    with pytest.raises(DomainError, match="quantity and price must be positive"):
        realized_pnl(Side.LONG, [fill(BUY, "100", "0")])


def test_an_adopted_position_prices_its_exits_against_the_venues_entry() -> None:
    result = realized_pnl(
        Side.LONG, [fill(SELL, "120", "1", at=1)], entry_price=D("100"), entry_quantity=D("1")
    )
    assert result.realized == D("20") and result.entry_price == D("100")


def test_the_positions_fills_start_at_its_entry_and_end_when_it_is_flat() -> None:
    earlier_exit = fill(SELL, "99", "1", at=0)  # the end of the position before
    entry = fill(BUY, "100", "2", at=1)
    part = fill(SELL, "101", "1", at=2)
    rest = fill(SELL, "102", "1", at=3)
    next_entry = fill(BUY, "103", "1", at=4)  # the next position on the symbol
    found = position_fills([next_entry, rest, part, entry, earlier_exit], Side.LONG)
    assert found == (entry, part, rest)


@given(entry=prices, exit_=prices, qty=quantities)
def test_a_long_and_a_short_over_the_same_prices_are_mirror_images(
    entry: Decimal, exit_: Decimal, qty: Decimal
) -> None:
    long = realized_pnl(Side.LONG, [fill(BUY, entry, qty), fill(SELL, exit_, qty, at=1)])
    short = realized_pnl(Side.SHORT, [fill(SELL, entry, qty), fill(BUY, exit_, qty, at=1)])
    assert long.gross == -short.gross
    assert long.realized + short.realized == 0


@given(entry=prices, exit_=prices, qty=quantities, fee_in=fees, fee_out=fees, long=st.booleans())
def test_fees_never_add_to_the_pnl(
    entry: Decimal, exit_: Decimal, qty: Decimal, fee_in: Decimal, fee_out: Decimal, long: bool
) -> None:
    side = Side.LONG if long else Side.SHORT
    free = realized_pnl(side, [fill(side.entry, entry, qty), fill(side.exit, exit_, qty, at=1)])
    paid = realized_pnl(
        side,
        [
            fill(side.entry, entry, qty, fee=str(fee_in)),
            fill(side.exit, exit_, qty, fee=str(fee_out), at=1),
        ],
    )
    assert paid.realized == free.realized - fee_in - fee_out
    assert paid.realized <= free.realized


@given(
    entry=prices,
    exits=st.lists(st.tuples(prices, quantities), min_size=1, max_size=6),
    long=st.booleans(),
)
def test_partial_closes_add_up_to_the_whole(
    entry: Decimal, exits: list[tuple[Decimal, Decimal]], long: bool
) -> None:
    side = Side.LONG if long else Side.SHORT
    total = sum((q for _, q in exits), D(0))
    opened = fill(side.entry, entry, total)
    closes = [fill(side.exit, p, q, at=i + 1) for i, (p, q) in enumerate(exits)]
    whole = realized_pnl(side, [opened, *closes])
    pieces = sum(
        (
            realized_pnl(side, [fill(side.entry, entry, q), c]).realized
            for (_, q), c in zip(exits, closes, strict=True)
        ),
        D(0),
    )
    assert whole.realized == pieces
    assert whole.exit_quantity == total
    assert position_fills([opened, *closes], side) == (opened, *closes)


def test_a_long_flipped_by_one_fill_is_settled_for_its_own_half_of_that_fill() -> None:
    # long 1 at 100, then a sell of 2 at 110: 1 closes the long, 1 opens a short
    result = realized_pnl(
        Side.LONG, [fill(BUY, "100", "1", fee="0.1"), fill(SELL, "110", "2", fee="0.22", at=1)]
    )
    assert result.exit_quantity == D("1")
    assert result.exit_price == D("110")
    assert result.gross == D("10")
    assert result.fees == D("0.21")  # its entry's fee and half the flip's
    assert result.realized == D("9.79")


@given(
    entry=prices,
    exit_=prices,
    qty=quantities,
    extra=quantities,
    fee_in=fees,
    fee_out=fees,
    long=st.booleans(),
)
def test_a_flip_settles_the_position_for_its_own_quantity_and_share_of_the_fee(
    entry: Decimal,
    exit_: Decimal,
    qty: Decimal,
    extra: Decimal,
    fee_in: Decimal,
    fee_out: Decimal,
    long: bool,
) -> None:
    side = Side.LONG if long else Side.SHORT
    opened = fill(side.entry, entry, qty, fee=str(fee_in))
    flip = realized_pnl(side, [opened, fill(side.exit, exit_, qty + extra, fee=str(fee_out), at=1)])
    exact = realized_pnl(side, [opened, fill(side.exit, exit_, qty, at=1)])
    assert flip.exit_quantity == qty == flip.entry_quantity
    assert flip.exit_price == exit_
    assert flip.gross == exact.gross
    # the fee counted is the closing share of the flip's fee: never the whole, never more
    share = flip.fees - fee_in
    assert 0 <= share <= fee_out
    assert abs(share * (qty + extra) - fee_out * qty) < D("1e-18")
    assert flip.realized == exact.realized - share


@given(
    entry=prices,
    fills=st.lists(st.tuples(st.booleans(), prices, quantities), min_size=1, max_size=8),
    long=st.booleans(),
)
def test_the_closed_quantity_never_exceeds_what_the_position_held(
    entry: Decimal, fills: list[tuple[bool, Decimal, Decimal]], long: bool
) -> None:
    side = Side.LONG if long else Side.SHORT
    steps = [
        fill(side.entry if adds else side.exit, price, qty, at=i + 1)
        for i, (adds, price, qty) in enumerate(fills)
    ]
    result = realized_pnl(side, [fill(side.entry, entry, D(1)), *steps])
    assert result.exit_quantity <= result.entry_quantity


# -- whose position the venue holds after a stop filled (opened_after) ----------------------

STOP = "o2"  # the stop's fill, at=2


@pytest.mark.parametrize(
    ("fills", "held", "expected"),
    [
        # the bot's entry, its stop, a person's buy: the venue's 0.01 is the person's
        (
            [
                fill(BUY, "50000", "0.01"),
                fill(SELL, "48500", "0.01", at=2),
                fill(BUY, "48400", "0.01", at=3),
            ],
            "0.01",
            True,
        ),
        # a smaller re-open, a larger one
        (
            [
                fill(BUY, "50000", "0.01"),
                fill(SELL, "48500", "0.01", at=2),
                fill(BUY, "48400", "0.004", at=3),
            ],
            "0.004",
            True,
        ),
        # a person added before the stop fired: the rest was held when it filled
        (
            [
                fill(BUY, "50000", "0.01"),
                fill(BUY, "49000", "0.01", at=1),
                fill(SELL, "48500", "0.01", at=2),
            ],
            "0.01",
            False,
        ),
        # ... then closed the rest by hand and bought again: the person's
        (
            [
                fill(BUY, "50000", "0.01"),
                fill(BUY, "49000", "0.01", at=1),
                fill(SELL, "48500", "0.01", at=2),
                fill(SELL, "48400", "0.01", at=3),
                fill(BUY, "48400", "0.01", at=4),
            ],
            "0.01",
            True,
        ),
        # the rest with a little added after the stop: partly the bot's
        (
            [
                fill(BUY, "50000", "0.01"),
                fill(BUY, "49000", "0.01", at=1),
                fill(SELL, "48500", "0.01", at=2),
                fill(BUY, "48400", "0.005", at=3),
            ],
            "0.015",
            False,
        ),
        # a flip by hand after the stop (sold 0.02 then bought 0.03): long 0.01 opened after it
        (
            [
                fill(BUY, "50000", "0.01"),
                fill(SELL, "48500", "0.01", at=2),
                fill(SELL, "48400", "0.02", at=3),
                fill(BUY, "48300", "0.03", at=4),
            ],
            "0.01",
            True,
        ),
    ],
)
def test_a_position_is_opened_after_a_stop_when_the_fills_since_it_reach_flat(
    fills: list[Fill], held: str, expected: bool
) -> None:
    assert opened_after(fills, STOP, Side.LONG, D(held)) is expected


def test_a_stop_the_fills_do_not_list_yet_leaves_it_unknown() -> None:
    fills = [fill(BUY, "50000", "0.01"), fill(BUY, "48400", "0.01", at=3)]
    assert opened_after(fills, STOP, Side.LONG, D("0.01")) is None


# -- whether one of the bot's orders traded, per the fills (traded) -------------------------


def test_an_order_that_traded_in_parts_is_its_fills_summed_at_their_average_price() -> None:
    stop = [
        attrs.evolve(fill(SELL, "48500", "0.006", at=2), client_order_id="s1"),
        attrs.evolve(fill(SELL, "48400", "0.004", at=3), order_id="o2"),
    ]
    fills = [fill(BUY, "50000", "0.01"), *stop, fill(BUY, "48300", "0.01", at=4)]

    found = traded(fills, STOP)

    assert found is not None
    assert (found.side, found.client_order_id) == (SELL, "s1")
    assert found.quantity == D("0.01")
    assert found.average_price == D("48460")


def test_an_order_the_fills_do_not_show_did_not_trade() -> None:
    fills = [fill(BUY, "50000", "0.01"), fill(SELL, "48400", "0.01", at=3)]
    assert traded(fills, STOP) is None
