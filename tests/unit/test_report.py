"""The post-run report read back from a database written through the real repositories and
journal: stop coverage, unprotected time, races, latency, trailing, PnL, errors, one position's
story, and the charts. The expected figures are worked out by hand from the events below."""

import io
import json
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from runner.report import run_report
from tradecore.adapters.database import connect_store, open_journal
from tradecore.adapters.reporting.analysis import coverage_of
from tradecore.adapters.reporting.source import EventRow, PositionRow
from tradecore.domain.events import Event, EventType
from tradecore.domain.model import Side, Venue
from tradecore.domain.positions import Operation, OperationKind, Position, PositionState

T0 = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)  # position A, Binance, long, closed
T1 = datetime(2026, 11, 21, 9, 0, tzinfo=UTC)  # position B, Bybit, short, closed, raced
T2 = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)  # position C, Binance, open, never protected


def at(base: datetime, seconds: float) -> datetime:
    return base + timedelta(seconds=seconds)


def event(
    kind: EventType,
    when: datetime,
    position: str | None,
    *,
    order: str | None = None,
    data: dict[str, Any] | None = None,
    by_correlation: bool = False,
    **fields: Any,
) -> Event:
    return Event(
        id=uuid.uuid4(),
        type=kind,
        created_at=when,
        data=data or {},
        position_id=None if by_correlation else position,
        correlation_id=position,
        order_id=order,
        **fields,
    )


def stop(kind: EventType, when: datetime, position: str, order: str, owner: str, price: str):
    return event(kind, when, position, order=order, data={"price": Decimal(price), "owner": owner})


def cancelled(when: datetime, position: str, order: str, reason: str = "replaced") -> Event:
    return event(
        EventType.STOP_LOSS_CANCELLED,
        when,
        position,
        order=order,
        data={"reason": reason, "cancelled": True},
    )


def history() -> list[Event]:
    e = EventType
    return [
        # A: fill -> stop 0.5 s; a trailing replace overlapping 0.3 s (by design); a stop
        # cancelled by hand and replaced by the guard 10 s later; closed at +600 s.
        event(e.POSITION_OPEN_STARTED, T0, "A"),
        event(e.ENTRY_ORDER_FILLED, at(T0, 0.4), "A", data={"average_price": Decimal("100")}),
        stop(e.STOP_LOSS_PLACED, at(T0, 0.9), "A", "s1", "initial", "98"),
        event(
            e.TRAILING_STOP_ACTIVATED,
            at(T0, 60),
            "A",
            by_correlation=True,
            data={"mark": Decimal("103"), "cause": "price"},
        ),
        stop(e.STOP_LOSS_REPLACED, at(T0, 61), "A", "s2", "trailing", "101"),
        cancelled(at(T0, 61.3), "A", "s1"),
        event(e.TRAILING_STOP_UPDATED, at(T0, 61.3), "A", data={"stop_price": Decimal("101")}),
        cancelled(at(T0, 120), "A", "s2", reason="cancelled on the venue"),
        stop(e.STOP_LOSS_PLACED, at(T0, 130), "A", "s3", "protection", "101"),
        event(e.POSITION_CLOSED, at(T0, 600), "A", data={"reason": "stop filled"}),
        # B: fill -> stop 0.2 s; trailing and protection write 0.4 s apart (a race); a second
        # stop placed while the first stands for 100 s (two stops at once); closed at +400 s.
        event(e.POSITION_OPEN_STARTED, T1, "B"),
        event(e.ENTRY_ORDER_FILLED, at(T1, 0.3), "B", data={"average_price": Decimal("2000")}),
        stop(e.STOP_LOSS_PLACED, at(T1, 0.5), "B", "b1", "initial", "2040"),
        stop(e.STOP_LOSS_REPLACED, at(T1, 100), "B", "b1", "trailing", "2030"),
        stop(e.STOP_LOSS_REPLACED, at(T1, 100.4), "B", "b1", "protection", "2035"),
        stop(e.STOP_LOSS_PLACED, at(T1, 200), "B", "b2", "protection", "2035"),
        cancelled(at(T1, 300), "B", "b1", reason="duplicate"),
        event(e.STOP_LOSS_FAILED, at(T1, 350), "B", error_message="rejected: -2021"),
        event(e.POSITION_CLOSED, at(T1, 400), "B"),
        # C: filled, no stop ever; the last event in the database is 50 s later.
        event(e.ENTRY_ORDER_FILLED, T2, "C", data={"average_price": Decimal("150")}),
        event(e.UNPROTECTED_POSITION_FOUND, at(T2, 30), "C"),
        event(e.CRITICAL_ERROR, at(T2, 50), "C", error_message="rollback and emergency failed"),
    ]


def position(pid: str, venue: Venue, symbol: str, side: Side, **fields: Any) -> Position:
    return Position(
        id=pid,
        venue=venue,
        symbol=symbol,
        side=side,
        requested_quantity=Decimal("2"),
        quantity=Decimal("2"),
        **fields,
    )


def positions() -> list[Position]:
    return [
        position(
            "A", Venue.BINANCE, "BTCUSDT", Side.LONG,
            state=PositionState.CLOSED, created_at=T0, opened_at=at(T0, 0.4),
            closed_at=at(T0, 600), entry_price=Decimal("100"), exit_price=Decimal("105"),
        ),
        position(
            "B", Venue.BYBIT, "ETHUSDT", Side.SHORT,
            state=PositionState.CLOSED, created_at=T1, opened_at=at(T1, 0.3),
            closed_at=at(T1, 400), entry_price=Decimal("2000"),
            realized_pnl=Decimal("-7.5"),
        ),
        position(
            "C", Venue.BINANCE, "SOLUSDT", Side.LONG,
            state=PositionState.ACTIVE, created_at=T2, opened_at=T2, entry_price=Decimal("150"),
        ),
        position("D", Venue.BINANCE, "XRPUSDT", Side.LONG, state=PositionState.FAILED,
                 created_at=at(T2, 5)),
    ]  # fmt: skip


async def build_database(url: str, spool: Path) -> None:
    database = await connect_store(url)
    try:
        for p in positions():
            await database.store.positions.add(p)
        await database.store.operations.start(
            Operation(
                id="A",
                kind=OperationKind.OPEN,
                venue=Venue.BINANCE,
                symbol="BTCUSDT",
                position_id="A",
                started_at=T0,
            )
        )
        await database.store.operations.finish("A", at=at(T0, 1), outcome="active")
        journal = open_journal(database, str(spool))
        journal.start()
        for e in history():
            journal.emit(e)
        await journal.close()
    finally:
        await database.close()


@pytest.fixture
async def sqlite_url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'run.db'}"
    await build_database(url, tmp_path / "journal.spool")
    return url


async def report_of(url: str, **options: Any) -> tuple[int, str]:
    out = io.StringIO()
    code = await run_report(url, out=out, **options)
    return code, out.getvalue()


async def json_report(url: str) -> dict[str, Any]:
    code, text = await report_of(url, fmt="json")
    assert code == 0
    return json.loads(text)


def by_position(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {row["position_id"]: row for row in report["coverage"]}


async def test_unprotected_time_counts_the_opening_gap_and_every_stop_gap(sqlite_url):
    rows = by_position(await json_report(sqlite_url))

    assert rows["A"]["unprotected_seconds"] == pytest.approx(0.5 + 10)
    assert rows["A"]["first_stop_seconds"] == pytest.approx(0.5)
    assert rows["A"]["longest_gap_seconds"] == pytest.approx(10)
    assert rows["A"]["open_seconds"] == pytest.approx(599.6)
    assert rows["A"]["coverage_pct"] == pytest.approx(100 * (1 - 10.5 / 599.6), abs=1e-3)
    assert rows["B"]["unprotected_seconds"] == pytest.approx(0.2)
    assert rows["B"]["owners"] == ["initial", "trailing", "protection"]


async def test_a_position_that_never_got_a_stop_is_unprotected_until_the_last_event(sqlite_url):
    report = await json_report(sqlite_url)
    c = by_position(report)["C"]

    assert c["still_open"] is True
    assert c["unprotected_seconds"] == pytest.approx(50)
    assert c["coverage_pct"] == 0
    assert c["first_stop_seconds"] is None
    assert "D" not in by_position(report)  # never filled: nothing was at risk


async def test_overall_coverage_is_weighted_by_time_open(sqlite_url):
    summary = (await json_report(sqlite_url))["summary"]

    open_total = 599.6 + 399.7 + 50
    unprotected_total = 10.5 + 0.2 + 50
    assert summary["unprotected_seconds"] == pytest.approx(unprotected_total)
    assert summary["stop_coverage_pct"] == pytest.approx(
        100 * (1 - unprotected_total / open_total), abs=1e-3
    )
    assert summary["positions_by_state"] == {"active": 1, "closed": 2, "failed": 1}


async def test_two_owners_writing_within_a_second_and_two_live_stops_are_races(sqlite_url):
    races = (await json_report(sqlite_url))["races"]

    assert sorted((r["position_id"], r["kind"]) for r in races) == [
        ("B", "owners"),
        ("B", "two_stops"),
    ]
    two = next(r for r in races if r["kind"] == "two_stops")
    assert two["at"] == at(T1, 200).isoformat()
    assert "100.000 s" in two["detail"]


async def test_pnl_per_position_exchange_and_day_uses_recorded_or_exit_prices(sqlite_url):
    pnl = (await json_report(sqlite_url))["pnl"]

    assert pnl["by_position"] == {"A": "10", "B": "-7.5"}  # A: (105 - 100) x 2
    assert pnl["by_exchange"] == {"binance": "10", "bybit": "-7.5"}
    assert pnl["by_day"] == {"2026-11-20": "10", "2026-11-21": "-7.5"}
    assert Decimal(pnl["total"]) == Decimal("2.5")
    assert (pnl["wins"], pnl["losses"]) == (1, 1)


async def test_latency_percentiles_per_operation(sqlite_url):
    latency = (await json_report(sqlite_url))["latency_ms"]

    assert latency["fill -> stop placed"]["count"] == 2
    assert latency["fill -> stop placed"]["p50_ms"] == pytest.approx(200)
    assert latency["fill -> stop placed"]["max_ms"] == pytest.approx(500)
    assert latency["open: started -> stop placed"]["max_ms"] == pytest.approx(900)
    assert latency["stop move: new stop -> old cancelled"]["max_ms"] == pytest.approx(300)
    assert latency["operation open"] == {
        "count": 1, "p50_ms": 1000.0, "p90_ms": 1000.0, "p99_ms": 1000.0, "max_ms": 1000.0
    }  # fmt: skip


async def test_trailing_statistics_and_errors_by_type(sqlite_url):
    report = await json_report(sqlite_url)

    assert report["trailing"]["activated"] == 1
    assert report["trailing"]["updates"] == 1
    assert report["trailing"]["activation_delay"]["p50_ms"] == pytest.approx(59_600)
    assert report["errors"]["CRITICAL"] == {"critical_error": 1}
    assert report["errors"]["ERROR"] == {"unprotected_position_found": 1}
    assert report["errors"]["WARNING"] == {"stop_loss_failed": 1}


async def test_the_text_report_shows_each_positions_coverage_row(sqlite_url):
    code, text = await report_of(sqlite_url)

    assert code == 0
    row_c = next(line for line in text.splitlines() if line.startswith("C "))
    assert row_c.split()[1:7] == ["binance", "SOLUSDT", "50.0", "50.0", "0.0", "50.0"]
    assert "STOP COVERAGE" in text and "RACES" in text and "PNL" in text


async def test_one_positions_story_lists_its_events_in_order_with_their_details(sqlite_url):
    code, text = await report_of(sqlite_url, position_id="A", fmt="json")
    story = json.loads(text)

    assert code == 0
    assert story["position"]["symbol"] == "BTCUSDT" and story["position"]["exit_price"] == "105"
    assert [e["type"] for e in story["events"]] == [
        e.type.value for e in history() if e.correlation_id == "A"
    ]
    replaced = next(e for e in story["events"] if e["type"] == "stop_loss_replaced")
    assert replaced["order_id"] == "s2" and replaced["data"]["price"] == "101"

    code, text = await report_of(sqlite_url, position_id="A")
    lines = text.splitlines()
    assert lines[0].startswith("position A  binance BTCUSDT long")
    assert "trailing_stop_activated" in lines[4] and "+   60.000s" in lines[4]


async def test_charts_of_equity_and_of_a_position_are_written_as_png(sqlite_url, tmp_path):
    charts = tmp_path / "charts"
    charts.mkdir()

    assert (await report_of(sqlite_url, chart_dir=str(charts)))[0] == 0
    assert (await report_of(sqlite_url, position_id="A", chart_dir=str(charts)))[0] == 0

    for name in ("equity.png", "position-A.png"):
        data = (charts / name).read_bytes()
        assert data.startswith(b"\x89PNG") and len(data) > 1000


async def test_bad_usage_and_an_unopenable_database_exit_2(sqlite_url, tmp_path):
    assert (await report_of(sqlite_url, fmt="yaml"))[0] == 2
    assert (await report_of(sqlite_url, position_id="nope"))[0] == 2
    assert (await report_of(sqlite_url, chart_dir=str(tmp_path / "missing")))[0] == 2
    assert (await report_of(f"sqlite:///{tmp_path / 'no' / 'such.db'}"))[0] == 2
    assert (await report_of(f"sqlite:///{tmp_path / 'typo.db'}"))[0] == 2
    assert not (tmp_path / "typo.db").exists()  # a mistyped path creates no empty database
    empty = tmp_path / "empty.db"
    empty.write_bytes(b"")
    assert (await report_of(f"sqlite:///{empty}"))[0] == 2  # not a tradecore database


async def test_postgresql_gives_the_same_report_as_sqlite(postgres_database, sqlite_url, tmp_path):
    url = postgres_database()
    await build_database(url, tmp_path / "pg.spool")

    assert await json_report(url) == await json_report(sqlite_url)


# -- the coverage invariant ----------------------------------------------------------------

FILL = datetime(2026, 1, 1, tzinfo=UTC)


def _row() -> PositionRow:
    return PositionRow(
        id="P", exchange="binance", symbol="X", side="long", state="active",
        quantity=Decimal(1), entry_price=None, stop_price=None, stop_owner=None,
        exit_price=None, realized_pnl=None, created_at=FILL, opened_at=FILL,
        closed_at=None, close_reason=None, adopted=False,
    )  # fmt: skip


def _stop_event(seq: int, seconds: float, placed: bool, order: str) -> EventRow:
    return EventRow(
        seq=seq,
        type="stop_loss_placed" if placed else "stop_loss_cancelled",
        created_at=FILL + timedelta(seconds=seconds),
        severity="INFO",
        data={"owner": "initial"} if placed else {"cancelled": True},
        position_id="P",
        order_id=order,
    )


@settings(max_examples=80, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(min_value=0, max_value=30),
            st.booleans(),
            st.sampled_from(["o1", "o2", "o3"]),
        ),
        max_size=25,
    )
)
def test_unprotected_time_is_exactly_the_time_with_no_live_stop(steps):
    events, clock = [], 0
    for seq, (gap, placed, order) in enumerate(steps):
        clock += gap
        events.append(_stop_event(seq, clock, placed, order))
    end = FILL + timedelta(seconds=clock + 10)

    found, _ = coverage_of(_row(), events, now=end)

    # Brute force, second by second: a second is unprotected when no stop is live in it.
    live: set[str] = set()
    bare = 0
    for second in range(clock + 10):
        for e in events:
            if (e.created_at - FILL).total_seconds() == second:
                (live.add if e.type == "stop_loss_placed" else live.discard)(e.order_id or "")
        bare += not live
    assert found is not None
    assert found.unprotected_seconds == pytest.approx(bare)
    assert 0 <= found.coverage <= 1
