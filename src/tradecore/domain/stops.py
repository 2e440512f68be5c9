"""Where a position's stop goes: the initial stop, its adjustment, the emergency stop (SPEC §3).

A stop is rounded to the tick AWAY from the mark price (a long's stop down, a short's up),
so rounding can only widen it, never push it onto the wrong side of the mark. It is never
zero or negative: the smallest stop is one tick.

The emergency stop is the tighter of `emergency_stop_percent` and a level safely inside the
position's liquidation price: at 10x isolated a venue liquidates a long about 9.6 % under
its entry (less the maintenance margin), so a 10 % stop would never fire before the venue
closes the position itself, at a worse price. The bound is rounded toward the entry (it
only ever tightens), and keeps `liquidation_buffer_percent` of the entry-to-liquidation
distance between itself and the liquidation price.
"""

from decimal import Decimal
from enum import StrEnum

import attrs

from tradecore.domain.errors import InvalidNumber
from tradecore.domain.model import Side
from tradecore.domain.numbers import HUNDRED, ONE, ZERO, percent, positive
from tradecore.domain.precision import Rounding, round_price


def _below_hundred(value: object, name: str) -> Decimal:
    result = positive(value, name=name)
    if result >= HUNDRED:
        raise InvalidNumber(f"{name} must be below 100 (percent), got {value!r}")
    return result


def _stop_loss(value: object) -> Decimal:
    return _below_hundred(value, "stop_loss_percent")


def _mark_buffer(value: object) -> Decimal:
    return _below_hundred(value, "mark_buffer_percent")


def _emergency(value: object) -> Decimal:
    return _below_hundred(value, "emergency_stop_percent")


def _liquidation_buffer(value: object) -> Decimal:
    return _below_hundred(value, "liquidation_buffer_percent")


@attrs.frozen(kw_only=True)
class StopParams:
    """Distances in percent (SPEC §3 defaults)."""

    stop_loss_percent: Decimal = attrs.field(default=Decimal(3), converter=_stop_loss)
    # How far beyond the mark a stop goes when the planned one would trigger at once.
    mark_buffer_percent: Decimal = attrs.field(default=Decimal("0.5"), converter=_mark_buffer)
    emergency_stop_percent: Decimal = attrs.field(default=Decimal(10), converter=_emergency)
    # How much of the distance from the entry to the liquidation price an emergency stop
    # keeps between itself and the liquidation (20: a long at 100 liquidated at 90.4 gets
    # its emergency stop at 92.32 or tighter).
    liquidation_buffer_percent: Decimal = attrs.field(
        default=Decimal(20), converter=_liquidation_buffer
    )


@attrs.frozen(kw_only=True)
class StopPlan:
    """A stop price ready for the venue. `adjusted` when the mark forced it past the plan."""

    side: Side
    price: Decimal
    adjusted: bool = False


def away_from_mark(side: Side) -> Rounding:
    """The rounding that widens a stop of `side`: down below a long, up above a short."""
    return Rounding.DOWN if side is Side.LONG else Rounding.UP


def would_trigger(side: Side, stop_price: Decimal, mark_price: Decimal) -> bool:
    """True when a stop at `stop_price` fires at `mark_price` (at or beyond it)."""
    if side is Side.LONG:
        return mark_price <= stop_price
    return mark_price >= stop_price


def stop_at_distance(side: Side, reference: Decimal, distance_percent: Decimal) -> Decimal:
    """The unrounded price `distance_percent` from `reference` on the losing side of `side`."""
    return reference * (ONE - side.sign * percent(distance_percent))


def initial_stop(
    side: Side,
    fill_price: object,
    mark_price: object,
    tick_size: Decimal,
    params: StopParams | None = None,
) -> StopPlan:
    """The stop `stop_loss_percent` from the fill, moved past the mark if it would fire at once."""
    chosen = params or StopParams()
    return _stop(side, fill_price, mark_price, tick_size, chosen.stop_loss_percent, chosen)


class EmergencyBound(StrEnum):
    """What decided an emergency stop's level."""

    CONFIGURED = "configured"  # emergency_stop_percent (no liquidation known, or it is tighter)
    VENUE_LIQUIDATION = "venue_liquidation"  # inside the liquidation price the venue reports
    ESTIMATED_LIQUIDATION = "estimated_liquidation"  # inside the tier estimate (domain.leverage)


@attrs.frozen(kw_only=True)
class EmergencyPlan:
    """An emergency stop ready for the venue, and what decided it: `configured` is the
    level `emergency_stop_percent` alone gives, `liquidation` the price it is kept inside
    (None when unknown). `adjusted` when the mark forced the configured level past its plan."""

    side: Side
    price: Decimal
    bound: EmergencyBound
    configured: Decimal
    liquidation: Decimal | None = None
    adjusted: bool = False


def emergency_stop(
    side: Side,
    fill_price: object,
    mark_price: object,
    tick_size: Decimal,
    params: StopParams | None = None,
    *,
    liquidation: Decimal | None = None,
    estimated: bool = False,
) -> EmergencyPlan:
    """The wide stop placed when neither the normal stop nor a market close succeeded.

    `emergency_stop_percent` from the fill (past the mark if that would fire at once), or
    tighter: strictly inside `liquidation` (above a long's, below a short's) by
    `liquidation_buffer_percent` of the distance from the fill, rounded toward the fill.
    `liquidation` is the venue's own price for the position, or (`estimated`) the tier
    estimate; None or zero: no liquidation bound. When the mark has already run past that
    level (not past the liquidation), the level is taken the same way from the mark, so the
    stop does not fire on arrival. A mark at or past the liquidation leaves no level inside it
    that the venue would accept: the configured level (past the mark) is placed instead, so
    the returned level never triggers at `mark_price`. A short liquidated within one tick of
    zero cannot have a stop below it; it keeps the configured level."""
    chosen = params or StopParams()
    fill = positive(fill_price, name="fill_price")
    mark = positive(mark_price, name="mark_price")
    plan = _stop(side, fill, mark, tick_size, chosen.emergency_stop_percent, chosen)
    source = EmergencyBound.ESTIMATED_LIQUIDATION if estimated else EmergencyBound.VENUE_LIQUIDATION
    known = liquidation if liquidation is not None and liquidation > ZERO else None
    price = inside_liquidation(side, plan.price, fill, mark, known, tick_size, chosen)
    tighter = price != plan.price
    return EmergencyPlan(
        side=side,
        price=price,
        bound=source if tighter else EmergencyBound.CONFIGURED,
        configured=plan.price,
        liquidation=known,
        adjusted=plan.adjusted,
    )


def inside_liquidation(
    side: Side,
    stop: Decimal,
    reference: Decimal,
    mark: Decimal,
    liquidation: Decimal | None,
    tick_size: Decimal,
    params: StopParams | None = None,
) -> Decimal:
    """`stop`, or a tighter level when `stop` does not sit safely inside `liquidation`.

    The bound is strictly inside `liquidation` (above a long's, below a short's) by
    `liquidation_buffer_percent` of the distance from `reference` (the entry), rounded toward
    it; a stop already tighter than the bound is returned unchanged, so the result only ever
    tightens. When the mark has already run past the bound (not past the liquidation), the
    bound is taken the same way from the mark, so the stop does not fire on arrival. A mark at
    or past the liquidation leaves no level inside it that the venue would accept, and a short
    liquidated within one tick of zero has none below it: `stop` is returned unchanged. A
    liquidation of None or zero is unknown: `stop` unchanged. Every stop that protects a
    position (the emergency stop, an adopted or bare position's stop) is bounded here."""
    known = liquidation if liquidation is not None and liquidation > ZERO else None
    if known is None:
        return stop
    chosen = params or StopParams()
    bound = _inside(side, reference, known, tick_size, chosen)
    if bound is not None and would_trigger(side, bound, mark):
        # The mark has run past the level planned from the reference, not yet past the
        # liquidation: the same share of the mark's distance to it, so the stop can stand.
        short_of_liquidation = mark > known if side is Side.LONG else mark < known
        if short_of_liquidation:
            bound = _inside(side, mark, known, tick_size, chosen)
    if bound is None or would_trigger(side, bound, mark):
        # The mark is at or past the liquidation (an estimate that was off, a venue price
        # read before the mark): no level inside it can stand, and a refused stop leaves the
        # position bare. The stop as planned stands.
        return stop
    tighter = bound > stop if side is Side.LONG else bound < stop
    return bound if tighter else stop


def _inside(
    side: Side, fill: Decimal, liquidation: Decimal, tick_size: Decimal, params: StopParams
) -> Decimal | None:
    """The level `liquidation_buffer_percent` of the way from `liquidation` to `fill`,
    rounded toward the fill and strictly on the position's side of `liquidation`."""
    gap = abs(fill - liquidation) * percent(params.liquidation_buffer_percent)
    if side is Side.LONG:
        level = round_price(liquidation + gap, tick_size, Rounding.UP)
        return level if level > liquidation else level + tick_size
    if liquidation - gap <= ZERO:
        return None
    level = round_price(liquidation - gap, tick_size, Rounding.DOWN)
    if level >= liquidation:
        level -= tick_size
    return level if level > ZERO else None


def _stop(
    side: Side,
    fill_price: object,
    mark_price: object,
    tick_size: Decimal,
    distance_percent: Decimal,
    params: StopParams,
) -> StopPlan:
    fill = positive(fill_price, name="fill_price")
    mark = positive(mark_price, name="mark_price")
    rounding = away_from_mark(side)
    planned = round_price(stop_at_distance(side, fill, distance_percent), tick_size, rounding)
    if not would_trigger(side, planned, mark):
        return StopPlan(side=side, price=planned)
    beyond = stop_at_distance(side, mark, params.mark_buffer_percent)
    # A long marked within a tick of zero keeps the one-tick floor and still triggers;
    # the caller sees `would_trigger` and closes at market instead.
    price = round_price(beyond, tick_size, rounding)
    return StopPlan(side=side, price=price, adjusted=True)
