"""The paper session's market: a deterministic sample from a seed, or the user's own files.

The sample is a few hours of quarter-hour waves of signals and one mark price a minute for
~30 symbols. Everything comes from `random.Random(seed)`, so one seed is one market. It has,
on purpose:

- a flash crash: a handful of symbols fall 12 % in one minute and recover (stops gap-fill);
- an aged position: `AGEDUSDT` barely moves, gets the best-scored signal of the first wave,
  outlives `max_position_age_hours` and leaves through the aged manager's breakeven exit;
- noise the bot must refuse: an unknown symbol, a duplicate signal, a malformed line.

User files (docs/operations.md, "Paper sessions on your own data"):

- `--signals FILE`: JSONL, one signal per line, the signal service's message (docs/signals.md);
- `--prices FILE`: CSV with the header `timestamp,symbol,mark` (ISO-8601 times with an
  offset); each symbol's market (tick, step) is derived from its first mark.
"""

import csv
import json
import random
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path

import attrs

from tradecore.adapters.paper import ListPath
from tradecore.domain.model import Venue
from tradecore.domain.precision import MarketRules

TICK_SECONDS = 60
WAVE = timedelta(minutes=15)
AGED_SYMBOL = "AGEDUSDT"
UNKNOWN_SYMBOL = "NOPEUSDT"
DEFAULT_START = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)

# (symbol, starting mark): real-looking prices from 0.000012 to 60 000.
_UNIVERSE: tuple[tuple[str, str], ...] = (
    ("BTCUSDT", "60000"),
    ("ETHUSDT", "3000"),
    ("SOLUSDT", "150"),
    ("BNBUSDT", "580"),
    ("XRPUSDT", "0.62"),
    ("DOGEUSDT", "0.16"),
    ("ADAUSDT", "0.45"),
    ("AVAXUSDT", "35"),
    ("LINKUSDT", "17"),
    ("DOTUSDT", "7.2"),
    ("TRXUSDT", "0.12"),
    ("LTCUSDT", "85"),
    ("BCHUSDT", "450"),
    ("NEARUSDT", "6.1"),
    ("APTUSDT", "9.4"),
    ("ARBUSDT", "1.1"),
    ("OPUSDT", "2.4"),
    ("ATOMUSDT", "8.8"),
    ("FILUSDT", "5.9"),
    ("INJUSDT", "27"),
    ("SUIUSDT", "1.3"),
    ("TIAUSDT", "11"),
    ("WIFUSDT", "2.7"),
    ("1000PEPEUSDT", "0.0123456"),
    ("1000SHIBUSDT", "0.024"),
    ("FETUSDT", "2.2"),
    ("AAVEUSDT", "110"),
    ("UNIUSDT", "9.9"),
    ("SEIUSDT", "0.55"),
)
SAMPLE_SYMBOLS = len(_UNIVERSE) + 1  # the aged-exit symbol and the universe


@attrs.frozen(kw_only=True)
class Market:
    """What the paper venue trades and how its marks move."""

    start: datetime
    end: datetime
    rules: tuple[MarketRules, ...]
    marks: Mapping[str, Decimal]  # at the start
    paths: Mapping[str, tuple[tuple[datetime, Decimal], ...]]

    def list_paths(self) -> dict[str, ListPath]:
        return {symbol: ListPath(points) for symbol, points in self.paths.items()}


@attrs.frozen(kw_only=True)
class Sample:
    market: Market
    signal_lines: tuple[str, ...]  # JSONL, as the signal service sends them
    flash_crash_at: datetime | None = None

    def write_signals(self, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(f"{line}\n" for line in self.signal_lines), encoding="utf-8")
        return path


def rules_for(symbol: str, mark: Decimal) -> MarketRules:
    """A plausible market for `mark`: five significant digits of tick, ~1-10 USDT of step."""
    magnitude = mark.adjusted()
    return MarketRules(
        symbol=symbol,
        tick_size=Decimal(1).scaleb(magnitude - 4),
        step_size=Decimal(1).scaleb(-magnitude),
        min_quantity=Decimal(1).scaleb(-magnitude),
        min_notional=Decimal(5),
        max_leverage=Decimal(50),
    )


def _on_tick(price: Decimal, tick: Decimal) -> Decimal:
    units = (price / tick).quantize(Decimal(1), rounding=ROUND_HALF_EVEN)
    return max(units, Decimal(1)) * tick


def generate(
    *,
    seed: int = 7,
    hours: float = 4.0,
    symbols: int = 30,
    venue: Venue = Venue.BINANCE,
    start: datetime = DEFAULT_START,
) -> Sample:
    """The bundled sample: `hours` of waves and marks for `symbols` symbols (at most
    `SAMPLE_SYMBOLS`; more is a ValueError, never a silent cap)."""
    if not 1 <= symbols <= SAMPLE_SYMBOLS:
        raise ValueError(f"the sample holds 1 to {SAMPLE_SYMBOLS} symbols, not {symbols}")
    rng = random.Random(seed)
    start = start.replace(microsecond=0)
    end = start + timedelta(hours=hours)
    universe = [(AGED_SYMBOL, "25"), *_UNIVERSE][:symbols]
    crash_at = start + timedelta(hours=hours * 0.55)
    crashed = {s for s, _ in rng.sample(universe[1:], k=min(5, len(universe) - 1))}
    paths: dict[str, tuple[tuple[datetime, Decimal], ...]] = {}
    rules = []
    for symbol, mark in universe:
        symbol_rules = rules_for(symbol, Decimal(mark))
        rules.append(symbol_rules)
        quiet = symbol == AGED_SYMBOL
        paths[symbol] = _walk(
            rng, symbol_rules, Decimal(mark), start, end, quiet=quiet,
            crash_at=crash_at if symbol in crashed else None,
        )  # fmt: skip
    market = Market(
        start=start,
        end=end,
        rules=tuple(rules),
        marks={s: Decimal(m) for s, m in universe},
        paths=paths,
    )
    lines = _signals(rng, [s for s, _ in universe[1:]], start, end, venue, aged=AGED_SYMBOL)
    return Sample(market=market, signal_lines=tuple(lines), flash_crash_at=crash_at)


def _walk(
    rng: random.Random,
    market: MarketRules,
    first: Decimal,
    start: datetime,
    end: datetime,
    *,
    quiet: bool,
    crash_at: datetime | None,
) -> tuple[tuple[datetime, Decimal], ...]:
    volatility = 0.0004 if quiet else rng.uniform(0.0015, 0.005)
    drift = 0.0 if quiet else rng.uniform(-0.0004, 0.0004)
    price = float(first)
    points = []
    steps = int((end - start).total_seconds() // TICK_SECONDS)
    aged_lift_from = int(steps * 0.85)  # the quiet symbol creeps up late: its exit fills
    recovery = 0
    for step in range(1, steps + 1):
        at = start + timedelta(seconds=TICK_SECONDS * step)
        move = rng.gauss(drift, volatility)
        if quiet:
            move = max(-0.002, min(0.002, move)) + (0.0008 if step >= aged_lift_from else 0)
            price = max(price * (1 + move), float(first) * 0.985)
        else:
            price *= 1 + move
        if crash_at is not None and abs((at - crash_at).total_seconds()) < TICK_SECONDS / 2:
            price *= 0.88
            recovery = 10
        elif recovery:
            price *= 1.012
            recovery -= 1
        points.append((at, _on_tick(Decimal(repr(round(price, 12))), market.tick_size)))
    return tuple(points)


def _signals(
    rng: random.Random,
    symbols: Sequence[str],
    start: datetime,
    end: datetime,
    venue: Venue,
    *,
    aged: str | None = None,
) -> list[str]:
    lines: list[str] = []
    wave = first_wave = start.replace(minute=start.minute - start.minute % 15, second=0)
    number = 0
    last_wave = end - timedelta(minutes=25)  # the last wave is still checked before the end
    while wave <= last_wave:
        bodies = []
        for i in range(rng.randint(8, 20)):
            number += 1
            symbol = rng.choice(symbols) if symbols else UNKNOWN_SYMBOL
            if number % 23 == 0:
                symbol = UNKNOWN_SYMBOL
            body = _signal(rng, number, symbol, wave, venue)
            if aged is not None and wave == first_wave and i == 0:
                body.update(symbol=aged, action="BUY", score_week=100, score_month=100)
            bodies.append(body)
            if number % 31 == 0:
                bodies.append(body)  # the service sent it twice
        # The service sends signals as it produces them.
        lines += [json.dumps(b) for b in sorted(bodies, key=lambda b: str(b["created_at"]))]
        if wave == first_wave + WAVE:
            lines.append('{"id": "broken", "symbol": "BTCUSDT", "action": ')  # cut short
        wave += WAVE
    return lines


def _signal(
    rng: random.Random, number: int, symbol: str, wave: datetime, venue: Venue
) -> dict[str, object]:
    created = wave + timedelta(seconds=rng.randint(20, 600))
    return {
        "id": f"sample-{number:05d}",
        "symbol": symbol,
        "exchange": venue.value,
        "action": rng.choice(("BUY", "SELL")),
        "score_week": round(rng.uniform(0, 100), 1),
        "score_month": round(rng.uniform(0, 100), 1),
        "timestamp": _iso(wave),
        "created_at": _iso(created),
    }


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# -- the user's files -----------------------------------------------------------------------


class DataFileError(ValueError):
    """A prices or signals file the session cannot use; the message names file and line."""


def read_prices(path: Path) -> Market:
    """Marks from a CSV file `timestamp,symbol,mark`, one row per tick, any order."""
    points: dict[str, list[tuple[datetime, Decimal]]] = {}
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            if reader.fieldnames is None or not {"timestamp", "symbol", "mark"} <= set(
                reader.fieldnames
            ):
                raise DataFileError(
                    f"{path}: the first line must be the header timestamp,symbol,mark"
                )
            for row in reader:
                at, symbol, mark = _price_row(path, reader.line_num, row)
                points.setdefault(symbol, []).append((at, mark))
    except OSError as exc:
        raise DataFileError(f"{path}: cannot be read ({exc.strerror})") from None
    if not points:
        raise DataFileError(f"{path}: holds no prices")
    return _market_from(points)


def _price_row(path: Path, line: int, row: Mapping[str, str]) -> tuple[datetime, str, Decimal]:
    try:
        at = datetime.fromisoformat(row["timestamp"].strip().replace("Z", "+00:00"))
        mark = Decimal(row["mark"].strip())
    except (ValueError, ArithmeticError, AttributeError):
        raise DataFileError(
            f"{path}:{line}: expected an ISO-8601 time with offset and a price, got "
            f"{row.get('timestamp')!r}, {row.get('mark')!r}"
        ) from None
    symbol = (row.get("symbol") or "").strip().upper()
    if at.tzinfo is None or not symbol or not mark.is_finite() or mark <= 0:
        raise DataFileError(
            f"{path}:{line}: needs a time with an offset (Z or +00:00), a symbol and a "
            f"positive mark; got {dict(row)!r}"
        )
    return at.astimezone(UTC), symbol, mark


def _market_from(points: Mapping[str, list[tuple[datetime, Decimal]]]) -> Market:
    ordered = {s: sorted(p) for s, p in points.items()}
    start = min(p[0][0] for p in ordered.values())
    end = max(p[-1][0] for p in ordered.values())
    return Market(
        start=start,
        end=end,
        rules=tuple(rules_for(s, p[0][1]) for s, p in ordered.items()),
        marks={s: p[0][1] for s, p in ordered.items()},
        paths={s: tuple(p) for s, p in ordered.items()},
    )


def signal_window(path: Path) -> tuple[datetime, datetime, set[str]]:
    """The first and last wave and the symbols of a signals file (bad lines skipped: the
    session's replay reports them as `signal_rejected` events)."""
    waves: list[datetime] = []
    symbols: set[str] = set()
    try:
        with path.open(encoding="utf-8", errors="replace") as handle:
            for line in handle:
                found = _wave_and_symbol(line)
                if found is not None:
                    waves.append(found[0])
                    symbols.add(found[1])
    except OSError as exc:
        raise DataFileError(f"{path}: cannot be read ({exc.strerror})") from None
    if not waves:
        raise DataFileError(f"{path}: holds no signal with a readable timestamp (docs/signals.md)")
    return min(waves), max(waves), symbols


def _wave_and_symbol(line: str) -> tuple[datetime, str] | None:
    try:
        body = json.loads(line)
        stamp = body["timestamp"]
        if isinstance(stamp, int | float):
            at = datetime.fromtimestamp(stamp / 1000 if stamp > 1e11 else stamp, UTC)
        else:
            at = datetime.fromisoformat(str(stamp).replace("Z", "+00:00")).astimezone(UTC)
        return at, str(body["symbol"]).replace("/", "").split(":")[0].upper()
    except (ValueError, KeyError, TypeError, AttributeError, OverflowError):
        return None


def market_for_signals(
    path: Path, *, seed: int, venue: Venue, prices: Market | None = None
) -> tuple[Market, datetime]:
    """The market a signals file trades on (the sample's walk for symbols without prices) and
    when the session ends: 30 minutes after the last wave's check."""
    first, last, symbols = signal_window(path)
    end = last + timedelta(minutes=50)
    if prices is not None:
        return prices, max(end, prices.end)
    start = first.replace(minute=0)
    hours = (end - start).total_seconds() / 3600
    base = generate(seed=seed, hours=hours, venue=venue, start=start).market
    rng = random.Random(seed)
    extra = {s: Decimal(str(round(rng.uniform(1, 100), 2))) for s in sorted(symbols)}
    paths = dict(base.paths)
    rules = list(base.rules)
    marks = dict(base.marks)
    for symbol, mark in extra.items():
        if symbol in paths or not symbol.isalnum():
            continue
        symbol_rules = rules_for(symbol, mark)
        rules.append(symbol_rules)
        marks[symbol] = mark
        paths[symbol] = _walk(rng, symbol_rules, mark, start, end, quiet=False, crash_at=None)
    market = Market(start=start, end=end, rules=tuple(rules), marks=marks, paths=paths)
    return market, end


def synthetic_signals(market: Market, *, seed: int, venue: Venue) -> tuple[str, ...]:
    """Sample waves over a prices file's symbols and time span."""
    rng = random.Random(seed)
    return tuple(_signals(rng, sorted(market.marks), market.start, market.end, venue))
