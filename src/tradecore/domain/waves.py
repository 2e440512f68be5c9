"""Waves (SPEC §1, §2): which wave is due, what a valid signal is, which signals are traded.

Signals belong to quarter-hour waves (:00 :15 :30 :45 UTC). The bot checks at minutes
5, 20, 35 and 50; at check time `t` the due wave is `floor_15min(t) - 15 min`, so the
signals of a wave have had 20 minutes to arrive (09:07 -> the 08:45 wave). Those are the
defaults of a `WaveSchedule`: a wave begins every `length` from midnight UTC and the check
comes `check_offset` after a wave begins (a test run may have a wave every few seconds).

`parse_signal` turns one raw JSON object into a `Signal` or a `SignalRejection`; it never
raises, whatever it is given. `filter_signal` applies the trading filters to a valid
signal; `select_candidates` ranks and cuts a wave; `claim_wave` says whether a wave may be
processed (once, ever).
"""

from collections.abc import Iterable, Mapping, Set
from datetime import UTC, datetime, timedelta
from decimal import ROUND_FLOOR, Decimal, InvalidOperation
from enum import StrEnum

import attrs

from tradecore.domain.errors import DomainError
from tradecore.domain.model import Side, Venue
from tradecore.domain.numbers import ZERO
from tradecore.domain.precision import MarketRules
from tradecore.domain.signals import Fate, Signal
from tradecore.domain.sizing import SizingParams
from tradecore.domain.symbols import to_plain, to_venue

WAVE_LENGTH = timedelta(minutes=15)
CHECK_MINUTES = (5, 20, 35, 50)
_DAY = timedelta(days=1)

# ---------------------------------------------------------------------------- wave timing


def _whole_seconds(value: timedelta) -> bool:
    return value.microseconds == 0


def _check_length(_: object, attribute: "attrs.Attribute[timedelta]", value: timedelta) -> None:
    if value < timedelta(seconds=1) or not _whole_seconds(value) or _DAY % value:
        raise DomainError(
            f"wave length {value.total_seconds():g} s is not allowed; use a whole number of "
            "seconds that divides a day (86400 s), e.g. 900 for quarter hours or 5 for a test run"
        )


@attrs.frozen(kw_only=True)
class WaveSchedule:
    """When waves begin and when the bot checks them.

    A wave begins every `length` from midnight UTC; a check `check_offset` after a wave
    begins processes the wave before it. The defaults are the SPEC's: quarter-hour waves,
    checks at minutes 5, 20, 35 and 50.
    """

    length: timedelta = attrs.field(default=WAVE_LENGTH, validator=_check_length)
    check_offset: timedelta = timedelta(minutes=CHECK_MINUTES[0])

    def __attrs_post_init__(self) -> None:
        if not timedelta(0) <= self.check_offset < self.length:
            raise DomainError(
                f"check offset {self.check_offset.total_seconds():g} s is not allowed; it must "
                f"be 0 or more and below the wave length ({self.length.total_seconds():g} s)"
            )

    def describe(self) -> str:
        if self.length == WAVE_LENGTH:
            return "a quarter hour (:00 :15 :30 :45, second 0)"
        return f"a multiple of {self.length.total_seconds():g} s after midnight UTC"


QUARTER_HOURS = WaveSchedule()


def _utc(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        raise DomainError("wave times must be timezone-aware (UTC)")
    return moment.astimezone(UTC)


def floor_wave(moment: datetime, schedule: WaveSchedule = QUARTER_HOURS) -> datetime:
    """The beginning of the wave `moment` falls in (a quarter hour by default)."""
    utc = _utc(moment)
    midnight = utc.replace(hour=0, minute=0, second=0, microsecond=0)
    return midnight + ((utc - midnight) // schedule.length) * schedule.length


def floor_quarter(moment: datetime) -> datetime:
    """The quarter hour (:00 :15 :30 :45 UTC) at or before `moment`."""
    return floor_wave(moment, QUARTER_HOURS)


def is_wave_start(moment: datetime, schedule: WaveSchedule = QUARTER_HOURS) -> bool:
    """True when `moment` is exactly the beginning of a wave."""
    return floor_wave(moment, schedule) == moment


def is_quarter_hour(moment: datetime) -> bool:
    """True when `moment` is exactly a wave boundary."""
    return floor_quarter(moment) == moment


def due_wave(check_time: datetime, schedule: WaveSchedule = QUARTER_HOURS) -> datetime:
    """The wave a check at `check_time` processes: `floor_15min(t) - 15 min` by default.

    >>> due_wave(datetime(2025, 10, 15, 9, 7, tzinfo=UTC)).time()
    datetime.time(8, 45)
    """
    return floor_wave(check_time, schedule) - schedule.length


def next_check_after(moment: datetime, schedule: WaveSchedule = QUARTER_HOURS) -> datetime:
    """The first check time (minute 5, 20, 35 or 50, second 0 by default) strictly after
    `moment`."""
    candidate = floor_wave(moment, schedule) + schedule.check_offset
    if candidate <= _utc(moment):
        candidate += schedule.length
    return candidate


# ----------------------------------------------------------------------------- validation


class RejectionReason(StrEnum):
    """Why a raw message is not a signal."""

    NOT_AN_OBJECT = "not_an_object"
    MISSING_FIELD = "missing_field"
    WRONG_TYPE = "wrong_type"
    EMPTY = "empty"
    TOO_LONG = "too_long"
    BAD_CHARACTERS = "bad_characters"
    NOT_A_NUMBER = "not_a_number"
    NOT_FINITE = "not_finite"
    OUT_OF_RANGE = "out_of_range"
    UNKNOWN_EXCHANGE = "unknown_exchange"
    UNKNOWN_ACTION = "unknown_action"
    BAD_SYMBOL = "bad_symbol"
    BAD_TIMESTAMP = "bad_timestamp"
    NOT_ON_WAVE = "not_on_wave"


@attrs.frozen(kw_only=True)
class SignalRejection:
    """A message that is not a valid signal: the field at fault and what is wrong with it."""

    reason: RejectionReason
    field: str | None
    detail: str
    signal_id: str | None = None  # when the id itself was readable


@attrs.frozen(kw_only=True)
class SignalLimits:
    """Bounds that make a hostile message a rejection instead of a problem downstream.

    Timestamps are ISO-8601 strings with an explicit offset (`Z` or `+00:00`; a naive time
    is ambiguous and refused) or epoch numbers: seconds below 1e11, milliseconds above.
    """

    max_id_length: int = 128
    max_symbol_length: int = 32
    max_text_length: int = 64  # numeric and timestamp strings
    max_abs_score: Decimal = Decimal(1_000_000)
    earliest: datetime = datetime(2015, 1, 1, tzinfo=UTC)
    latest: datetime = datetime(2100, 1, 1, tzinfo=UTC)
    schedule: WaveSchedule = QUARTER_HOURS  # a signal's `timestamp` is a wave's beginning


REQUIRED_FIELDS = (
    "id",
    "symbol",
    "exchange",
    "action",
    "score_week",
    "score_month",
    "timestamp",
    "created_at",
)
_EPOCH_MS_THRESHOLD = Decimal(10) ** 11


class _Invalid(Exception):  # internal control flow; never escapes parse_signal
    def __init__(self, reason: RejectionReason, field: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.field = field
        self.detail = detail


def _show(value: object) -> str:
    if isinstance(value, int) and value.bit_length() > 200:
        return f"<integer of {value.bit_length()} bits>"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _text(raw: Mapping[str, object], field: str, limit: int) -> str:
    value = raw[field]
    if not isinstance(value, str):
        raise _Invalid(
            RejectionReason.WRONG_TYPE,
            field,
            f"{field} must be a string, got {type(value).__name__} {_show(value)}",
        )
    stripped = value.strip()
    if not stripped:
        raise _Invalid(RejectionReason.EMPTY, field, f"{field} is empty")
    if len(stripped) > limit:
        raise _Invalid(
            RejectionReason.TOO_LONG, field, f"{field} has {len(stripped)} characters (max {limit})"
        )
    if not stripped.isprintable():
        raise _Invalid(RejectionReason.BAD_CHARACTERS, field, f"{field} has control characters")
    return stripped


def _signal_id(raw: Mapping[str, object], limits: SignalLimits) -> str:
    value = raw["id"]
    if isinstance(value, int) and not isinstance(value, bool):
        if value < 0 or value.bit_length() > 4 * limits.max_id_length:
            raise _Invalid(RejectionReason.OUT_OF_RANGE, "id", f"id {_show(value)} is out of range")
        return str(value)
    return _text(raw, "id", limits.max_id_length)


def _decimal(field: str, value: object, limits: SignalLimits) -> Decimal:
    """A finite Decimal from an int, float, Decimal or numeric string (never a bool)."""
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal | str):
        raise _Invalid(
            RejectionReason.WRONG_TYPE,
            field,
            f"{field} must be a number, got {type(value).__name__} {_show(value)}",
        )
    if isinstance(value, str) and len(value) > limits.max_text_length:
        raise _Invalid(
            RejectionReason.TOO_LONG, field, f"{field} is a string of {len(value)} chars"
        )
    if isinstance(value, int) and value.bit_length() > 256:
        raise _Invalid(RejectionReason.OUT_OF_RANGE, field, f"{field} is an enormous integer")
    try:
        # floats go through their shortest repr: 0.1 -> Decimal("0.1")
        number = Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
    except (InvalidOperation, ValueError):
        raise _Invalid(
            RejectionReason.NOT_A_NUMBER, field, f"{field} is not a number: {_show(value)}"
        ) from None
    if not number.is_finite():
        raise _Invalid(RejectionReason.NOT_FINITE, field, f"{field} must be finite, got {value!r}")
    return number


def _score(raw: Mapping[str, object], field: str, limits: SignalLimits) -> Decimal:
    number = _decimal(field, raw[field], limits)
    if number.copy_abs() > limits.max_abs_score:
        raise _Invalid(
            RejectionReason.OUT_OF_RANGE,
            field,
            f"{field} {_show(raw[field])} is outside ±{limits.max_abs_score}",
        )
    return ZERO if number.is_zero() else number  # -0 is 0


def _venue(raw: Mapping[str, object], limits: SignalLimits) -> Venue:
    text = _text(raw, "exchange", limits.max_symbol_length)
    try:
        return Venue.parse(text)
    except DomainError as error:
        raise _Invalid(RejectionReason.UNKNOWN_EXCHANGE, "exchange", str(error)) from None


def _side(raw: Mapping[str, object]) -> Side:
    text = _text(raw, "action", 16)
    try:
        return Side.from_action(text)
    except DomainError as error:
        raise _Invalid(RejectionReason.UNKNOWN_ACTION, "action", str(error)) from None


def _symbol(raw: Mapping[str, object], limits: SignalLimits) -> str:
    text = _text(raw, "symbol", limits.max_symbol_length)
    try:
        plain = to_plain(text)
        to_venue(plain)  # must end in a supported quote currency
    except DomainError as error:
        raise _Invalid(RejectionReason.BAD_SYMBOL, "symbol", str(error)) from None
    if not plain.isascii():
        raise _Invalid(RejectionReason.BAD_SYMBOL, "symbol", f"symbol {text!r} is not ASCII")
    return plain


def _from_epoch(field: str, number: Decimal, limits: SignalLimits) -> datetime:
    if number.copy_abs() > _EPOCH_MS_THRESHOLD * 1000:  # before any arithmetic can overflow
        raise _Invalid(RejectionReason.OUT_OF_RANGE, field, f"{field} {number} is not an epoch")
    seconds = number / 1000 if abs(number) >= _EPOCH_MS_THRESHOLD else number
    earliest, latest = limits.earliest.timestamp(), limits.latest.timestamp()
    if not Decimal(earliest) <= seconds < Decimal(latest):
        raise _Invalid(
            RejectionReason.OUT_OF_RANGE,
            field,
            f"{field} {number} (epoch) is outside {limits.earliest.year}-{limits.latest.year}",
        )
    whole = int(seconds.to_integral_value(rounding=ROUND_FLOOR))
    micros = int(((seconds - whole) * 1_000_000).to_integral_value(rounding=ROUND_FLOOR))
    return datetime.fromtimestamp(whole, tz=UTC) + timedelta(microseconds=micros)


def _from_iso(field: str, text: str, limits: SignalLimits) -> datetime:
    if len(text) > limits.max_text_length:
        raise _Invalid(RejectionReason.TOO_LONG, field, f"{field} is a string of {len(text)} chars")
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise _Invalid(
            RejectionReason.BAD_TIMESTAMP,
            field,
            f"{field} {_show(text)} is neither ISO-8601 nor epoch seconds/milliseconds",
        ) from None
    if moment.tzinfo is None:
        raise _Invalid(
            RejectionReason.BAD_TIMESTAMP,
            field,
            f"{field} {_show(text)} has no timezone; add Z or +00:00",
        )
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        raise _Invalid(RejectionReason.OUT_OF_RANGE, field, f"{field} {text!r} overflows") from None


def _looks_numeric(text: str) -> bool:
    stripped = text.strip()
    return bool(stripped) and stripped.lstrip("+-").replace(".", "", 1).isdigit()


def _timestamp(raw: Mapping[str, object], field: str, limits: SignalLimits) -> datetime:
    value = raw[field]
    if isinstance(value, str) and not _looks_numeric(value):
        moment = _from_iso(field, value, limits)
    elif isinstance(value, int | float | Decimal | str) and not isinstance(value, bool):
        moment = _from_epoch(field, _decimal(field, value, limits), limits)
    else:
        raise _Invalid(
            RejectionReason.WRONG_TYPE,
            field,
            f"{field} must be an ISO-8601 string or an epoch number, "
            f"got {type(value).__name__} {_show(value)}",
        )
    if not limits.earliest <= moment < limits.latest:
        raise _Invalid(
            RejectionReason.OUT_OF_RANGE,
            field,
            f"{field} {moment.isoformat()} is outside {limits.earliest.year}-{limits.latest.year}",
        )
    return moment


def _wave(raw: Mapping[str, object], limits: SignalLimits) -> datetime:
    moment = _timestamp(raw, "timestamp", limits)
    if not is_wave_start(moment, limits.schedule):
        raise _Invalid(
            RejectionReason.NOT_ON_WAVE,
            "timestamp",
            f"timestamp {moment.isoformat()} is not {limits.schedule.describe()}",
        )
    return moment


def _build(raw: Mapping[str, object], limits: SignalLimits) -> Signal:
    for field in REQUIRED_FIELDS:
        if field not in raw or raw[field] is None:
            raise _Invalid(RejectionReason.MISSING_FIELD, field, f"field {field!r} is missing")
    return Signal(
        id=_signal_id(raw, limits),
        symbol=_symbol(raw, limits),
        venue=_venue(raw, limits),
        side=_side(raw),
        score_week=_score(raw, "score_week", limits),
        score_month=_score(raw, "score_month", limits),
        wave=_wave(raw, limits),
        created_at=_timestamp(raw, "created_at", limits),
    )


def _readable_id(raw: Mapping[str, object], limits: SignalLimits) -> str | None:
    try:
        return _signal_id(raw, limits) if "id" in raw else None
    except _Invalid:
        return None


def parse_signal(raw: object, limits: SignalLimits | None = None) -> Signal | SignalRejection:
    """Validate one decoded JSON message into a Signal, or say exactly why it is not one.

    Never raises for bad input. Unknown extra fields are ignored (forward compatibility).
    """
    bounds = limits or SignalLimits()
    if not isinstance(raw, Mapping):
        return SignalRejection(
            reason=RejectionReason.NOT_AN_OBJECT,
            field=None,
            detail=f"a signal must be a JSON object, got {type(raw).__name__}",
        )
    try:
        return _build(raw, bounds)
    except _Invalid as invalid:
        return SignalRejection(
            reason=invalid.reason,
            field=invalid.field,
            detail=invalid.detail,
            signal_id=_readable_id(raw, bounds),
        )
    except (RecursionError, ArithmeticError, ValueError, TypeError) as error:
        # Last line of defence for a pathological value none of the checks above foresaw.
        return SignalRejection(
            reason=RejectionReason.WRONG_TYPE,
            field=None,
            detail=f"message could not be read: {type(error).__name__}",
        )


# -------------------------------------------------------------------------------- filters


class FilterReason(StrEnum):
    """Why a valid signal is not traded (the reason of a `signal_filtered` event)."""

    STOP_LIST = "stop_list"
    SCORE_WEEK_BELOW_MINIMUM = "score_week_below_minimum"
    SCORE_MONTH_BELOW_MINIMUM = "score_month_below_minimum"
    EXCHANGE_DISABLED = "exchange_disabled"
    MARKET_MISSING = "market_missing"
    MARKET_INACTIVE = "market_inactive"
    POSITION_ALREADY_OPEN = "position_already_open"
    BELOW_MIN_NOTIONAL = "below_min_notional"
    RISK_LIMITS = "risk_limits"


@attrs.frozen(kw_only=True)
class FilterParams:
    """Configuration of the wave filters. Stop-list entries are plain symbols (`BTCUSDT`)."""

    min_score_week: Decimal = ZERO
    min_score_month: Decimal = ZERO
    stop_list: frozenset[str] = frozenset()
    enabled_venues: frozenset[Venue] = frozenset(Venue)
    # The size and the account limits are sizing's, not a second copy with its own defaults.
    sizing: SizingParams = attrs.Factory(SizingParams)


@attrs.frozen(kw_only=True)
class TradingFacts:
    """What is true right now, gathered by the caller: markets, open positions, exposure."""

    markets: Mapping[tuple[Venue, str], MarketRules]
    open_symbols: Set[tuple[Venue, str]] = frozenset()
    open_positions: int = 0
    exposure_usd: Decimal = ZERO


@attrs.frozen(kw_only=True)
class Filtered:
    """A valid signal the filters refused, with the reason and what the numbers were."""

    signal: Signal
    reason: FilterReason
    detail: str


def _venue_filters(signal: Signal, params: FilterParams) -> Filtered | None:
    if signal.symbol in params.stop_list:
        return Filtered(
            signal=signal, reason=FilterReason.STOP_LIST, detail=f"{signal.symbol} is stop-listed"
        )
    if signal.venue not in params.enabled_venues:
        return Filtered(
            signal=signal,
            reason=FilterReason.EXCHANGE_DISABLED,
            detail=f"{signal.venue.value} is not enabled",
        )
    return None


def _score_filters(signal: Signal, params: FilterParams) -> Filtered | None:
    if signal.score_week < params.min_score_week:
        return Filtered(
            signal=signal,
            reason=FilterReason.SCORE_WEEK_BELOW_MINIMUM,
            detail=f"score_week {signal.score_week} < {params.min_score_week}",
        )
    if signal.score_month < params.min_score_month:
        return Filtered(
            signal=signal,
            reason=FilterReason.SCORE_MONTH_BELOW_MINIMUM,
            detail=f"score_month {signal.score_month} < {params.min_score_month}",
        )
    return None


def _market_filters(signal: Signal, params: FilterParams, facts: TradingFacts) -> Filtered | None:
    key = (signal.venue, signal.symbol)
    market = facts.markets.get(key)
    where = f"{signal.symbol} on {signal.venue.value}"
    if market is None:
        return Filtered(signal=signal, reason=FilterReason.MARKET_MISSING, detail=f"no {where}")
    if not market.active:
        return Filtered(
            signal=signal, reason=FilterReason.MARKET_INACTIVE, detail=f"{where} is not trading"
        )
    if key in facts.open_symbols:
        return Filtered(
            signal=signal,
            reason=FilterReason.POSITION_ALREADY_OPEN,
            detail=f"a position on {where} is already open",
        )
    size = params.sizing.position_size_usd
    if size < market.min_notional:
        return Filtered(
            signal=signal,
            reason=FilterReason.BELOW_MIN_NOTIONAL,
            detail=f"{size} USD < minimum notional {market.min_notional}",
        )
    return None


def _risk_filters(signal: Signal, params: FilterParams, facts: TradingFacts) -> Filtered | None:
    limits = params.sizing
    if facts.open_positions >= limits.max_open_positions:
        detail = f"{facts.open_positions} positions open (max {limits.max_open_positions})"
    elif facts.exposure_usd + limits.position_size_usd > limits.max_exposure_usd:
        detail = (
            f"exposure {facts.exposure_usd} + {limits.position_size_usd} USD "
            f"> max {limits.max_exposure_usd}"
        )
    else:
        return None
    return Filtered(signal=signal, reason=FilterReason.RISK_LIMITS, detail=detail)


def filter_signal(signal: Signal, params: FilterParams, facts: TradingFacts) -> Filtered | None:
    """The first filter that refuses `signal`, or None when it may be traded.

    Order: stop-list, exchange disabled, score_week, score_month, market missing, market
    inactive, position already open, minimum notional, risk limits.
    """
    return (
        _venue_filters(signal, params)
        or _score_filters(signal, params)
        or _market_filters(signal, params, facts)
        or _risk_filters(signal, params, facts)
    )


# ------------------------------------------------------------------------------ selection


def candidate_count(max_trades_per_wave: int, reserve_percent: Decimal = Decimal(50)) -> int:
    """`max_trades + floor(max_trades * reserve%)`: 5 trades with 50 % reserve -> 7."""
    if max_trades_per_wave < 0 or reserve_percent < 0:
        raise DomainError("max_trades_per_wave and reserve_percent must not be negative")
    reserve = (Decimal(max_trades_per_wave) * reserve_percent / 100).to_integral_value(
        rounding=ROUND_FLOOR
    )
    return max_trades_per_wave + int(reserve)


def _rank_key(signal: Signal) -> tuple[Decimal, Decimal, float, str]:
    # Best first: higher week score, then month score, then the earlier signal, then id.
    return (-signal.score_week, -signal.score_month, signal.created_at.timestamp(), signal.id)


def rank(signals: Iterable[Signal]) -> tuple[Signal, ...]:
    """Signals best first, one per (exchange, symbol): a duplicate keeps the best of them."""
    best: dict[tuple[Venue, str], Signal] = {}
    for signal in sorted(signals, key=_rank_key):
        best.setdefault((signal.venue, signal.symbol), signal)
    return tuple(best.values())


def select_candidates(
    signals: Iterable[Signal],
    max_trades_per_wave: int = 5,
    reserve_percent: Decimal = Decimal(50),
) -> tuple[Signal, ...]:
    """The wave's candidates: ranked, deduplicated, cut to trades plus reserve.

    The caller opens them in order until `max_trades_per_wave` succeed.
    """
    return select(signals, max_trades_per_wave, reserve_percent).candidates


@attrs.frozen(kw_only=True)
class Selection:
    """A wave's signals that passed the filters, each in exactly one place."""

    candidates: tuple[Signal, ...]  # best first: trades, then the reserve
    duplicates: tuple[Signal, ...]  # a better signal of the same (exchange, symbol) is ranked
    ranked_out: tuple[Signal, ...]  # ranked below the candidates


def select(
    signals: Iterable[Signal],
    max_trades_per_wave: int = 5,
    reserve_percent: Decimal = Decimal(50),
) -> Selection:
    """`select_candidates`, and what became of every other signal (each has a fate)."""
    given = tuple(signals)
    ranked = rank(given)
    kept = {id(s) for s in ranked}
    cut = candidate_count(max_trades_per_wave, reserve_percent)
    return Selection(
        candidates=ranked[:cut],
        duplicates=tuple(s for s in given if id(s) not in kept),
        ranked_out=ranked[cut:],
    )


# ------------------------------------------------------------------------------- arrival

MAX_SIGNALS_PER_WAVE = 10_000


@attrs.frozen(kw_only=True)
class ArrivalRefusal:
    """A valid signal the inbox will not hold: its fate, the reason and the numbers."""

    fate: Fate
    reason: str
    detail: str


def refuse_arrival(
    wave: datetime,
    *,
    now: datetime,
    taken_through: datetime | None,
    held: int,
    schedule: WaveSchedule = QUARTER_HOURS,
    max_per_wave: int = MAX_SIGNALS_PER_WAVE,
) -> ArrivalRefusal | None:
    """Why a signal of `wave` arriving at `now` is not held for its wave, or None.

    A wave already taken (its check has read its signals) will never read it: expired. A
    wave more than one wave ahead of `now` is refused, and so is a wave already holding
    `max_per_wave` signals, so what waits in memory is bounded: at most the waves from the
    last one taken to the next one, each at most `max_per_wave` signals.
    """
    if taken_through is not None and wave <= taken_through:
        return ArrivalRefusal(
            fate=Fate.EXPIRED,
            reason="wave_already_taken",
            detail=f"wave {wave.isoformat()} was taken before the signal came",
        )
    latest = floor_wave(now, schedule) + schedule.length
    if wave > latest:
        return ArrivalRefusal(
            fate=Fate.FILTERED,
            reason="wave_too_far_ahead",
            detail=f"wave {wave.isoformat()} is after the next one ({latest.isoformat()})",
        )
    if held >= max_per_wave:
        return ArrivalRefusal(
            fate=Fate.FILTERED,
            reason="wave_full",
            detail=f"wave {wave.isoformat()} already holds {held} signals (max {max_per_wave})",
        )
    return None


# --------------------------------------------------------------------------- once per wave


class WaveClaim(StrEnum):
    PROCESS = "process"
    DUPLICATE = "duplicate"  # already processed: emit wave_duplicate_detected, do nothing


def claim_wave(
    wave: datetime, processed: Set[datetime], schedule: WaveSchedule = QUARTER_HOURS
) -> WaveClaim:
    """Whether `wave` may be processed, given every wave already processed (across restarts).

    Aware datetimes compare by instant, so the same wave in another timezone is a duplicate.
    """
    if not is_wave_start(wave, schedule):
        raise DomainError(f"{wave.isoformat()} is not a wave ({schedule.describe()})")
    return WaveClaim.DUPLICATE if wave in processed else WaveClaim.PROCESS


@attrs.frozen(kw_only=True)
class WaveReport:
    """What one wave's processing did: its counts, as the summary and the reports read them."""

    wave: datetime
    signals: int = 0
    filtered: int = 0
    candidates: int = 0
    opened: int = 0
    failed: int = 0
    unproven: int = 0  # entries sent but not proven: in flight, each holding its place
    duplicate: bool = False
    found: bool = True
    skipped: bool = False  # its check could not run within its window (the database)
    rejections: Mapping[str, int] = attrs.Factory(dict)
