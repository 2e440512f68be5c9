"""What differs between Binance USDⓈ-M and Bybit linear for the ccxt adapter, as data.

Behaviour that differs (algo orders, read-backs, position stops) lives in the adapter; the
values here are the venue facts it needs: capabilities, the ccxt options and order
parameters, the readers of each venue's raw JSON, and the code each venue gives for the
mistakes the adapter refuses before sending.
"""

from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

import attrs

from tradecore.adapters.ccxt import parse
from tradecore.domain.model import Venue
from tradecore.domain.numbers import ZERO
from tradecore.domain.orders import Balance, Order, VenuePosition
from tradecore.domain.precision import MarketRules
from tradecore.ports.exchange import Capabilities, Rejected, RejectReason

R = RejectReason


@attrs.frozen(kw_only=True)
class Refusals:
    """The venue's own code for each mistake the adapter refuses before sending.

    ccxt's `amount_to_precision` truncates and `price_to_precision` rounds, so an off-grid
    value must never reach it: the adapter refuses it with the code the venue would give.
    """

    unknown_symbol: tuple[str, str]  # (code, the venue's text)
    not_a_number: str
    quantity_not_positive: str
    price_not_positive: str
    stop_not_positive: str
    too_precise: str  # more decimals than the step or tick has
    off_step: str
    off_tick: str
    below_min_quantity: str
    order_not_found: tuple[str, str]  # an amend of an order the venue does not have open


@attrs.frozen(kw_only=True)
class CcxtProfile:
    venue: Venue
    capabilities: Capabilities
    refusals: Refusals
    options: Mapping[str, Any]  # ccxt client options
    order_params: Mapping[str, Any]  # sent with every order
    stop_params: Mapping[str, Any]  # what makes a stop trigger on the mark price
    mark_field: str  # the mark in the venue's stream message
    read_order: Callable[[Mapping[str, Any]], Order]
    read_position: Callable[[Mapping[str, Any]], VenuePosition | None]
    read_balance: Callable[[Mapping[str, Any]], Balance]


BINANCE = CcxtProfile(
    venue=Venue.BINANCE,
    capabilities=Capabilities(
        amend_stop=False, position_stop=False, amend_limit=True, max_conditional_orders=200
    ),
    refusals=Refusals(
        unknown_symbol=("-1121", "Invalid symbol."),
        not_a_number="-1100",
        quantity_not_positive="-4003",
        price_not_positive="-4001",
        stop_not_positive="-4006",
        too_precise="-1111",
        off_step="-4023",
        off_tick="-4014",
        below_min_quantity="-4004",
        order_not_found=("-2013", "Order does not exist."),
    ),
    options={"fetchCurrencies": False, "warnOnFetchOpenOrdersWithoutSymbol": False},
    order_params={},
    stop_params={"workingType": "MARK_PRICE"},  # ccxt routes the stop to /fapi/v1/algoOrder
    mark_field="p",
    read_order=lambda info: (
        parse.binance_algo(info) if "algoId" in info else parse.binance_order(info)
    ),
    read_position=parse.binance_position,
    read_balance=parse.binance_balance,
)

_BYBIT_PARAMS = "10001"  # Bybit answers every malformed value with "params error"

BYBIT = CcxtProfile(
    venue=Venue.BYBIT,
    capabilities=Capabilities(
        amend_stop=True,
        position_stop=True,
        amend_limit=True,
        max_conditional_orders=10,
        conditional_cap_per_symbol=True,
        # a unified account's margin mode is the account's (GET /v5/account/info marginMode)
        margin_mode_per_symbol=False,
    ),
    refusals=Refusals(
        unknown_symbol=(_BYBIT_PARAMS, "params error: symbol invalid"),
        not_a_number=_BYBIT_PARAMS,
        quantity_not_positive=_BYBIT_PARAMS,
        price_not_positive=_BYBIT_PARAMS,
        stop_not_positive=_BYBIT_PARAMS,
        too_precise=_BYBIT_PARAMS,
        off_step=_BYBIT_PARAMS,
        off_tick=_BYBIT_PARAMS,
        below_min_quantity=_BYBIT_PARAMS,
        order_not_found=("110001", "order not exists or too late to cancel"),
    ),
    options={"enableUnifiedAccount": True, "fetchMarkets": {"types": ["linear"]}},
    order_params={"positionIdx": 0},  # one-way mode, sent explicitly
    stop_params={"triggerBy": "MarkPrice"},  # ccxt sets triggerDirection from the side
    mark_field="markPrice",
    read_order=parse.bybit_order,
    read_position=parse.bybit_position,
    read_balance=parse.bybit_balance,
)

PROFILES = {Venue.BINANCE: BINANCE, Venue.BYBIT: BYBIT}


# ----------------------------------------------------------------- checks before sending


def _refuse(reason: RejectReason, code: str, message: str) -> Rejected:
    return Rejected(reason=reason, message=f"refused before sending: {message}", code=code)


def _finite(value: object) -> Decimal | None:
    if isinstance(value, bool) or not isinstance(value, (Decimal, int, str)):
        return None
    try:
        result = Decimal(value)
    except ArithmeticError:
        return None
    return result if result.is_finite() else None


def _exponent(value: Decimal) -> int:
    exponent = value.normalize().as_tuple().exponent
    return exponent if isinstance(exponent, int) else 0


def unknown_symbol(refusals: Refusals) -> Rejected:
    code, text = refusals.unknown_symbol
    return _refuse(R.UNKNOWN_SYMBOL, code, text)


def order_not_found(refusals: Refusals) -> Rejected:
    code, text = refusals.order_not_found
    return Rejected(reason=R.ORDER_NOT_FOUND, message=text, code=code)


def check_quantity(refusals: Refusals, rules: MarketRules, raw: object) -> Decimal | Rejected:
    """`raw` as the exact quantity to send, or the venue's refusal of it."""
    qty = _finite(raw)
    if qty is None:
        return _refuse(R.INVALID_QUANTITY, refusals.not_a_number, f"quantity {raw!r}")
    if qty <= ZERO:
        return _refuse(R.INVALID_QUANTITY, refusals.quantity_not_positive, f"quantity {qty}")
    if qty % rules.step_size != ZERO:
        precise = _exponent(qty) < _exponent(rules.step_size)
        return _refuse(
            R.INVALID_QUANTITY,
            refusals.too_precise if precise else refusals.off_step,
            f"quantity {qty} is not a multiple of the step {rules.step_size}",
        )
    if qty < rules.min_quantity:
        return _refuse(
            R.INVALID_QUANTITY,
            refusals.below_min_quantity,
            f"quantity {qty} is below the minimum {rules.min_quantity}",
        )
    return qty


def check_price(
    refusals: Refusals, rules: MarketRules, raw: object, *, stop: bool
) -> Decimal | Rejected:
    """`raw` as the exact price (or trigger) to send, or the venue's refusal of it."""
    price = _finite(raw)
    if price is None:
        return _refuse(R.INVALID_PRICE, refusals.not_a_number, f"price {raw!r}")
    if price <= ZERO:
        code = refusals.stop_not_positive if stop else refusals.price_not_positive
        return _refuse(R.INVALID_PRICE, code, f"price {price}")
    if price % rules.tick_size != ZERO:
        precise = _exponent(price) < _exponent(rules.tick_size)
        return _refuse(
            R.INVALID_PRICE,
            refusals.too_precise if precise else refusals.off_tick,
            f"price {price} is not a multiple of the tick {rules.tick_size}",
        )
    return price
