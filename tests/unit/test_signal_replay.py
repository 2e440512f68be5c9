"""The JSONL replay source that feeds paper runs."""

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tradecore.adapters.signals.replay import ReplaySignalSource
from tradecore.domain.events import EventType
from tradecore.domain.signals import Signal
from tradecore.ports.signals import SignalSource
from tradecore.testing import EventLog, SequentialIds

START = datetime(2026, 1, 1, 8, 45, tzinfo=UTC)


class VirtualClock:
    """Sleeping moves time forward at once: a paper run on virtual time."""

    def __init__(self, start: datetime = START) -> None:
        self.current = start
        self.sleeps: list[float] = []

    def now(self) -> datetime:
        return self.current

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.current += timedelta(seconds=seconds)
        await asyncio.sleep(0)


def line(
    number: int, *, score: object = 50, created: timedelta = timedelta(0), **fields: Any
) -> str:
    body: dict[str, Any] = {
        "id": f"sig-{number}",
        "symbol": "ETHUSDT",
        "exchange": "bybit",
        "action": "SELL",
        "score_week": score,
        "score_month": 10,
        "timestamp": START.isoformat(),
        "created_at": (START + created).isoformat(),
    }
    body.update(fields)
    return json.dumps(body)


def replay(
    path: Path, *, pace: bool = False, clock: VirtualClock | None = None, **options: Any
) -> tuple[ReplaySignalSource, EventLog, VirtualClock]:
    sink, clock = EventLog(), clock or VirtualClock()
    source = ReplaySignalSource(
        path, events=sink, clock=clock, ids=SequentialIds("id"), pace=pace, **options
    )
    return source, sink, clock


async def read_all(source: ReplaySignalSource) -> list[Signal]:
    return [signal async for signal in source.signals()]


async def test_signals_are_replayed_in_file_order_not_by_score(tmp_path: Path) -> None:
    path = tmp_path / "signals.jsonl"
    path.write_text("\n".join(line(n, score=score) for n, score in [(1, 10), (2, 90), (3, 50)]))
    source, sink, _ = replay(path)

    signals = await read_all(source)

    assert [signal.id for signal in signals] == ["sig-1", "sig-2", "sig-3"]
    received = sink.of(EventType.SIGNAL_RECEIVED)
    assert [event.data["signal_id"] for event in received] == ["sig-1", "sig-2", "sig-3"]
    assert received[0].data["source"] == "file:signals.jsonl"
    assert isinstance(source, SignalSource)


async def test_a_corrupt_line_is_rejected_with_its_line_number_and_the_replay_goes_on(
    tmp_path: Path,
) -> None:
    path = tmp_path / "signals.jsonl"
    lines = [
        line(1).encode(),
        b'{"id": "broken",',
        b"",  # a blank line is not an error
        b"\xff\xfe not utf-8",
        line(2, action="HOLD").encode(),
        b"x" * 5000,
        line(3).encode(),
    ]
    path.write_bytes(b"\n".join(lines) + b"\n")
    source, sink, _ = replay(path, max_line_bytes=4096)

    signals = await read_all(source)

    assert [signal.id for signal in signals] == ["sig-1", "sig-3"]
    rejected = sink.of(EventType.SIGNAL_REJECTED)
    assert [(e.data["line"], e.data["reason"]) for e in rejected] == [
        (2, "bad_json"),
        (4, "bad_unicode"),
        (5, "unknown_action"),
        (6, "too_large"),
    ]
    assert rejected[1].data["raw"].startswith("\\xff\\xfe")
    assert len(rejected[3].data["raw"]) <= 512


async def test_a_byte_order_mark_at_the_start_of_the_file_is_tolerated(tmp_path: Path) -> None:
    path = tmp_path / "signals.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + line(1).encode() + b"\r\n" + line(2).encode())
    source, sink, _ = replay(path)

    assert [signal.id for signal in await read_all(source)] == ["sig-1", "sig-2"]
    assert not sink.of(EventType.SIGNAL_REJECTED)


async def test_a_repeated_signal_id_is_delivered_once(tmp_path: Path) -> None:
    path = tmp_path / "signals.jsonl"
    path.write_text("\n".join([line(1), line(2), line(1, score=99)]))
    source, sink, _ = replay(path)

    assert [signal.id for signal in await read_all(source)] == ["sig-1", "sig-2"]
    [duplicate] = sink.of(EventType.SIGNAL_FILTERED)
    assert duplicate.data == {
        "source": "file:signals.jsonl",
        "signal_id": "sig-1",
        "reason": "duplicate",
    }


async def test_paced_replay_holds_each_signal_until_the_clock_reaches_its_creation_time(
    tmp_path: Path,
) -> None:
    path = tmp_path / "signals.jsonl"
    offsets = [timedelta(seconds=30), timedelta(seconds=30), timedelta(minutes=4)]
    path.write_text("\n".join(line(n, created=offset) for n, offset in enumerate(offsets)))
    source, sink, clock = replay(path, pace=True)

    seen_at = [(signal.id, clock.now()) async for signal in source.signals()]

    assert seen_at == [(f"sig-{n}", START + offset) for n, offset in enumerate(offsets)]
    assert clock.sleeps == [30.0, 210.0]  # nothing to wait for the second signal
    received_at = [event.created_at for event in sink.of(EventType.SIGNAL_RECEIVED)]
    assert received_at == [START + offset for offset in offsets]


async def test_without_pacing_the_clock_is_never_waited_on(tmp_path: Path) -> None:
    path = tmp_path / "signals.jsonl"
    path.write_text(line(1, created=timedelta(hours=1)))
    source, _, clock = replay(path)

    assert len(await read_all(source)) == 1
    assert clock.sleeps == []


async def test_signals_already_in_the_past_are_not_delayed(tmp_path: Path) -> None:
    path = tmp_path / "signals.jsonl"
    path.write_text(line(1, created=timedelta(minutes=1)))
    source, _, clock = replay(path, pace=True, clock=VirtualClock(START + timedelta(hours=1)))

    assert len(await read_all(source)) == 1
    assert clock.sleeps == []


async def test_close_stops_the_replay_before_the_next_signal(tmp_path: Path) -> None:
    path = tmp_path / "signals.jsonl"
    path.write_text("\n".join(line(n) for n in range(5)))
    source, _, _ = replay(path)

    taken = []
    async for signal in source.signals():
        taken.append(signal.id)
        await source.close()

    assert taken == ["sig-0"]


good_lines = st.integers(0, 40).map(lambda n: ("good", line(n, score=n % 7)))
junk_lines = st.sampled_from(
    [
        "{",
        "[]",
        "null",
        '{"id": "x"}',
        line(999, exchange="kraken"),
        line(998, score="NaN"),
        '{"score_week": NaN}',
    ]
).map(lambda text: ("junk", text))
blank_lines = st.sampled_from(["", "   ", "\t"]).map(lambda text: ("blank", text))


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(rows=st.lists(good_lines | junk_lines | blank_lines, max_size=40))
def test_any_mix_of_lines_yields_the_good_ones_in_order_and_rejects_each_bad_one(
    tmp_path: Path, rows: list[tuple[str, str]]
) -> None:
    path = tmp_path / "mixed.jsonl"
    path.write_text("\n".join(text for _, text in rows))
    source, sink, _ = replay(path)

    signals = asyncio.run(read_all(source))

    good_ids = [json.loads(text)["id"] for kind, text in rows if kind == "good"]
    first_copies = list(dict.fromkeys(good_ids))
    assert [signal.id for signal in signals] == first_copies
    assert len(sink.of(EventType.SIGNAL_REJECTED)) == sum(kind == "junk" for kind, _ in rows)
    assert len(sink.of(EventType.SIGNAL_FILTERED)) == len(good_ids) - len(first_copies)
