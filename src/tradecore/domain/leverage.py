"""Leverage, margin mode and where an isolated position is liquidated (SPEC §3).

An isolated position's margin is its notional over the leverage. It is liquidated when its
equity (that margin plus the unrealized PnL) falls to the maintenance margin the venue's
risk tier asks at that price: `quantity × price × rate − amount`, where `rate` and `amount`
are the tier's maintenance margin rate and deduction (Binance `maintMarginRatio` and `cum`,
GET /fapi/v1/leverageBracket; Bybit `maintenanceMargin` and `mmDeduction`,
GET /v5/market/risk-limit). Solved for the price, fees and funding left out:

    long:  P = (E × (1 − 1/L) − amount/q) / (1 − rate)
    short: P = (E × (1 + 1/L) + amount/q) / (1 + rate)

Binance's own "Liquidation Price Calculation" for one isolated position is this formula.
It is an estimate made before the entry: the venue's own `liquidationPrice`, read after
the fill, is the one the bot acts on if they differ.

A position whose liquidation comes before its stop (above a long's stop, below a short's)
is not protected by that stop at all: the venue closes it first, at a worse price.
"""

from collections.abc import Iterable
from decimal import Decimal
from enum import StrEnum

import attrs

from tradecore.domain.errors import DomainError
from tradecore.domain.model import Side
from tradecore.domain.numbers import ONE, ZERO, non_negative, positive


class MarginMode(StrEnum):
    """How a position's margin is held. PORTFOLIO is a mode a Bybit account may be in and
    tradecore does not trade in (only read from the venue, never configured)."""

    ISOLATED = "isolated"
    CROSS = "cross"
    PORTFOLIO = "portfolio"


CONFIGURABLE_MARGIN_MODES = (MarginMode.ISOLATED, MarginMode.CROSS)


def _rate(value: object) -> Decimal:
    rate = non_negative(value, name="maintenance_rate")
    if rate >= ONE:
        raise DomainError(f"maintenance_rate must be below 1, got {value!r}")
    return rate


@attrs.frozen(kw_only=True)
class LeverageTier:
    """One risk bracket of a symbol: positions of notional in [min_notional, max_notional]
    may use up to `max_leverage` and need `maintenance_rate` × notional − `maintenance_amount`
    of maintenance margin."""

    min_notional: Decimal = attrs.field(converter=lambda v: non_negative(v, name="min_notional"))
    max_notional: Decimal = attrs.field(converter=lambda v: positive(v, name="max_notional"))
    max_leverage: Decimal = attrs.field(converter=lambda v: positive(v, name="max_leverage"))
    maintenance_rate: Decimal = attrs.field(converter=_rate)
    maintenance_amount: Decimal = attrs.field(
        default=ZERO, converter=lambda v: non_negative(v, name="maintenance_amount")
    )


def tier_for(tiers: Iterable[LeverageTier], notional: Decimal) -> LeverageTier | None:
    """The tier a position of `notional` falls in (the last one when it is beyond all)."""
    ordered = sorted(tiers, key=lambda t: t.max_notional)
    for tier in ordered:
        if notional <= tier.max_notional:
            return tier
    return ordered[-1] if ordered else None


def isolated_liquidation_price(
    side: Side,
    entry: object,
    quantity: object,
    leverage: object,
    tier: LeverageTier,
) -> Decimal:
    """Where an isolated position of `quantity` at `entry` and `leverage` is liquidated
    (never below zero)."""
    price = positive(entry, name="entry")
    size = positive(quantity, name="quantity")
    lever = positive(leverage, name="leverage")
    deduction = tier.maintenance_amount / size
    if side is Side.LONG:
        estimate = (price * (ONE - ONE / lever) - deduction) / (ONE - tier.maintenance_rate)
    else:
        estimate = (price * (ONE + ONE / lever) + deduction) / (ONE + tier.maintenance_rate)
    return max(estimate, ZERO)


def liquidated_before_stop(side: Side, liquidation: Decimal, stop: Decimal) -> bool:
    """True when the mark reaches the liquidation price no later than the stop: at or above a
    long's stop, at or below a short's. A liquidation price of zero (or none) is never."""
    if liquidation <= ZERO:
        return False
    return liquidation >= stop if side is Side.LONG else liquidation <= stop


@attrs.frozen(kw_only=True)
class LiquidationInsideStop:
    """An open refused: its estimated liquidation comes before its stop."""

    liquidation: Decimal
    stop: Decimal
    leverage: Decimal
    maintenance_rate: Decimal

    @property
    def detail(self) -> str:
        return (
            f"the estimated liquidation price {self.liquidation} comes before the stop "
            f"{self.stop} (isolated, {self.leverage}x, maintenance margin rate "
            f"{self.maintenance_rate}); lower trading.sizing.leverage"
        )


def liquidation_refusal(
    side: Side,
    entry: object,
    quantity: object,
    leverage: object,
    stop: Decimal,
    tiers: Iterable[LeverageTier],
) -> LiquidationInsideStop | None:
    """Refuse an isolated open whose estimated liquidation sits inside its stop, or None.

    With no tiers known the estimate cannot be made: None (the venue's own liquidation
    price is checked after the fill)."""
    notional = positive(entry, name="entry") * positive(quantity, name="quantity")
    tier = tier_for(tiers, notional)
    if tier is None:
        return None
    liquidation = isolated_liquidation_price(side, entry, quantity, leverage, tier)
    if not liquidated_before_stop(side, liquidation, stop):
        return None
    return LiquidationInsideStop(
        liquidation=liquidation,
        stop=stop,
        leverage=positive(leverage, name="leverage"),
        maintenance_rate=tier.maintenance_rate,
    )
