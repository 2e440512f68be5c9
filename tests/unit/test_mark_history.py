"""The simulated venue's mark history and the ccxt adapter's kline requests: what a restart
reads to catch up on the marks its trailing state never judged (binance seed 2508)."""

import itertools
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from tradecore.adapters.ccxt.candles import PAGES, interval_for, pages
from tradecore.adapters.clock import VirtualClock
from tradecore.adapters.paper import BINANCE, VenueEngine
from tradecore.adapters.paper.history import MarkHistory
from tradecore.testing import default_markets
from tradecore.testing.loopback.binance import BinanceDialect

D = Decimal
T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def ms(at_: datetime) -> int:
    return (at_ - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(milliseconds=1)


def test_each_minute_keeps_its_first_highest_lowest_and_last_mark() -> None:
    history = MarkHistory()
    for seconds, mark in ((5, "100"), (20, "103"), (40, "98"), (55, "101"), (65, "102")):
        history.record("X", D(mark), at(seconds))
    first, second = history.candles("X", at(0), at(70))
    assert (first.open, first.high, first.low, first.close) == (D(100), D(103), D(98), D(101))
    assert (second.opened_at, second.closes_at) == (at(60), at(120))
    assert (second.open, second.high, second.low, second.close) == (D(102),) * 4


def test_a_minute_without_a_mark_repeats_the_mark_that_stood_as_the_venues_klines_do() -> None:
    history = MarkHistory()
    history.record("X", D(100), at(10))
    history.record("X", D(104), at(250))
    candles = history.candles("X", at(60), at(250))
    assert [c.opened_at for c in candles] == [at(60), at(120), at(180), at(240)]
    assert [c.high for c in candles] == [D(100), D(100), D(100), D(104)]


def test_longer_intervals_are_whole_minutes_combined_and_nothing_before_the_first_mark() -> None:
    history = MarkHistory()
    for minute, mark in ((3, "100"), (6, "107"), (8, "95"), (12, "101")):
        history.record("X", D(mark), at(minute * 60 + 1))
    candles = history.candles("X", at(0), at(12 * 60 + 1), minutes=5)
    assert [(c.opened_at, c.high, c.low) for c in candles] == [
        (at(0), D(100), D(100)),
        (at(300), D(107), D(95)),
        (at(600), D(101), D(95)),  # 95 stood into minute 12's interval
    ]
    assert history.candles("Y", at(0), at(60)) == []


def test_the_history_keeps_its_last_day() -> None:
    history = MarkHistory(retained=3)
    for minute in range(5):
        history.record("X", D(100 + minute), at(minute * 60))
    assert [c.high for c in history.candles("X", at(0), at(4 * 60))] == [D(102), D(103), D(104)]


def test_a_span_of_minutes_is_asked_in_one_minute_candles_and_a_longer_one_coarser() -> None:
    assert interval_for(at(0), at(3 * 3600), 200) == 1  # 180 + 2 candles, one page
    assert interval_for(at(0), at(10 * 3600), 200) == 5  # 602 > 600 one-minute candles
    assert interval_for(at(0), at(40 * 3600), 1000) == 1
    assert interval_for(at(0), at(365 * 86400), 200) == 1440  # the longest, however long


@settings(max_examples=300, deadline=None)
@given(
    st.integers(0, 10**7),
    st.integers(0, 60 * 86400),
    st.sampled_from([200, 1000]),
)
def test_the_requests_cover_the_span_without_a_gap_or_an_overlap_and_few_of_them(
    start_ms: int, span_seconds: int, page: int
) -> None:
    since = at(start_ms / 1000)
    now = since + timedelta(seconds=span_seconds)
    minutes = interval_for(since, now, page)
    asked = list(pages(since, now, minutes, page))
    step = minutes * 60_000
    assert asked[0][0] <= ms(since) and asked[-1][1] >= ms(now) // step * step
    assert all(b[0] == a[1] + 1 for a, b in itertools.pairwise(asked))
    assert all((end - begin + 1) <= page * step for begin, end in asked)
    if minutes < 1440:
        assert len(asked) <= PAGES


def test_the_loopback_binance_answers_the_limit_klines_up_to_an_end_time_sent_alone() -> None:
    # Binance klines without startTime: the `limit` up to endTime (review 15: the loopback
    # counted them back from now, and answered nothing for an endTime 20 minutes back)
    clock = VirtualClock()
    engine = VenueEngine(
        BINANCE, now=clock.now, markets=default_markets(BINANCE.venue), marks={"BTCUSDT": 50000}
    )
    for minute in range(30):
        engine.set_mark("BTCUSDT", D(50000 + minute))
        clock._now += timedelta(minutes=1)  # nothing waits on this clock
    end = ms(clock.now() - timedelta(minutes=20))
    status, rows = BinanceDialect(engine)._mark_price_klines(
        {"symbol": "BTCUSDT", "interval": "1m", "endTime": str(end), "limit": "5"}
    )
    assert status == 200
    assert [row[0] for row in rows] == [
        end // 60_000 * 60_000 - n * 60_000 for n in (4, 3, 2, 1, 0)
    ]
