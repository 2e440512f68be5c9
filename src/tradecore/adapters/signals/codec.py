"""From a raw frame or line to a JSON object, refusing anything that is not plain, exact JSON.

Field validation is the domain's job (`tradecore.domain.waves.parse_signal`); this module only
decides whether the bytes on the wire are a JSON object we are willing to hand it.
"""

import json
from collections.abc import Mapping
from decimal import Decimal
from enum import StrEnum
from typing import Any

import attrs

PREVIEW_CHARS = 512
MAX_FRAME_BYTES = 64 * 1024


class DecodeFailure(StrEnum):
    """Why a frame is not a JSON object (the `reason` of its `signal_rejected` event)."""

    BINARY_FRAME = "binary_frame"
    TOO_LARGE = "too_large"
    EMPTY = "empty"
    BAD_JSON = "bad_json"
    NOT_FINITE = "not_finite"
    DUPLICATE_KEY = "duplicate_key"
    BAD_UNICODE = "bad_unicode"
    TOO_DEEP = "too_deep"
    NOT_AN_OBJECT = "not_an_object"


@attrs.frozen(kw_only=True)
class Undecodable:
    """A frame that is not a JSON object: why, and a printable, truncated copy of it."""

    reason: DecodeFailure
    detail: str
    raw: str


class _Refused(ValueError):
    """Raised inside the JSON hooks; carries the rejection reason."""

    def __init__(self, reason: DecodeFailure, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


def preview(payload: str | bytes, limit: int = PREVIEW_CHARS) -> str:
    """A copy of `payload` safe to store in a journal: truncated, no NUL, valid UTF-8.

    PostgreSQL refuses NUL in text and jsonb, and a lone surrogate cannot be encoded, so both
    are escaped rather than passed on to break the event writer.
    """
    if isinstance(payload, bytes):
        text = payload[:limit].decode("utf-8", "backslashreplace")
    else:
        text = payload[:limit]
    text = text.encode("utf-8", "backslashreplace").decode("utf-8").replace("\x00", "\\x00")
    return text[:limit]  # escaping may have lengthened it


def decode_frame(
    payload: str | bytes, *, max_bytes: int = MAX_FRAME_BYTES
) -> Mapping[str, Any] | Undecodable:
    """Return the JSON object in a text frame, or why it is refused.

    Numbers with a fraction or exponent become `Decimal` (exact, any size); NaN and
    Infinity literals, duplicate keys, strings with NUL or lone surrogates, binary frames,
    oversized and overly deep documents are refused.
    """
    if isinstance(payload, bytes):
        detail = f"binary frame of {len(payload)} bytes; signals are JSON text frames"
        return _undecodable(DecodeFailure.BINARY_FRAME, detail, payload)
    size = len(payload.encode("utf-8", "surrogatepass"))
    if size > max_bytes:
        detail = f"frame of {size} bytes exceeds the {max_bytes} byte limit"
        return _undecodable(DecodeFailure.TOO_LARGE, detail, payload)
    if not payload.strip():
        return _undecodable(DecodeFailure.EMPTY, "empty frame", payload)
    return _loads(payload)


def _undecodable(reason: DecodeFailure, detail: str, payload: str | bytes) -> Undecodable:
    return Undecodable(reason=reason, detail=detail, raw=preview(payload))


def _loads(text: str) -> Mapping[str, Any] | Undecodable:
    try:
        value = json.loads(
            text,
            parse_float=Decimal,
            parse_constant=_refuse_constant,
            object_pairs_hook=_object_without_duplicates,
        )
    except _Refused as exc:
        return _undecodable(exc.reason, exc.detail, text)
    except RecursionError:
        return _undecodable(DecodeFailure.TOO_DEEP, "JSON nested too deeply", text)
    except ValueError as exc:  # JSONDecodeError, and int() refusing a 4300+ digit literal
        return _undecodable(DecodeFailure.BAD_JSON, f"not valid JSON: {exc}", text)
    if not isinstance(value, dict):
        detail = f"a signal must be a JSON object, got {type(value).__name__}"
        return _undecodable(DecodeFailure.NOT_AN_OBJECT, detail, text)
    return value


def _refuse_constant(name: str) -> Any:
    raise _Refused(DecodeFailure.NOT_FINITE, f"{name} is not a number; numbers must be finite")


def _object_without_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # Python keeps the last of two equal keys; a sender (or an attacker) may mean the first.
    result: dict[str, Any] = {}
    for key, value in pairs:
        _check_text(key)
        if key in result:
            raise _Refused(DecodeFailure.DUPLICATE_KEY, f"duplicate key {preview(key, 64)!r}")
        _check_strings(value)
        result[key] = value
    return result


def _check_strings(value: Any) -> None:
    # Objects were checked by their own hook; lists are walked down to the next object.
    if isinstance(value, str):
        _check_text(value)
    elif isinstance(value, list):
        for item in value:
            _check_strings(item)


def _check_text(text: str) -> None:
    if "\x00" in text:
        raise _Refused(DecodeFailure.BAD_UNICODE, "string contains a NUL character")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        detail = "string contains a lone surrogate (invalid unicode)"
        raise _Refused(DecodeFailure.BAD_UNICODE, detail) from None
