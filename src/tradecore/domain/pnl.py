"""Realized PnL from the venue's own fills and funding payments.

The venue is the truth: a position's figures are what its fills (price, quantity, fee) and
the funding it paid or received add up to, never what the bot meant to do. On a one-way
account a symbol holds at most one position, so a position's fills are the fills on its
symbol from its first entry fill until the venue's quantity is back to zero (`position_fills`);
that takes in the bot's orders, a person's close on the website and a liquidation alike.

Signs: a fill's `fee` is what the account paid (a maker rebate is negative); a funding
payment's `amount` is what the account received (negative when it paid).
"""

from collections.abc import Iterable, Sequence
from datetime import datetime
from decimal import Decimal

import attrs

from tradecore.domain.errors import DomainError
from tradecore.domain.model import OrderSide, Side
from tradecore.domain.numbers import ZERO

SETTLE_ASSET = "USDT"  # the linear contracts' margin and settlement asset


@attrs.frozen(kw_only=True)
class Fill:
    """One execution of one order, as the venue's trade history reports it."""

    symbol: str
    order_id: str
    client_order_id: str | None
    side: OrderSide
    price: Decimal
    quantity: Decimal
    fee: Decimal
    fee_asset: str
    at: datetime
    trade_id: str | None = None


@attrs.frozen(kw_only=True)
class FundingPayment:
    """A funding settlement on the account's position in `symbol`."""

    symbol: str
    amount: Decimal  # received (+) or paid (-), in `asset`
    asset: str
    at: datetime
    payment_id: str | None = None


@attrs.frozen(kw_only=True)
class RealizedPnl:
    """What a position's fills and funding add up to.

    `gross` is the price move on the closed quantity; `fees` (paid, settle asset) and
    `funding` (received, settle asset) make it `realized = gross - fees + funding`.
    `other_fees` are fees charged in another asset (e.g. BNB), not converted, kept apart.
    """

    entry_price: Decimal | None
    exit_price: Decimal | None
    entry_quantity: Decimal
    exit_quantity: Decimal
    gross: Decimal
    fees: Decimal
    funding: Decimal
    realized: Decimal
    other_fees: tuple[tuple[str, Decimal], ...] = ()


def position_fills(
    fills: Iterable[Fill],
    side: Side,
    *,
    since: datetime | None = None,
    held: Decimal = ZERO,
) -> tuple[Fill, ...]:
    """The fills of the one position of `side` that begins at the first entry fill at or
    after `since`: up to and including the fill that brings its quantity back to zero.

    Fills of the other side before that first entry fill belong to an earlier position and
    are skipped — unless `held` says the position already held that much at `since` (one
    adopted from the venue). A fill that flips the position (more than it held) ends it."""
    ordered = sorted((f for f in fills if since is None or f.at >= since), key=lambda f: f.at)
    taken: list[Fill] = []
    for fill in ordered:
        if not taken and held <= ZERO and fill.side is not side.entry:
            continue
        taken.append(fill)
        held += fill.quantity if fill.side is side.entry else -fill.quantity
        if held <= ZERO:
            break
    return tuple(taken)


@attrs.frozen(kw_only=True)
class Traded:
    """What one order traded, as the venue's fills show it."""

    order_id: str
    client_order_id: str | None
    side: OrderSide
    quantity: Decimal
    average_price: Decimal  # volume-weighted over its fills


def traded(fills: Iterable[Fill], order_id: str) -> Traded | None:
    """What order `order_id` traded according to `fills`; None when they show none of it
    (it did not trade, or the venue does not list its fills yet)."""
    own = [f for f in fills if f.order_id == order_id and f.quantity > ZERO]
    if not own:
        return None
    quantity = sum((f.quantity for f in own), ZERO)
    return Traded(
        order_id=order_id,
        client_order_id=own[0].client_order_id,
        side=own[0].side,
        quantity=quantity,
        average_price=sum((f.price * f.quantity for f in own), ZERO) / quantity,
    )


def opened_after(fills: Iterable[Fill], order_id: str, side: Side, held: Decimal) -> bool | None:
    """Whether the position of `side` and quantity `held` the venue holds now was opened
    after the last fill of order `order_id` (a stop that filled): walked back from `held`,
    the account's fills on the symbol reach flat (or cross it, a flip) after that fill. None
    when the fills do not show that order (not listed yet).

    True: the stop closed what was held before it, and everything held now was traded later
    (a person's position, opened by hand — even after closing a rest by hand). False: some
    of what the venue holds was held when the stop filled (a stop for part of the position,
    or a person's addition made before it fired): still the position the stop protected."""
    ordered = sorted(fills, key=lambda f: f.at)  # stable: the venue's order within a moment
    last = max((i for i, f in enumerate(ordered) if f.order_id == order_id), default=None)
    if last is None:
        return None
    remaining = held
    for fill in reversed(ordered[last + 1 :]):
        remaining -= fill.quantity if fill.side is side.entry else -fill.quantity
        if remaining <= ZERO:
            return True
    return False


def realized_pnl(
    side: Side,
    fills: Sequence[Fill],
    funding: Iterable[FundingPayment] = (),
    *,
    entry_price: Decimal | None = None,
    entry_quantity: Decimal = ZERO,
) -> RealizedPnl:
    """The realized PnL of a position of `side` from its fills in time order.

    Entry-side fills raise the held quantity at a running average price; exit-side fills
    realize `sign * (price - average) * quantity`, so partial closes add up to the whole.
    `entry_price`/`entry_quantity` stand for a holding the fills do not show (a position
    adopted from the venue): exits are priced against it until entry fills say otherwise.
    An exit fill larger than what is held (a flip) counts for the held quantity only, with
    that share of its fee; the rest belongs to the position it opens.
    Raises DomainError for a fill of a non-positive quantity or price.
    """
    held, average = entry_quantity, entry_price or ZERO
    entry_cost, entry_total = ZERO, ZERO
    exit_cost, exit_total = ZERO, ZERO
    gross, fees = ZERO, ZERO
    other: dict[str, Decimal] = {}
    for fill in sorted(fills, key=lambda f: f.at):
        if fill.quantity <= ZERO or fill.price <= ZERO:
            raise DomainError(
                f"fill {fill.trade_id or fill.order_id}: quantity and price must be positive, "
                f"got {fill.quantity} at {fill.price}"
            )
        if fill.side is side.entry:
            fee = fill.fee
            average = (average * held + fill.price * fill.quantity) / (held + fill.quantity)
            held += fill.quantity
            entry_cost += fill.price * fill.quantity
            entry_total += fill.quantity
        else:
            # a fill larger than the position (a flip) closes only what was held: the rest of
            # its quantity and its fee open the next position, not this one
            closing = min(fill.quantity, held)
            fee = fill.fee if closing == fill.quantity else fill.fee * closing / fill.quantity
            gross += side.sign * (fill.price - average) * closing
            held -= closing
            exit_cost += fill.price * closing
            exit_total += closing
        if fill.fee_asset.upper() == SETTLE_ASSET:
            fees += fee
        else:
            other[fill.fee_asset] = other.get(fill.fee_asset, ZERO) + fee
    paid = sum((p.amount for p in funding if p.asset.upper() == SETTLE_ASSET), ZERO)
    return RealizedPnl(
        entry_price=entry_cost / entry_total if entry_total else entry_price,
        exit_price=exit_cost / exit_total if exit_total else None,
        entry_quantity=entry_total or entry_quantity,
        exit_quantity=exit_total,
        gross=gross,
        fees=fees,
        funding=paid,
        realized=gross - fees + paid,
        other_fees=tuple(sorted(other.items())),
    )
