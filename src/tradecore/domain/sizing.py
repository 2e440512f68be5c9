"""Position sizing and the risk decision that comes before every open (SPEC §3).

`position_size_usd` is the position's NOTIONAL (quantity × mark price), not its margin: at
the defaults a position is worth 200 USDT and ties up 200 / 10 = 20 USDT of margin. The
earlier bot's reports (seeds 001, 002) name a fixed size and "balance-based" risk but never
say which of the two the number is; notional is the reading under which the size of a
position, its loss at the stop and the exposure limit do not change when the leverage does,
so the leverage only decides how much free balance an open needs.

The quantity is rounded DOWN to the step, so the sized notional never exceeds
`position_size_usd`; a size the venue would refuse (below one step, `min_quantity` or
`min_notional`) is a rejection with a reason, never a returned quantity.
"""

from collections.abc import Callable, Iterable
from decimal import Decimal
from enum import StrEnum

import attrs

from tradecore.domain.errors import BelowMinimum, DomainError, InvalidNumber
from tradecore.domain.leverage import CONFIGURABLE_MARGIN_MODES, MarginMode
from tradecore.domain.numbers import ZERO, non_negative, positive
from tradecore.domain.positions import Position, PositionState
from tradecore.domain.precision import MarketRules, quantity_for

MAX_LEVERAGE = Decimal(125)  # Binance USDⓈ-M's highest; Bybit linear's is lower


def _size(value: object) -> Decimal:
    return positive(value, name="position_size_usd")


def _leverage(value: object) -> Decimal:
    leverage = positive(value, name="leverage")
    if not 1 <= leverage <= MAX_LEVERAGE:
        raise InvalidNumber(
            f"leverage must be from 1 to {MAX_LEVERAGE} (the venues' range), got {value!r}"
        )
    return leverage


def _margin_mode(value: object) -> MarginMode:
    allowed = ", ".join(repr(m.value) for m in CONFIGURABLE_MARGIN_MODES)
    try:
        mode = MarginMode(str(value).strip().lower())
    except ValueError:
        mode = None
    if mode not in CONFIGURABLE_MARGIN_MODES:
        raise DomainError(f"margin_mode = {value!r} is not allowed; use one of {allowed}")
    return mode


def _exposure(value: object) -> Decimal:
    return positive(value, name="max_exposure_usd")


def _whole(minimum: int) -> "Callable[[object, attrs.Attribute[int], int], None]":
    def check(_: object, attribute: "attrs.Attribute[int]", value: int) -> None:
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise InvalidNumber(
                f"{attribute.name} must be a whole number >= {minimum}, got {value!r}"
            )

    return check


def _exposure_now(value: object) -> Decimal:
    return non_negative(value, name="exposure_usd")


def _free_balance(value: object) -> Decimal:
    return non_negative(value, name="free_balance")


@attrs.frozen(kw_only=True)
class SizingParams:
    """How big a position is and how much risk the account may carry (SPEC §3 defaults)."""

    position_size_usd: Decimal = attrs.field(default=Decimal(200), converter=_size)
    # set on each symbol before its first entry; sizing uses what the venue confirms
    leverage: Decimal = attrs.field(default=Decimal(10), converter=_leverage)
    margin_mode: MarginMode = attrs.field(default=MarginMode.ISOLATED, converter=_margin_mode)
    max_open_positions: int = attrs.field(default=20, validator=_whole(1))
    # The sum of open notionals; the default lets every allowed position be open at full size.
    max_exposure_usd: Decimal = attrs.field(default=Decimal(4000), converter=_exposure)


class RiskReason(StrEnum):
    """Why an open is refused; each maps to a `signal_filtered` / `risk_limits_exceeded` event."""

    MARKET_INACTIVE = "market_inactive"
    LEVERAGE_ABOVE_MAXIMUM = "leverage_above_maximum"
    MAX_OPEN_POSITIONS = "max_open_positions"
    BELOW_MIN_QUANTITY = "below_min_quantity"
    BELOW_MIN_NOTIONAL = "below_min_notional"
    MAX_EXPOSURE = "max_exposure"
    INSUFFICIENT_BALANCE = "insufficient_balance"


@attrs.frozen(kw_only=True)
class AccountRisk:
    """What the account already carries when an open is considered."""

    open_positions: int = attrs.field(validator=_whole(0))
    exposure_usd: Decimal = attrs.field(converter=_exposure_now)
    free_balance: Decimal = attrs.field(converter=_free_balance)


@attrs.frozen(kw_only=True)
class Accepted:
    """Open `quantity` (a multiple of the step) worth `notional`, tying up `margin`."""

    quantity: Decimal
    mark_price: Decimal
    notional: Decimal
    margin: Decimal


@attrs.frozen(kw_only=True)
class Rejected:
    """Do not open; `detail` says why in numbers an operator can check."""

    reason: RiskReason
    detail: str


RiskDecision = Accepted | Rejected


def exposure_of(positions: Iterable[Position], params: SizingParams) -> Decimal:
    """The notional the account may carry in `positions` (every one not closed yet).

    A filled position counts its quantity at its entry price, whatever stage its open is in.
    An entry whose fill is not known yet (`PENDING_ENTRY`: sent, its answer lost or the
    venue not listing it yet) may well be open on the venue: it counts as a full
    `position_size_usd`, the notional its sizing allowed, until it is resolved."""
    total = ZERO
    for position in positions:
        if position.state.is_terminal:
            continue
        if position.entry_price is not None and position.quantity > ZERO:
            total += position.quantity * position.entry_price
        elif position.state is PositionState.PENDING_ENTRY:
            total += params.position_size_usd
    return total


def sized_quantity(params: SizingParams, rules: MarketRules, mark_price: object) -> Decimal:
    """The quantity worth at most `position_size_usd` at `mark_price`, floored to the step.

    Raises BelowMinimum when that is less than one step or the market's minimum quantity.
    It does not check `min_notional`; `decide` does.
    """
    mark = positive(mark_price, name="mark_price")
    quantity = quantity_for(rules, params.position_size_usd / mark)
    # The division is rounded to 28 digits and may land a hair above a step boundary.
    if quantity * mark > params.position_size_usd:
        quantity = quantity_for(rules, quantity - rules.step_size)
    return quantity


def decide(
    params: SizingParams, rules: MarketRules, mark_price: object, account: AccountRisk
) -> RiskDecision:
    """Accept an open of one position on `rules.symbol` at `mark_price`, or say why not.

    Checks, in order: market active, leverage allowed, room for another position, the
    size the venue accepts (step, minimum quantity, minimum notional), total exposure,
    and free balance for the margin.
    """
    mark = positive(mark_price, name="mark_price")
    refusal = _market_refusal(params, rules) or _count_refusal(params, account)
    if refusal is not None:
        return refusal
    try:
        quantity = sized_quantity(params, rules, mark)
    except BelowMinimum as error:
        return Rejected(reason=RiskReason.BELOW_MIN_QUANTITY, detail=str(error))
    notional = quantity * mark
    margin = notional / params.leverage
    refusal = _notional_refusal(rules, notional) or _account_refusal(
        params, account, notional, margin
    )
    if refusal is not None:
        return refusal
    return Accepted(quantity=quantity, mark_price=mark, notional=notional, margin=margin)


def _market_refusal(params: SizingParams, rules: MarketRules) -> Rejected | None:
    if not rules.active:
        return Rejected(reason=RiskReason.MARKET_INACTIVE, detail=f"{rules.symbol} is not trading")
    if params.leverage > rules.max_leverage:
        return Rejected(
            reason=RiskReason.LEVERAGE_ABOVE_MAXIMUM,
            detail=(
                f"{rules.symbol} allows at most {rules.max_leverage}x leverage, "
                f"configured {params.leverage}x"
            ),
        )
    return None


def _count_refusal(params: SizingParams, account: AccountRisk) -> Rejected | None:
    if account.open_positions >= params.max_open_positions:
        return Rejected(
            reason=RiskReason.MAX_OPEN_POSITIONS,
            detail=(
                f"{account.open_positions} positions open, the limit is {params.max_open_positions}"
            ),
        )
    return None


def _notional_refusal(rules: MarketRules, notional: Decimal) -> Rejected | None:
    if notional < rules.min_notional:
        return Rejected(
            reason=RiskReason.BELOW_MIN_NOTIONAL,
            detail=(
                f"{rules.symbol}: notional {notional} is below the minimum {rules.min_notional}"
            ),
        )
    return None


def _account_refusal(
    params: SizingParams, account: AccountRisk, notional: Decimal, margin: Decimal
) -> Rejected | None:
    if account.exposure_usd + notional > params.max_exposure_usd:
        return Rejected(
            reason=RiskReason.MAX_EXPOSURE,
            detail=(
                f"exposure would be {account.exposure_usd + notional} USDT, "
                f"the limit is {params.max_exposure_usd}"
            ),
        )
    if margin > account.free_balance:
        return Rejected(
            reason=RiskReason.INSUFFICIENT_BALANCE,
            detail=(
                f"the margin {margin} USDT ({notional} at {params.leverage}x) "
                f"exceeds the free balance {account.free_balance}"
            ),
        )
    return None
