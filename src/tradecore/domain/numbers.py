"""Turning outside input into exact, finite `Decimal`s, with errors that name the field."""

from decimal import Decimal, InvalidOperation

from tradecore.domain.errors import InvalidNumber

ZERO = Decimal(0)
ONE = Decimal(1)
HUNDRED = Decimal(100)

Number = Decimal | int | str


def to_decimal(value: object, *, name: str) -> Decimal:
    """Return `value` as a finite Decimal.

    Accepts Decimal, int and numeric strings. A float is converted through its shortest
    repr (`0.1` -> `Decimal("0.1")`), never through its binary value. Booleans, NaN,
    infinities and anything else are refused with an error naming `name`.
    """
    if isinstance(value, bool):
        raise InvalidNumber(f"{name} must be a number, got the boolean {value!r}")
    if isinstance(value, Decimal):
        result = value
    elif isinstance(value, int):
        result = Decimal(value)
    elif isinstance(value, float):
        result = Decimal(repr(value))
    elif isinstance(value, str):
        try:
            result = Decimal(value.strip())
        except InvalidOperation:
            raise InvalidNumber(f"{name} must be a decimal number, got {value!r}") from None
    else:
        raise InvalidNumber(f"{name} must be a number, got {type(value).__name__} {value!r}")
    if not result.is_finite():
        raise InvalidNumber(f"{name} must be finite, got {value!r}")
    return result


def positive(value: object, *, name: str) -> Decimal:
    """Return `value` as a Decimal that is finite and strictly greater than zero."""
    result = to_decimal(value, name=name)
    if result <= ZERO:
        raise InvalidNumber(f"{name} must be greater than 0, got {value!r}")
    return result


def non_negative(value: object, *, name: str) -> Decimal:
    """Return `value` as a Decimal that is finite and not below zero."""
    result = to_decimal(value, name=name)
    if result < ZERO:
        raise InvalidNumber(f"{name} must not be negative, got {value!r}")
    return result


def percent(value: Decimal) -> Decimal:
    """`1.5` (percent) -> `0.015` (fraction)."""
    return value / HUNDRED
