"""The JSON boundary: one cattrs converter for events, spool lines and stored state.

Decimal travels as its exact string in positional notation (never a float), datetime as
ISO 8601, UUID as its string, enums as their value. cattrs has no Decimal hooks of its own;
they are registered here, once.
"""

import json
import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any

import cattrs

from tradecore.domain.model import Venue


def plain_decimal(value: Decimal) -> str:
    """The exact value in positional notation (`0.00000001234`, never `1.234E-8`)."""
    return format(value, "f")


def _structure_decimal(value: object, _: type) -> Decimal:
    # A float here would mean the exact value was already lost upstream: refuse it.
    if isinstance(value, str | int) and not isinstance(value, bool):
        return Decimal(value)
    if isinstance(value, Decimal):
        return value
    raise ValueError(f"a Decimal must be stored as a string, got {type(value).__name__}")


def _structure_datetime(value: object, _: type) -> datetime:
    if isinstance(value, datetime):
        return value
    if isinstance(value, str):
        return datetime.fromisoformat(value)
    raise ValueError(f"a datetime must be an ISO 8601 string, got {type(value).__name__}")


def _structure_uuid(value: object, _: type) -> uuid.UUID:
    if isinstance(value, uuid.UUID):
        return value
    if isinstance(value, str):
        return uuid.UUID(value)
    raise ValueError(f"a UUID must be a string, got {type(value).__name__}")


def make_json_converter() -> cattrs.Converter:
    """A converter whose unstructured output `json.dumps` accepts as is."""
    converter = cattrs.Converter()
    converter.register_unstructure_hook(Decimal, plain_decimal)
    converter.register_structure_hook(Decimal, _structure_decimal)
    converter.register_unstructure_hook(datetime, datetime.isoformat)
    converter.register_structure_hook(datetime, _structure_datetime)
    converter.register_unstructure_hook(uuid.UUID, str)
    converter.register_structure_hook(uuid.UUID, _structure_uuid)
    # a venue is an open set of strings (not an enum): out as its plain name, in by its name
    converter.register_unstructure_hook(Venue, str)
    converter.register_structure_hook(Venue, lambda value, _: Venue(value))
    return converter


JSON = make_json_converter()


def _default(value: Any) -> Any:
    """What `json` cannot encode itself: the converter's hooks (the hot ones inlined)."""
    if isinstance(value, Decimal):
        return plain_decimal(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    unstructured = JSON.unstructure(value)
    if isinstance(unstructured, set | frozenset):
        return list(unstructured)
    if unstructured is value:
        return str(value)  # unknown to the converter too: its text rather than a failure
    return unstructured


_ENCODER = json.JSONEncoder(separators=(",", ":"), default=_default)


def dumps(value: Any) -> str:
    """`value` as compact JSON through the converter, with NUL characters and lone
    surrogates replaced.

    PostgreSQL's text and jsonb cannot hold U+0000 nor an unpaired surrogate (a venue's
    message cut in the middle of an emoji), and UTF-8 cannot encode the latter: each becomes
    U+FFFD here rather than making a whole batch fail later. Unknown objects are written as
    their `str`.
    """
    text = _ENCODER.encode(value)
    if "\\u0000" in text or "\\ud" in text:
        text = _ENCODER.encode(_without_nul(JSON.unstructure(value)))
    return text


def clean_text(value: str | None) -> str | None:
    """`value` with NUL characters and lone surrogates replaced (PostgreSQL text cannot
    hold them; UTF-8 cannot encode a lone surrogate)."""
    if value is None:
        return value
    if not value.isascii():
        value = _paired(value)
    if "\x00" not in value:
        return value
    return value.replace("\x00", "\ufffd")


def _paired(value: str) -> str:
    """`value` with each lone surrogate as U+FFFD (pairs joined into their character)."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return value.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    return value


def _without_nul(value: Any) -> Any:
    if isinstance(value, str):
        return _paired(value).replace("\x00", "\ufffd")
    if isinstance(value, dict):
        return {_without_nul(k): _without_nul(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_without_nul(v) for v in value]
    return value
