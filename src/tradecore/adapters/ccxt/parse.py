"""Reading the venues' raw JSON (ccxt's `info`) exactly: strings to Decimal, never float.

ccxt's unified fields are floats; its `info` keeps the venue's own strings, so every number
tradecore reads comes from there. These are the venue-neutral pieces; each venue's readers
(its orders, positions, balance, fills) are in its dialect module (`venues/<venue>.py`).
"""

from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from tradecore.domain.model import OrderSide
from tradecore.domain.numbers import ZERO

Raw = Mapping[str, Any]


class Unreadable(ValueError):
    """The venue sent something that does not parse; the text carries the raw payload."""


def dec(value: object, *, name: str = "number") -> Decimal:
    """An exact Decimal from the venue's text (or int); floats never reach here."""
    if isinstance(value, (bool, float)):
        raise Unreadable(f"{name}: expected a decimal string, got {value!r}")
    try:
        result = Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        raise Unreadable(f"{name}: not a number: {str(value)[:200]!r}") from None
    if not result.is_finite():
        raise Unreadable(f"{name}: not finite: {value!r}")
    return result


def opt_dec(value: object) -> Decimal | None:
    """A Decimal, or None for the venues' spellings of 'none' ("", "0", null)."""
    if value in (None, ""):
        return None
    result = dec(value)
    return None if result == ZERO else result


def obj(value: object, name: str) -> Mapping[str, Any]:
    """A JSON object the venue must have sent; a missing one reads as empty."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise Unreadable(f"{name}: expected an object, got {str(value)[:200]!r}")
    return value


def objects(value: object, name: str) -> list[Mapping[str, Any]]:
    """A JSON list of objects; a missing one reads as empty."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise Unreadable(f"{name}: expected a list, got {str(value)[:200]!r}")
    return [obj(item, name) for item in value]


def time_of(ms: object) -> datetime | None:
    try:
        stamp = int(str(ms))
    except ValueError:
        return None
    return datetime.fromtimestamp(stamp / 1000, tz=UTC) if stamp > 0 else None


def side_of(raw: object) -> OrderSide:
    text = str(raw).lower()
    if text not in ("buy", "sell"):
        raise Unreadable(f"order side: {raw!r}")
    return OrderSide(text)


def required_time(ms: object, name: str) -> datetime:
    at = time_of(ms)
    if at is None:
        raise Unreadable(f"{name}: not a time in ms: {ms!r}")
    return at
