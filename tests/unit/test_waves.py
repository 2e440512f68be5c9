from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tradecore.domain.errors import DomainError
from tradecore.domain.model import Side, Venue
from tradecore.domain.precision import MarketRules
from tradecore.domain.signals import Fate, Signal
from tradecore.domain.sizing import SizingParams
from tradecore.domain.waves import (
    REQUIRED_FIELDS,
    FilterParams,
    FilterReason,
    RejectionReason,
    SignalLimits,
    SignalRejection,
    TradingFacts,
    WaveClaim,
    WaveSchedule,
    candidate_count,
    claim_wave,
    due_wave,
    filter_signal,
    next_check_after,
    parse_signal,
    refuse_arrival,
    select,
    select_candidates,
)


def utc(hour: int, minute: int, second: int = 0) -> datetime:
    return datetime(2025, 10, 15, hour, minute, second, tzinfo=UTC)


# ----------------------------------------------------------------------------- wave timing


def test_a_check_at_nine_oh_seven_processes_the_eight_forty_five_wave():
    assert due_wave(utc(9, 7)) == utc(8, 45)


def test_a_check_at_eleven_twenty_one_processes_the_eleven_o_clock_wave():
    assert due_wave(utc(11, 21)) == utc(11, 0)


def test_the_due_wave_is_computed_in_utc_whatever_the_offset_of_the_check_time():
    moscow = timezone(timedelta(hours=3))
    assert due_wave(datetime(2025, 10, 15, 12, 7, tzinfo=moscow)) == utc(8, 45)


def test_the_due_wave_of_a_check_just_after_midnight_is_the_last_wave_of_the_day_before():
    assert due_wave(utc(0, 5)) == datetime(2025, 10, 14, 23, 45, tzinfo=UTC)


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        (utc(9, 0), utc(9, 5)),
        (utc(9, 5), utc(9, 20)),  # strictly after
        (utc(9, 7), utc(9, 20)),
        (utc(9, 49, 59), utc(9, 50)),
        (utc(9, 50), utc(10, 5)),
        (utc(23, 55), datetime(2025, 10, 16, 0, 5, tzinfo=UTC)),
    ],
)
def test_checks_run_at_minutes_five_twenty_thirty_five_and_fifty(now, expected):
    assert next_check_after(now) == expected


@settings(max_examples=200)
@given(
    st.datetimes(
        min_value=datetime(2000, 1, 1), max_value=datetime(2200, 1, 1), timezones=st.just(UTC)
    )
)
def test_every_check_processes_a_wave_that_closed_at_least_five_minutes_earlier(now):
    check = next_check_after(now)
    wave = due_wave(check)
    assert check.minute in (5, 20, 35, 50)
    assert timedelta(0) < check - now <= timedelta(minutes=15)
    assert wave.minute % 15 == 0 and wave.second == 0 and wave.microsecond == 0
    assert check - wave == timedelta(minutes=20)


FIVE_SECONDS = WaveSchedule(length=timedelta(seconds=5), check_offset=timedelta(seconds=2))


def test_a_five_second_schedule_checks_two_seconds_into_each_wave_for_the_wave_before():
    check = next_check_after(utc(9, 0, 3), FIVE_SECONDS)
    assert check == utc(9, 0, 7)
    assert due_wave(check, FIVE_SECONDS) == utc(9, 0, 0)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    now=st.datetimes(
        min_value=datetime(2016, 1, 1), max_value=datetime(2099, 1, 1), timezones=st.just(UTC)
    ),
    length=st.sampled_from([1, 2, 3, 4, 5, 10, 60, 300, 900, 3600]),
    offset_fraction=st.floats(0, 0.99),
)
def test_any_schedule_checks_once_per_wave_for_the_wave_just_ended(now, length, offset_fraction):
    offset = timedelta(seconds=int(length * offset_fraction))
    schedule = WaveSchedule(length=timedelta(seconds=length), check_offset=offset)
    check = next_check_after(now, schedule)
    wave = due_wave(check, schedule)
    assert timedelta(0) < check - now <= schedule.length
    assert check - wave == schedule.length + offset
    signal = parse_signal(raw_signal(timestamp=wave.isoformat()), SignalLimits(schedule=schedule))
    assert isinstance(signal, Signal) and signal.wave == wave


@pytest.mark.parametrize(
    ("length", "offset", "complaint"),
    [
        (0, 0, "wave length 0 s"),
        (7, 1, "divides a day"),
        (2.5, 1, "whole number of seconds"),
        (5, 5, "below the wave length"),
        (5, -1, "0 or more"),
    ],
)
def test_a_schedule_that_cannot_work_is_refused_saying_why(length, offset, complaint):
    with pytest.raises(DomainError, match=complaint):
        WaveSchedule(length=timedelta(seconds=length), check_offset=timedelta(seconds=offset))


def test_a_signal_off_a_short_schedule_is_not_on_a_wave():
    limits = SignalLimits(schedule=FIVE_SECONDS)
    signal = parse_signal(raw_signal(timestamp="2026-01-01T08:45:05Z"), limits)
    assert isinstance(signal, Signal)
    assert signal.wave == datetime(2026, 1, 1, 8, 45, 5, tzinfo=UTC)
    refused = parse_signal(raw_signal(timestamp="2026-01-01T08:45:07Z"), limits)
    assert isinstance(refused, SignalRejection)
    assert refused.reason is RejectionReason.NOT_ON_WAVE


def test_wave_times_must_be_timezone_aware():
    with pytest.raises(DomainError, match="timezone-aware"):
        due_wave(datetime(2025, 10, 15, 9, 7))


# ------------------------------------------------------------------------------ validation


def raw_signal(**overrides: object) -> dict[str, object]:
    raw: dict[str, object] = {
        "id": "sig-1",
        "symbol": "BTCUSDT",
        "exchange": "binance",
        "action": "BUY",
        "score_week": 72.5,
        "score_month": 64,
        "timestamp": "2025-10-15T08:45:00+00:00",
        "created_at": "2025-10-15T08:47:12Z",
    }
    raw.update(overrides)
    return raw


def rejected(raw: object) -> SignalRejection:
    result = parse_signal(raw)
    assert isinstance(result, SignalRejection), result
    return result


def test_a_well_formed_signal_is_accepted_with_exact_decimal_scores():
    signal = parse_signal(raw_signal())
    assert signal == Signal(
        id="sig-1",
        symbol="BTCUSDT",
        venue=Venue.BINANCE,
        side=Side.LONG,
        score_week=Decimal("72.5"),
        score_month=Decimal(64),
        wave=utc(8, 45),
        created_at=utc(8, 47, 12),
    )


def test_sell_opens_a_short_and_venue_symbols_and_case_are_normalised():
    signal = parse_signal(
        raw_signal(action=" sell ", symbol="eth/usdt:usdt", exchange="Bybit", id=17)
    )
    assert isinstance(signal, Signal)
    assert (signal.side, signal.symbol, signal.venue, signal.id) == (
        Side.SHORT,
        "ETHUSDT",
        Venue.BYBIT,
        "17",
    )


@pytest.mark.parametrize(
    "stamp",
    [1760517900, 1760517900000, "1760517900", 1760517900.0, "2025-10-15T10:45:00+02:00"],
)
def test_the_wave_timestamp_may_be_epoch_seconds_milliseconds_or_iso_with_an_offset(stamp):
    signal = parse_signal(raw_signal(timestamp=stamp))
    assert isinstance(signal, Signal)
    assert signal.wave == utc(8, 45)


def test_numeric_scores_may_arrive_as_strings():
    signal = parse_signal(raw_signal(score_week="80.25", score_month="-3"))
    assert isinstance(signal, Signal)
    assert (signal.score_week, signal.score_month) == (Decimal("80.25"), Decimal(-3))


def test_unknown_extra_fields_are_ignored():
    assert isinstance(parse_signal(raw_signal(comment="hello", version=2)), Signal)


@pytest.mark.parametrize("field", REQUIRED_FIELDS)
def test_a_missing_field_is_rejected_naming_the_field(field):
    raw = raw_signal()
    del raw[field]
    rejection = rejected(raw)
    assert rejection.reason is RejectionReason.MISSING_FIELD
    assert rejection.field == field


@pytest.mark.parametrize("field", REQUIRED_FIELDS)
def test_a_null_field_counts_as_missing(field):
    rejection = rejected(raw_signal(**{field: None}))
    assert (rejection.reason, rejection.field) == (RejectionReason.MISSING_FIELD, field)


@pytest.mark.parametrize("raw", [[], "signal", 42, None, b"{}", 3.5, ("id", "x")])
def test_anything_but_an_object_is_rejected(raw):
    assert rejected(raw).reason is RejectionReason.NOT_AN_OBJECT


@pytest.mark.parametrize(
    ("field", "value", "reason"),
    [
        ("id", "", RejectionReason.EMPTY),
        ("id", "   ", RejectionReason.EMPTY),
        ("id", "x" * 129, RejectionReason.TOO_LONG),
        ("id", -1, RejectionReason.OUT_OF_RANGE),
        ("id", 10**5000, RejectionReason.OUT_OF_RANGE),
        ("id", 1.5, RejectionReason.WRONG_TYPE),
        ("id", True, RejectionReason.WRONG_TYPE),
        ("id", {"a": 1}, RejectionReason.WRONG_TYPE),
        ("id", "a\x00b", RejectionReason.BAD_CHARACTERS),
        ("symbol", 123, RejectionReason.WRONG_TYPE),
        ("symbol", "BTC-USDT", RejectionReason.BAD_SYMBOL),
        ("symbol", "BTCEUR", RejectionReason.BAD_SYMBOL),
        ("symbol", "USDT", RejectionReason.BAD_SYMBOL),
        ("symbol", "/USDT:USDT", RejectionReason.BAD_SYMBOL),
        ("symbol", "БТЦUSDT", RejectionReason.BAD_SYMBOL),
        ("symbol", "BTC USDT", RejectionReason.BAD_SYMBOL),
        ("symbol", "BTC\nUSDT", RejectionReason.BAD_CHARACTERS),
        ("symbol", "A" * 40 + "USDT", RejectionReason.TOO_LONG),
        ("exchange", "kraken", RejectionReason.UNKNOWN_EXCHANGE),
        ("exchange", "", RejectionReason.EMPTY),
        ("exchange", 1, RejectionReason.WRONG_TYPE),
        ("action", "HOLD", RejectionReason.UNKNOWN_ACTION),
        ("action", "LONG", RejectionReason.UNKNOWN_ACTION),
        ("action", 1, RejectionReason.WRONG_TYPE),
        ("score_week", float("nan"), RejectionReason.NOT_FINITE),
        ("score_week", float("inf"), RejectionReason.NOT_FINITE),
        ("score_week", float("-inf"), RejectionReason.NOT_FINITE),
        ("score_week", "NaN", RejectionReason.NOT_FINITE),
        ("score_week", "Infinity", RejectionReason.NOT_FINITE),
        ("score_week", "sNaN", RejectionReason.NOT_FINITE),
        ("score_week", "1e999999999", RejectionReason.OUT_OF_RANGE),
        ("score_week", 1e300, RejectionReason.OUT_OF_RANGE),
        ("score_week", 10**400, RejectionReason.OUT_OF_RANGE),
        ("score_week", -(10**7), RejectionReason.OUT_OF_RANGE),
        ("score_week", "12abc", RejectionReason.NOT_A_NUMBER),
        ("score_week", "", RejectionReason.NOT_A_NUMBER),
        ("score_week", "9" * 100, RejectionReason.TOO_LONG),
        ("score_week", True, RejectionReason.WRONG_TYPE),
        ("score_week", [1], RejectionReason.WRONG_TYPE),
        ("score_month", None, RejectionReason.MISSING_FIELD),
        ("score_month", {"v": 1}, RejectionReason.WRONG_TYPE),
        ("score_month", float("nan"), RejectionReason.NOT_FINITE),
        ("timestamp", "2025-10-15T08:45:00", RejectionReason.BAD_TIMESTAMP),
        ("timestamp", "yesterday", RejectionReason.BAD_TIMESTAMP),
        ("timestamp", "1e12", RejectionReason.BAD_TIMESTAMP),
        ("timestamp", "2025-10-15T08:46:00Z", RejectionReason.NOT_ON_WAVE),
        ("timestamp", "2025-10-15T08:45:01Z", RejectionReason.NOT_ON_WAVE),
        ("timestamp", "2025-10-15T08:45:00.5Z", RejectionReason.NOT_ON_WAVE),
        ("timestamp", 1760517901, RejectionReason.NOT_ON_WAVE),
        ("timestamp", -1, RejectionReason.OUT_OF_RANGE),
        ("timestamp", 0, RejectionReason.OUT_OF_RANGE),
        ("timestamp", 1e308, RejectionReason.OUT_OF_RANGE),
        ("timestamp", "2200-01-01T00:00:00Z", RejectionReason.OUT_OF_RANGE),
        ("timestamp", "9999-12-31T23:59:59-23:59", RejectionReason.OUT_OF_RANGE),
        ("timestamp", float("nan"), RejectionReason.NOT_FINITE),
        ("timestamp", True, RejectionReason.WRONG_TYPE),
        ("timestamp", [2025], RejectionReason.WRONG_TYPE),
        ("timestamp", "2" * 100, RejectionReason.TOO_LONG),
        ("created_at", "not a time", RejectionReason.BAD_TIMESTAMP),
        ("created_at", float("inf"), RejectionReason.NOT_FINITE),
        ("created_at", 10**400, RejectionReason.OUT_OF_RANGE),
    ],
    ids=lambda value: "huge-int" if isinstance(value, int) and value > 10**100 else None,
)
def test_each_defect_is_rejected_with_its_reason_and_field(field, value, reason):
    rejection = rejected(raw_signal(**{field: value}))
    assert rejection.reason is reason
    assert rejection.field == field
    assert field in rejection.detail


def test_a_rejection_keeps_the_signal_id_when_it_was_readable():
    assert rejected(raw_signal(exchange="kraken")).signal_id == "sig-1"
    assert rejected(raw_signal(id="", exchange="kraken")).signal_id is None


def test_a_naive_timestamp_is_refused_with_advice_to_add_an_offset():
    detail = rejected(raw_signal(timestamp="2025-10-15T08:45:00")).detail
    assert "timezone" in detail and "Z" in detail


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=40),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=10,
)


@settings(max_examples=300, deadline=None)
@given(json_values)
def test_parse_signal_never_raises_on_arbitrary_json(raw):
    assert isinstance(parse_signal(raw), Signal | SignalRejection)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(REQUIRED_FIELDS), json_values)
def test_one_hostile_field_in_a_good_message_never_raises(field, value):
    assert isinstance(parse_signal(raw_signal(**{field: value})), Signal | SignalRejection)


@settings(max_examples=200, deadline=None)
@given(
    st.decimals(min_value=-1000, max_value=1000, places=3),
    st.integers(min_value=0, max_value=4 * 24 * 365 * 50),
    st.sampled_from(["BUY", "SELL"]),
)
def test_valid_signals_come_back_exactly_as_sent(score, quarters, action):
    wave = datetime(2020, 1, 1, tzinfo=UTC) + timedelta(minutes=15 * quarters)
    signal = parse_signal(
        raw_signal(score_week=str(score), timestamp=wave.isoformat(), action=action)
    )
    assert isinstance(signal, Signal)
    assert signal.score_week == score
    assert signal.wave == wave
    assert signal.side is (Side.LONG if action == "BUY" else Side.SHORT)


# --------------------------------------------------------------------------------- filters


def signal(
    symbol: str = "BTCUSDT",
    *,
    venue: Venue = Venue.BINANCE,
    week: str = "70",
    month: str = "60",
    sid: str = "s",
    created_minute: int = 46,
) -> Signal:
    return Signal(
        id=sid,
        symbol=symbol,
        venue=venue,
        side=Side.LONG,
        score_week=Decimal(week),
        score_month=Decimal(month),
        wave=utc(8, 45),
        created_at=utc(8, created_minute),
    )


def market(symbol: str = "BTCUSDT", *, active: bool = True, min_notional: str = "5") -> MarketRules:
    return MarketRules(
        symbol=symbol,
        tick_size=Decimal("0.1"),
        step_size=Decimal("0.001"),
        min_quantity=Decimal("0.001"),
        min_notional=Decimal(min_notional),
        max_leverage=Decimal(50),
        active=active,
    )


PARAMS = FilterParams(
    min_score_week=Decimal(50),
    min_score_month=Decimal(40),
    stop_list=frozenset({"LUNAUSDT"}),
    enabled_venues=frozenset({Venue.BINANCE}),
    sizing=SizingParams(max_exposure_usd=Decimal(2000)),
)
FACTS = TradingFacts(
    markets={(Venue.BINANCE, "BTCUSDT"): market(), (Venue.BINANCE, "LUNAUSDT"): market("LUNAUSDT")}
)


def test_a_signal_that_passes_every_filter_is_not_filtered():
    assert filter_signal(signal(), PARAMS, FACTS) is None


@pytest.mark.parametrize(
    ("sig", "facts", "reason"),
    [
        (signal("LUNAUSDT"), FACTS, FilterReason.STOP_LIST),
        (signal(week="49.99"), FACTS, FilterReason.SCORE_WEEK_BELOW_MINIMUM),
        (signal(month="39"), FACTS, FilterReason.SCORE_MONTH_BELOW_MINIMUM),
        (signal(venue=Venue.BYBIT), FACTS, FilterReason.EXCHANGE_DISABLED),
        (signal("ETHUSDT"), FACTS, FilterReason.MARKET_MISSING),
        (
            signal(),
            TradingFacts(markets={(Venue.BINANCE, "BTCUSDT"): market(active=False)}),
            FilterReason.MARKET_INACTIVE,
        ),
        (
            signal(),
            TradingFacts(markets=FACTS.markets, open_symbols={(Venue.BINANCE, "BTCUSDT")}),
            FilterReason.POSITION_ALREADY_OPEN,
        ),
        (
            signal(),
            TradingFacts(markets={(Venue.BINANCE, "BTCUSDT"): market(min_notional="250")}),
            FilterReason.BELOW_MIN_NOTIONAL,
        ),
        (
            signal(),
            TradingFacts(markets=FACTS.markets, open_positions=20),
            FilterReason.RISK_LIMITS,
        ),
        (
            signal(),
            TradingFacts(markets=FACTS.markets, exposure_usd=Decimal("1800.01")),
            FilterReason.RISK_LIMITS,
        ),
    ],
)
def test_each_filter_refuses_with_its_reason(sig, facts, reason):
    filtered = filter_signal(sig, PARAMS, facts)
    assert filtered is not None
    assert filtered.reason is reason
    assert filtered.signal == sig
    assert filtered.detail


def test_scores_exactly_at_the_thresholds_pass():
    assert filter_signal(signal(week="50", month="40"), PARAMS, FACTS) is None


def test_exposure_that_exactly_reaches_the_maximum_is_allowed():
    facts = TradingFacts(markets=FACTS.markets, exposure_usd=Decimal(1800))
    assert filter_signal(signal(), PARAMS, facts) is None


def test_an_open_position_on_the_same_symbol_at_another_exchange_does_not_block():
    facts = TradingFacts(markets=FACTS.markets, open_symbols={(Venue.BYBIT, "BTCUSDT")})
    assert filter_signal(signal(), PARAMS, facts) is None


# ------------------------------------------------------------------------------- selection


def test_five_trades_with_a_fifty_percent_reserve_make_seven_candidates():
    assert candidate_count(5, Decimal(50)) == 7
    assert candidate_count(4, Decimal(50)) == 6
    assert candidate_count(0, Decimal(50)) == 0


def test_negative_trade_counts_are_refused():
    with pytest.raises(DomainError):
        candidate_count(-1)


def test_selection_takes_the_seven_best_by_score():
    signals = [signal(f"C{i}USDT", week=str(i), sid=f"s{i}") for i in range(12)]
    chosen = select_candidates(signals, max_trades_per_wave=5, reserve_percent=Decimal(50))
    assert [s.symbol for s in chosen] == [f"C{i}USDT" for i in range(11, 4, -1)]


def test_a_duplicate_symbol_keeps_only_its_best_signal():
    weak = signal("BTCUSDT", week="60", sid="weak")
    strong = signal("BTCUSDT", week="90", sid="strong")
    other = signal("ETHUSDT", week="70", sid="eth")
    chosen = select_candidates([weak, other, strong])
    assert [s.id for s in chosen] == ["strong", "eth"]


def test_the_same_symbol_on_two_exchanges_is_not_a_duplicate():
    chosen = select_candidates(
        [signal(venue=Venue.BINANCE, sid="b"), signal(venue=Venue.BYBIT, sid="y")]
    )
    assert {s.id for s in chosen} == {"b", "y"}


def test_ties_on_week_score_are_broken_by_month_score_then_by_the_earlier_signal():
    a = signal("AUSDT", week="70", month="10", sid="a")
    b = signal("BUSDT", week="70", month="20", sid="b")
    c = signal("CUSDT", week="70", month="10", sid="c", created_minute=50)
    d = signal("DUSDT", week="70", month="10", sid="d", created_minute=47)
    assert [s.id for s in select_candidates([c, a, d, b])] == ["b", "a", "d", "c"]


signal_lists = st.lists(
    st.builds(
        signal,
        st.sampled_from(["AUSDT", "BUSDT", "CUSDT", "DUSDT", "EUSDT", "FUSDT", "GUSDT", "HUSDT"]),
        venue=st.sampled_from(list(Venue)),
        week=st.integers(-5, 100).map(str),
        month=st.integers(-5, 100).map(str),
        sid=st.text("abc", min_size=1, max_size=3),
    ),
    max_size=30,
)


@settings(max_examples=200, deadline=None)
@given(signal_lists, st.integers(0, 10))
def test_selection_is_unique_ranked_bounded_and_keeps_each_symbols_best(signals, trades):
    chosen = select_candidates(signals, max_trades_per_wave=trades)
    keys = [(s.venue, s.symbol) for s in chosen]
    assert len(keys) == len(set(keys))
    assert len(chosen) == min(len(set((s.venue, s.symbol) for s in signals)), trades + trades // 2)
    weeks = [s.score_week for s in chosen]
    assert weeks == sorted(weeks, reverse=True)
    for s in chosen:
        rivals = [r for r in signals if (r.venue, r.symbol) == (s.venue, s.symbol)]
        assert s.score_week == max(r.score_week for r in rivals)
    left_out = [s for s in signals if (s.venue, s.symbol) not in set(keys)]
    if chosen and len(chosen) == trades + trades // 2:
        assert all(s.score_week <= chosen[-1].score_week for s in left_out)


@settings(max_examples=200, deadline=None)
@given(signal_lists, st.integers(0, 10))
def test_every_signal_of_a_selection_ends_in_exactly_one_place(signals, trades):
    chosen = select(signals, max_trades_per_wave=trades)
    places = [*chosen.candidates, *chosen.duplicates, *chosen.ranked_out]
    assert sorted(map(id, places)) == sorted(map(id, signals))  # each once, none lost
    assert chosen.candidates == select_candidates(signals, max_trades_per_wave=trades)
    duplicates = {id(s) for s in chosen.duplicates}
    kept = [s for s in places if id(s) not in duplicates]
    for dup in chosen.duplicates:  # a duplicate's symbol is ranked with a better signal
        assert any((s.venue, s.symbol) == (dup.venue, dup.symbol) for s in kept)


@settings(max_examples=300, deadline=None)
@given(
    st.integers(-8, 8),
    st.integers(0, 899),
    st.one_of(st.none(), st.integers(-8, 8)),
    st.integers(0, 3),
)
def test_the_inbox_holds_only_waves_after_the_last_taken_and_up_to_the_next(
    wave_offset, seconds, taken_offset, held
):
    now = utc(9, 0) + timedelta(seconds=seconds)
    wave = utc(9, 0) + wave_offset * timedelta(minutes=15)
    taken = None if taken_offset is None else utc(9, 0) + taken_offset * timedelta(minutes=15)
    refusal = refuse_arrival(wave, now=now, taken_through=taken, held=held, max_per_wave=3)
    admitted = (taken is None or wave > taken) and wave <= utc(9, 15) and held < 3
    assert (refusal is None) == admitted
    if refusal is not None:
        assert refusal.reason and refusal.detail
        assert refusal.fate in (Fate.EXPIRED, Fate.FILTERED)


# ----------------------------------------------------------------------------- once a wave


def test_a_wave_is_processed_the_first_time():
    assert claim_wave(utc(8, 45), frozenset()) is WaveClaim.PROCESS


def test_a_wave_already_processed_is_a_duplicate_even_written_in_another_timezone():
    processed = frozenset({utc(8, 45)})
    berlin = timezone(timedelta(hours=2))
    assert claim_wave(datetime(2025, 10, 15, 10, 45, tzinfo=berlin), processed) is (
        WaveClaim.DUPLICATE
    )
    assert claim_wave(utc(9, 0), processed) is WaveClaim.PROCESS


def test_a_time_that_is_not_a_quarter_hour_is_not_a_wave():
    with pytest.raises(DomainError, match="quarter hour"):
        claim_wave(utc(8, 46), frozenset())
