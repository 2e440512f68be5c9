"""A corpus of malformed and hostile frames: each one is rejected with an event, none stops
the client, and a good signal sent after the whole corpus still arrives."""

import asyncio
import json
from collections import deque
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from tradecore.adapters.signals.intake import Intake
from tradecore.adapters.signals.journal import SignalJournal
from tradecore.adapters.signals.websocket import WebSocketSettings, WebSocketSignalSource
from tradecore.domain.events import EventType
from tradecore.domain.signals import Signal
from tradecore.testing import EventLog, SequentialIds


class FixedClock:
    def now(self) -> datetime:
        return datetime(2026, 1, 1, tzinfo=UTC)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)  # reconnects after a closing frame: a real (tiny) wait


GOOD: dict[str, Any] = {
    "id": "good-1",
    "symbol": "BTCUSDT",
    "exchange": "binance",
    "action": "BUY",
    "score_week": 71.5,
    "score_month": 60,
    "timestamp": "2026-01-01T08:45:00Z",
    "created_at": "2026-01-01T08:46:10Z",
}


def good(**changes: Any) -> dict[str, Any]:
    return {**GOOD, **changes}


def text(body: dict[str, Any]) -> str:
    return json.dumps(body)


def without(field: str) -> str:
    return text({key: value for key, value in GOOD.items() if key != field})


# ------------------------------------------------------------------------------ the corpus
# Each entry: (frame, the rejection reason it must produce). A frame marked CLOSES makes
# the websockets library itself close the connection (it is never handed to our code).

CLOSES = "closes"

SYNTAX = [
    "{",
    "}",
    "[",
    '{"id": }',
    '{"id": "a",}',
    "{'id': 'a'}",
    "{id: 1}",
    '{"id": "a"} {"id": "b"}',
    '{"id": "a"}]',
    "nul",
    "tru",
    "undefined",
    "0x1F",
    "01",
    "+1",
    ".5",
    "1.",
    "--1",
    "\ufeff" + text(GOOD),  # a byte-order mark is not JSON
    '{"id": "a\tb"}',  # a raw control character inside a string
    '{"id": "\\x41"}',
    '{"id": "\\u12"}',
    "<signal id='1'/>",
    "id=1&symbol=BTCUSDT",
    "// comment\n" + text(GOOD),
    '{"score_week": 1e}',
    '{"a": [1, 2}',
    '"unterminated',
    text(GOOD)[:-1],
    text(GOOD) + "garbage",
    "1" * 5000,  # an integer literal longer than Python converts
    text(good(score_week=1)).replace("1,", "1" * 5000 + ",", 1),
]
NOT_OBJECTS = [
    "null",
    "true",
    "false",
    "0",
    "-1.5",
    "1e999",
    '"BTCUSDT"',
    "[]",
    "[" + text(GOOD) + "]",
    '[null, {"id": 1}]',
]
NOT_FINITE = (
    [text(GOOD).replace("71.5", literal, 1) for literal in ("NaN", "Infinity", "-Infinity")]
    + [text(GOOD).replace("60", literal, 1) for literal in ("NaN", "Infinity", "-Infinity")]
    + [
        '{"id": NaN}',
        '{"nested": {"deep": [Infinity]}}',
        text(GOOD).replace('"2026-01-01T08:45:00Z"', "NaN", 1),
    ]
)
DUPLICATE_KEYS = [
    '{"id": "a", "id": "b"}',
    text(GOOD)[:-1] + ', "score_week": 99}',
    text(GOOD)[:-1] + ', "symbol": "ETHUSDT"}',
    '{"x": {"k": 1, "k": 2}}',
]
BAD_UNICODE = [
    text(GOOD).replace("good-1", "\\ud800", 1),
    text(GOOD).replace("good-1", "a\\udfffb", 1),
    text(GOOD).replace("BTCUSDT", "BTC\\u0000USDT", 1),
    text(GOOD).replace("good-1", "good\\u0000", 1),
    '{"\\ud83d": 1}',
    '{"id": ["\\udc00"]}',
]
# Deeper than Python's recursion limit, yet under the 64 KiB frame limit.
TOO_DEEP = ["[" * 30_000 + "]" * 30_000, '{"a":' * 6_000 + "1" + "}" * 6_000]
EMPTY_FRAMES = ["", " ", "\n\t  \r\n"]
BINARY = [b"", b"\x00", text(GOOD).encode(), b"\xff\xfe\xfd", bytes(range(256)), b"{" * 1000]
CLOSING: list[tuple[str | bytes, str]] = [
    ("x" * (10 * 1024 * 1024), CLOSES),
    (b"\xff\xfe{}", CLOSES),
    ("y" * 70_000, CLOSES),
]

MISSING = [without(field) for field in GOOD] + [
    "{}",
    text(good(id=None)),
    text(good(symbol=None)),
    text(good(timestamp=None)),
]

# Per field: values of the wrong type.
NOT_TEXT: tuple[Any, ...] = (True, [], {}, ["BTCUSDT"], {"$gt": ""}, 3.5)
NOT_NUMBERS: tuple[Any, ...] = (True, False, [], {}, [1], {"value": 1})
NOT_TIMES: tuple[Any, ...] = (True, [], {}, {"iso": "2026-01-01T08:45:00Z"})
WRONG_TYPES = (
    [
        text(good(**{field: value}))
        for field in ("id", "symbol", "exchange", "action")
        for value in NOT_TEXT
        if not (field == "id" and isinstance(value, float))
    ]
    + [
        text(good(**{field: value}))
        for field in ("score_week", "score_month")
        for value in NOT_NUMBERS
    ]
    + [text(good(**{field: value})) for field in ("timestamp", "created_at") for value in NOT_TIMES]
    + [text(good(id=1.5)), text(good(id=-1)), text(good(id=10**200))]
)  # the last two: range

NOT_A_NUMBER = [
    text(good(**{field: value}))
    for field in ("score_week", "score_month")
    for value in ("abc", "1,5", "one", "0x10", "--1", "1e", "NaN?")
]
STRING_NOT_FINITE = [
    text(good(**{field: value}))
    for field in ("score_week", "score_month")
    for value in ("NaN", "Infinity", "-inf", "sNaN")
]
HUGE = [
    text(good(score_week=10**300)),
    text(good(score_month=-(10**300))),
    text(GOOD).replace("71.5", "1e400", 1),
    text(GOOD).replace("71.5", "-9.9e99999", 1),
    text(good(score_week="1e999999999")),
    text(good(score_week="1000000.0001")),
    text(good(score_month=1_000_001)),
    text(GOOD).replace("71.5", "9" * 300, 1),
    text(good(created_at=10**20)),
    text(good(timestamp=-1)),
    text(good(created_at="1" + "0" * 40)),
]
UNKNOWN_EXCHANGE = [
    text(good(exchange=name))
    for name in (
        "kraken",
        "okx",
        "binance.com",
        "binanceusdm",
        "bybit-testnet",
        "b1nance",
        "Ｂinance",
    )
]
BAD_SYMBOLS = [
    text(good(symbol=name))
    for name in (
        "BTCEUR",
        "BTC-USDT",
        "BTC USDT",
        "USDT",
        "BTC/",
        "/USDT",
        "ВТСUSDT",  # Cyrillic look-alikes
        "ＢＴＣＵＳＤＴ",  # full-width letters
        "💩USDT",
        "BTCUSDT;DROP TABLE",
        "../../etc/passwd",
        "BTCUSD",
        "btc_usdt",
    )
]
TOO_LONG = [
    text(good(id="x" * 129)),
    text(good(symbol="A" * 29 + "USDT")),
    text(good(score_week="1" * 65)),
    text(good(exchange="binance" * 5)),
    text(good(action="B" * 17)),
    text(good(timestamp="2026-01-01T08:45:00Z" + " " * 60 + "x")),
]
EMPTY_FIELDS = [text(good(**{field: value})) for field in ("id", "symbol") for value in ("", "   ")]
BAD_CHARACTERS = [
    text(good(id="a\u202eb")),  # right-to-left override
    text(good(id="line\nbreak")),
    text(good(id="bell\u0007")),
    text(good(id="\u2066isolate\u2069")),
    text(good(symbol="BTC\u200bUSDT")),  # zero-width space
]
UNKNOWN_ACTIONS = [
    text(good(action=name)) for name in ("HOLD", "LONG", "SHORT", "B", "BUYY", "CLOSE", "买")
]
BAD_TIMESTAMPS = [
    text(good(timestamp="2026-01-01T08:45:00")),  # naive: ambiguous
    text(good(created_at="2026-01-01T08:46:00")),
    text(good(timestamp="yesterday")),
    text(good(timestamp="2026-13-01T00:00:00Z")),
    text(good(created_at="2026-02-30T00:00:00Z")),
    text(good(timestamp="08:45")),
]
OUT_OF_RANGE_TIMES = [
    text(good(timestamp="1970-01-01T00:00:00Z")),
    text(good(created_at="2200-01-01T00:00:00Z")),
    text(good(created_at=0)),
]
NOT_ON_WAVE = [
    text(good(timestamp=value))
    for value in ("2026-01-01T08:44:00Z", "2026-01-01T08:45:01Z", "2026-01-01T08:45:00.5Z")
]

CORPUS: list[tuple[str | bytes, str]] = [
    *((frame, "bad_json") for frame in SYNTAX),
    *((frame, "not_an_object") for frame in NOT_OBJECTS),
    *((frame, "not_finite") for frame in NOT_FINITE),
    *((frame, "duplicate_key") for frame in DUPLICATE_KEYS),
    *((frame, "bad_unicode") for frame in BAD_UNICODE),
    *((frame, "too_deep") for frame in TOO_DEEP),
    *((frame, "empty") for frame in EMPTY_FRAMES),
    *((frame, "binary_frame") for frame in BINARY),
    *((frame, "missing_field") for frame in MISSING),
    *((frame, "wrong_type") for frame in WRONG_TYPES[:-2]),
    *((frame, "out_of_range") for frame in WRONG_TYPES[-2:]),
    *((frame, "not_a_number") for frame in NOT_A_NUMBER),
    *((frame, "not_finite") for frame in STRING_NOT_FINITE),
    *((frame, "out_of_range") for frame in HUGE),
    *((frame, "unknown_exchange") for frame in UNKNOWN_EXCHANGE),
    *((frame, "bad_symbol") for frame in BAD_SYMBOLS),
    *((frame, "too_long") for frame in TOO_LONG),
    *((frame, "empty") for frame in EMPTY_FIELDS),
    *((frame, "bad_characters") for frame in BAD_CHARACTERS),
    *((frame, "unknown_action") for frame in UNKNOWN_ACTIONS),
    *((frame, "bad_timestamp") for frame in BAD_TIMESTAMPS),
    *((frame, "out_of_range") for frame in OUT_OF_RANGE_TIMES),
    *((frame, "not_on_wave") for frame in NOT_ON_WAVE),
    *CLOSING,
]
CLOSING_REASONS = {0: "too_large", 1: "bad_unicode", 2: "too_large"}


def expected_reasons() -> Iterator[str]:
    closing = iter(CLOSING_REASONS.values())
    for _, reason in CORPUS:
        yield next(closing) if reason == CLOSES else reason


def test_the_corpus_has_at_least_200_distinct_hostile_frames() -> None:
    frames = [frame for frame, _ in CORPUS]
    assert len(frames) >= 200
    assert len(set(frames)) == len(frames)


async def test_each_hostile_frame_is_rejected_with_its_reason_and_a_good_one_still_arrives() -> (
    None
):
    pending: deque[tuple[str | bytes, str]] = deque(CORPUS)
    pending.append((text(GOOD), "accepted"))

    async def handler(socket: ServerConnection) -> None:
        # Each connection carries on where the last stopped; after a frame that makes the
        # client close, the service waits for the close so no later frame is lost with it.
        while pending:
            frame, reason = pending.popleft()
            try:
                # bytes marked CLOSES: invalid UTF-8 in a *text* frame
                await socket.send(frame, text=True if reason == CLOSES else None)
            except ConnectionClosed:
                return  # the client refused a 10 MB frame before it was all written
            if reason == CLOSES:
                await socket.wait_closed()
                return
        await socket.wait_closed()

    sink = EventLog()
    async with serve(handler, "127.0.0.1", 0, max_size=None) as server:
        port = server.sockets[0].getsockname()[1]
        source = WebSocketSignalSource(
            WebSocketSettings(url=f"ws://127.0.0.1:{port}", initial_backoff=0.01, jitter=0.0),
            events=sink,
            clock=FixedClock(),
            ids=SequentialIds("id"),
        )
        try:
            signal = await asyncio.wait_for(anext(source.signals()), 30)
        finally:
            await source.close()

    assert signal.id == "good-1"
    rejections = sink.of(EventType.SIGNAL_REJECTED)
    assert [event.data["reason"] for event in rejections] == list(expected_reasons())
    assert all(len(event.data["raw"]) <= 512 for event in rejections)
    assert all(storable(event.data["raw"]) for event in rejections)
    assert [e.data["signal_id"] for e in sink.of(EventType.SIGNAL_RECEIVED)] == ["good-1"]
    assert len(sink.of(EventType.WEBSOCKET_CONNECTED)) == len(CLOSING) + 1


# ------------------------------------------------------------------ generated, without I/O

json_scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


def storable(raw: str) -> bool:
    """What PostgreSQL text/jsonb accepts: encodable UTF-8 without NUL, and short."""
    try:
        raw.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return "\x00" not in raw and len(raw) <= 512


def intake_with_sink() -> tuple[Intake, EventLog]:
    sink = EventLog()
    journal = SignalJournal(events=sink, clock=FixedClock(), ids=SequentialIds("id"), source="test")
    return Intake(journal=journal), sink


def outcome_is_one_signal_or_one_rejection(frame: str | bytes) -> None:
    intake, sink = intake_with_sink()
    signal = intake.take(frame)
    rejected = sink.of(EventType.SIGNAL_REJECTED)
    assert (signal is None and len(rejected) == 1) or (isinstance(signal, Signal) and not rejected)
    assert all(storable(event.data["raw"]) for event in rejected)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(frame=st.text(max_size=300) | st.binary(max_size=100))
def test_any_frame_becomes_a_signal_or_exactly_one_rejection(frame: str | bytes) -> None:
    outcome_is_one_signal_or_one_rejection(frame)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(field=st.sampled_from(sorted(GOOD)), value=json_values)
def test_any_value_in_any_field_becomes_a_signal_or_exactly_one_rejection(
    field: str, value: Any
) -> None:
    frame = json.dumps(good(**{field: value}), allow_nan=True)
    outcome_is_one_signal_or_one_rejection(frame)


@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_a_signal_survives_any_extra_fields(data: st.DataObject) -> None:
    keys = st.text(max_size=8).filter(lambda key: key not in GOOD)
    extra = data.draw(st.dictionaries(keys, json_values, max_size=5))
    intake, _ = intake_with_sink()
    signal = intake.take(json.dumps({**GOOD, **extra}))
    # Unknown fields are ignored, unless they hold what no frame may hold anywhere.
    assert (signal is None) == holds_forbidden_json(extra)


def holds_forbidden_json(value: Any) -> bool:
    """NaN or an infinity, or a string (key or value) with NUL or a lone surrogate."""
    if isinstance(value, float):
        return value != value or value in (float("inf"), float("-inf"))
    if isinstance(value, str):
        return "\x00" in value or any(0xD800 <= ord(char) <= 0xDFFF for char in value)
    if isinstance(value, list):
        return any(holds_forbidden_json(item) for item in value)
    if isinstance(value, dict):
        return any(holds_forbidden_json(k) or holds_forbidden_json(v) for k, v in value.items())
    return False
