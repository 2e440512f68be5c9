"""The world of one seed: markets, mark paths, signal waves and the schedule of incidents.

Everything comes from `random.Random(seed)` (and generators seeded from it), nothing else.
The marks and the signals are the world; the *incidents* (venue faults, people, process
crashes, database and signal-stream outages) are the fault schedule a failing seed is
reduced over, so each incident carries every number it needs and removing one changes
nothing else.
"""

import random
from collections.abc import Iterator
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

import attrs

from tradecore.adapters.clock import DEFAULT_START
from tradecore.adapters.paper import PROFILES, Op, default_markets
from tradecore.domain.model import Side, Venue
from tradecore.domain.precision import MarketRules
from tradecore.domain.signals import Signal
from tradecore.domain.waves import WAVE_LENGTH, floor_quarter
from tradecore.ports.exchange import RejectReason

R = RejectReason

# The venue answers a transport fault with these (docs/testing.md, "Faults").
TRANSPORT_FAULTS = (
    "lost_request",  # the request never reached the venue: Unknown
    "lost_answer",  # the venue did it, the answer was lost: Unknown
    "server_error_5xx",
    "rate_limit_429",
    "ban_418",  # a longer run of rate-limit refusals (the paper venue answers -1003/10006)
    "network_error",
)
# Every refusal the paper profiles map, by reason; "already done" ones included:
# Binance -4116 / Bybit 110072 (client id already used), Bybit 34040 (not modified).
REJECT_REASONS = (
    R.WOULD_TRIGGER_IMMEDIATELY,
    R.BELOW_MIN_NOTIONAL,
    R.INSUFFICIENT_BALANCE,
    R.SYMBOL_UNAVAILABLE,
    R.UNKNOWN_SYMBOL,
    R.REGION_RESTRICTED,
    R.REDUCE_ONLY_WOULD_INCREASE,
    R.INVALID_PRICE,
    R.INVALID_QUANTITY,
    R.DUPLICATE_CLIENT_ID,
    R.ORDER_NOT_FOUND,
    R.TOO_MANY_CONDITIONAL_ORDERS,
    R.STOP_ALREADY_EXISTS,
    R.NO_POSITION,
    R.NOT_SUPPORTED,
    R.NOT_MODIFIED,
    R.AUTHENTICATION,
    R.OTHER,
)
FAULT_KINDS = (
    *TRANSPORT_FAULTS,
    *(f"reject:{reason.value}" for reason in REJECT_REASONS),
    "partial_fill",
)
PERSON_ACTIONS = (
    "cancel_stop",
    "move_stop_looser",
    "move_stop_tighter",
    "add_take_profit",
    "open_by_hand",
    "close_by_hand",
    "partly_close_by_hand",
)
# Where a crash hits: which port, a command (write) or a query (read), before or after.
CRASH_POINTS = tuple(
    f"{port}.{kind}:{when}"
    for port in ("exchange", "store")
    for kind in ("command", "query")
    for when in ("before", "after")
)
OUTAGES = ("database", "signals")  # counted as outage:database, outage:signals
# Races timed to the application's own moves, counted as race:<name> when they happen.
# guard_read: while a protection pass reads the venue, a person removes a position's stop
# just before the pass's read of every open order reaches the venue, and the read's answer
# comes back slowly (`duration` s, a slow network); as it arrives the mark jumps in the
# position's favour (`fraction`), so the trailing service moves that stop before the pass
# acts on what it read (issue 10, story 1: the pass must act on the venue as it is then).
RACES = ("guard_read",)
# A crash timed to a stop replacement (issue 10, story 8), counted as replace_crash when it
# happens: armed at its moment, it hits the next trailing move that replaces a stop
# create-first (a venue that can neither amend a stop nor attach one to the position): the
# new stop reaches the venue and the process dies as the venue's answer comes back, before
# it records the new stop; it stays down `duration` s. Drawn only on such venues.
REPLACE_CRASH = "replace_crash"
# A crash timed to an open's initial stop (issue 10, story 7), counted as initial_stop_crash
# when it happens: armed at its moment, it hits the next stop an open sends for its fill (the
# journal's position on the symbol is PENDING_SL): the venue takes it and the process dies as
# the venue's answer comes back, before it records the stop; it stays down `duration` s.
# Drawn on every venue; on one whose entry carries its stop (Bybit) an open sends its initial
# stop only when the fill's stop is tighter than the one carried, so it waits for such an open.
INITIAL_STOP_CRASH = "initial_stop_crash"

# The commands a fault may hit, as the bot sends them on the venue: where a stop is replaced
# create-first (no amend, no position stop) stops come twice and exits are limit orders;
# where the position holds its stop, it is set and amended in place.
_REPLACED_STOPS = (Op.STOP_ORDER, Op.STOP_ORDER, Op.CANCEL, Op.MARKET_ORDER, Op.LIMIT_ORDER)
_POSITION_STOPS = (Op.POSITION_STOP, Op.AMEND, Op.STOP_ORDER, Op.CANCEL, Op.MARKET_ORDER)


def _commands(venue: Venue) -> tuple[Op, ...]:
    capabilities = PROFILES[venue].capabilities
    return _POSITION_STOPS if capabilities.position_stop else _REPLACED_STOPS


_QUERIES = (Op.FETCH_POSITIONS, Op.FETCH_OPEN_ORDERS, Op.FETCH_ORDER)


@attrs.frozen(kw_only=True)
class Incident:
    """One thing that goes wrong, at `at` seconds into the run, for `duration` seconds."""

    number: int  # stable across reductions: how a replay names it
    at: float
    # a FAULT_KINDS, PERSON_ACTIONS or OUTAGES name, "crash", "race:<RACES>", REPLACE_CRASH
    # or INITIAL_STOP_CRASH
    kind: str
    symbol: str | None = None
    duration: float = 0.0
    op: Op | None = None  # the venue operation a fault is aimed at
    times: int = 1  # how many requests a fault refuses
    fraction: Decimal = Decimal("0.5")  # partial fill ratio, partial close, stop move size
    crash_point: str = ""  # a CRASH_POINTS name: which kind of await the crash hits
    crash_after: int = 1  # ... the n-th such await after `at`

    def describe(self) -> str:
        where = f" {self.symbol}" if self.symbol else ""
        op = f" {self.op.value}" if self.op else ""
        point = f" {self.crash_point} #{self.crash_after}" if self.crash_point else ""
        return (
            f"#{self.number} {self.kind}{where}{op}{point} at {self.at:.0f}s "
            f"for {self.duration:.0f}s"
        )


@attrs.frozen(kw_only=True)
class MarkStyle:
    """How one symbol's mark moves (a random walk with jumps, gaps, crashes, flat spells)."""

    seed: int
    start: Decimal
    tick: Decimal
    volatility: float  # per step, as a fraction of the price
    jump_probability: float  # a 1-6 % jump (a gap through stops)
    crash_probability: float  # a 6-15 % flash crash up or down, back within minutes
    flat_probability: float  # a flat stretch: no ticks for 5-40 minutes


@attrs.frozen(kw_only=True)
class World:
    seed: int
    venue: Venue
    hours: float
    markets: tuple[MarketRules, ...]
    marks: tuple[MarkStyle, ...]
    signals: tuple[Signal, ...]  # each delivered at its created_at
    incidents: tuple[Incident, ...]
    latency: float  # seconds of virtual time per round trip
    tick_seconds: tuple[float, float]  # the marks move every U(a, b) seconds
    zombies_left_by_venue: bool  # reduce-only orders survive a flat position (zombies)

    @property
    def symbols(self) -> tuple[str, ...]:
        return tuple(rules.symbol for rules in self.markets)

    @property
    def start(self) -> datetime:
        return DEFAULT_START

    @property
    def end(self) -> datetime:
        return DEFAULT_START + timedelta(hours=self.hours)


# One more market than the venue's defaults, on every venue (drawn like the others)
_EXTRA = MarketRules(
    symbol="XRPUSDT",
    tick_size=Decimal("0.0001"),
    step_size=Decimal("0.1"),
    min_quantity=Decimal("0.1"),
    min_notional=Decimal("5"),
    max_leverage=Decimal("75"),
)
_STARTS = {
    "BTCUSDT": Decimal("50000"),
    "ETHUSDT": Decimal("3000"),
    "SOLUSDT": Decimal("150"),
    "1000PEPEUSDT": Decimal("0.0123456"),
    "XRPUSDT": Decimal("0.6"),
}


@attrs.frozen(kw_only=True)
class Rates:
    """How often things happen, per virtual hour (the defaults make every kind frequent)."""

    faults: float = 6.0
    people: float = 2.0
    crashes: float = 0.5
    database_outages: float = 0.2
    signal_outages: float = 0.2
    guard_races: float = 0.05
    replace_crashes: float = 0.05
    initial_stop_crashes: float = 0.03


def plan_world(
    seed: int,
    venue: Venue,
    *,
    hours: float | None = None,
    rates: Rates | None = None,
    hours_range: tuple[float, float] = (1.0, 24.0),
) -> World:
    """The whole world of `seed` on `venue`: drawn here, once, from `random.Random(seed)`."""
    rng = random.Random(f"{seed}:{venue.value}")
    drawn = round(rng.uniform(*hours_range), 2)  # drawn even when given: the same world after
    length = hours if hours is not None else drawn
    pool = [*default_markets(venue), _EXTRA]
    markets = tuple(sorted(rng.sample(pool, rng.randint(3, len(pool))), key=lambda m: m.symbol))
    marks = tuple(_mark_style(rng, rules) for rules in markets)
    symbols = [rules.symbol for rules in markets]
    signals = tuple(_signals(rng, venue, symbols, length))
    rates = rates or Rates()
    incidents = tuple(_incidents(rng, venue, symbols, length, rates))
    # Races come from a generator of their own, numbered after the rest: the worlds (and
    # incident numbers) drawn before races existed stay as they were.
    racing = random.Random(f"races:{seed}:{venue.value}")
    incidents += tuple(_races(racing, symbols, length, rates, first=len(incidents) + 1))
    # Crashes inside a stop replacement too, after them (the same reason).
    crashing = random.Random(f"replace-crash:{seed}:{venue.value}")
    incidents += tuple(_replace_crashes(crashing, venue, length, rates, first=len(incidents) + 1))
    # Crashes right after an open's initial stop reached the venue, after them (the same).
    opening = random.Random(f"initial-stop-crash:{seed}:{venue.value}")
    incidents += tuple(
        _crashes(
            opening,
            INITIAL_STOP_CRASH,
            length,
            rates.initial_stop_crashes,
            first=len(incidents) + 1,
        )
    )
    return World(
        seed=seed,
        venue=venue,
        hours=length,
        markets=markets,
        marks=marks,
        signals=signals,
        incidents=incidents,
        latency=rng.choice((0.02, 0.05, 0.1, 0.2, 0.3)),
        tick_seconds=rng.choice(((5.0, 15.0), (10.0, 20.0), (15.0, 30.0))),
        zombies_left_by_venue=rng.random() < 0.5,
    )


def _mark_style(rng: random.Random, rules: MarketRules) -> MarkStyle:
    return MarkStyle(
        seed=rng.getrandbits(48),
        start=_STARTS[rules.symbol],
        tick=rules.tick_size,
        volatility=rng.choice((0.0005, 0.001, 0.002, 0.004)),
        jump_probability=rng.choice((0.0005, 0.002, 0.005)),
        crash_probability=rng.choice((0.0, 0.0002, 0.001)),
        flat_probability=rng.choice((0.0, 0.0005, 0.002)),
    )


def mark_path(style: MarkStyle) -> Iterator[Decimal | None]:
    """The mark at each step of the world's tick clock (None: no tick this step), forever,
    from the style's own seed."""
    rng = random.Random(style.seed)
    price = float(style.start)
    anchor: float | None = None  # where a flash crash comes back to
    recover = 0
    while True:
        roll = rng.random()
        if roll < style.flat_probability:  # a flat stretch: 5-40 minutes without a tick
            yield from [None] * rng.randint(15, 120)
            continue
        if recover > 0 and anchor is not None:
            price += (anchor - price) / recover
            recover -= 1
        elif roll < style.flat_probability + style.crash_probability:
            anchor = price
            price *= 1 + rng.choice((-1, 1)) * rng.uniform(0.06, 0.15)
            recover = rng.randint(2, 12)
        elif roll < style.flat_probability + style.crash_probability + style.jump_probability:
            price *= 1 + rng.choice((-1, 1)) * rng.uniform(0.01, 0.06)
        else:
            price *= 1 + rng.gauss(0, style.volatility)
        price = max(price, float(style.tick) * 100)
        yield _quantize(price, style.tick)


def tick_times(world: "World") -> Iterator[float]:
    """Seconds between two steps of the marks (all symbols move on the same steps: one
    wake-up of the clock per step, not one per symbol), U(a, b) from the world's seed."""
    rng = random.Random(f"ticks:{world.seed}")
    while True:
        yield rng.uniform(*world.tick_seconds)


def _quantize(price: float, tick: Decimal) -> Decimal:
    ticks = (Decimal(repr(price)) / tick).quantize(Decimal(1), rounding=ROUND_HALF_UP)
    return max(ticks, Decimal(1)) * tick


def _signals(
    rng: random.Random, venue: Venue, symbols: list[str], hours: float
) -> Iterator[Signal]:
    other = next(each for each in Venue if each is not venue)  # a signal for another venue
    start = DEFAULT_START
    waves = int(hours * 3600 // WAVE_LENGTH.total_seconds()) + 1
    number = 0
    for index in range(waves):
        wave = floor_quarter(start + index * WAVE_LENGTH)
        style = rng.random()
        if style < 0.3:
            continue  # a quiet wave
        count = 40 if style > 0.95 else rng.randint(1, 6)  # a flood now and then
        sent: list[Signal] = []
        for _ in range(count):
            number += 1
            kind = rng.random()
            symbol = rng.choice(symbols)
            week = Decimal(rng.randint(40, 99))
            chosen_venue = venue
            if kind < 0.1:
                symbol = "NOSUCHUSDT"
            elif kind < 0.2:
                week = Decimal(-rng.randint(1, 50))  # below every score filter
            elif kind < 0.25:
                chosen_venue = other
            created = wave + timedelta(seconds=rng.uniform(5, 19 * 60))
            signal = Signal(
                id=f"sig{number}",
                symbol=symbol,
                venue=chosen_venue,
                side=rng.choice((Side.LONG, Side.SHORT)),
                score_week=week,
                score_month=Decimal(rng.randint(30, 99)),
                wave=wave,
                created_at=created,
            )
            sent.append(signal)
            if rng.random() < 0.15:  # the service sends it twice
                sent.append(attrs.evolve(signal, created_at=created + timedelta(seconds=1)))
        yield from sorted(sent, key=lambda s: s.created_at)


def _incidents(
    rng: random.Random, venue: Venue, symbols: list[str], hours: float, rates: Rates
) -> Iterator[Incident]:
    seconds = hours * 3600
    drawn: list[tuple[float, str]] = []
    for rate, kinds in (
        (rates.faults, FAULT_KINDS),
        (rates.people, PERSON_ACTIONS),
        (rates.crashes, ("crash",)),
        (rates.database_outages, ("database_outage",)),
        (rates.signal_outages, ("signal_outage",)),
    ):
        for _ in range(_poisson(rng, rate * hours)):
            drawn.append((rng.uniform(60, max(61.0, seconds - 600)), rng.choice(kinds)))
    drawn.sort()
    for number, (at, kind) in enumerate(drawn, start=1):
        yield _incident(rng, venue, symbols, number, at, kind)


def _incident(
    rng: random.Random, venue: Venue, symbols: list[str], number: int, at: float, kind: str
) -> Incident:
    symbol = rng.choice(symbols)
    if kind == "crash":
        return Incident(
            number=number,
            at=at,
            kind=kind,
            duration=rng.choice((0.0, 1.0, 5.0, 30.0)),  # how long the process stays down
            crash_point=rng.choice(CRASH_POINTS),
            crash_after=rng.randint(1, 8),
        )
    if kind in ("database_outage", "signal_outage"):
        return Incident(number=number, at=at, kind=kind, duration=rng.uniform(10, 300))
    if kind in PERSON_ACTIONS:
        return Incident(
            number=number,
            at=at,
            kind=kind,
            symbol=symbol,
            fraction=Decimal(rng.choice(("0.3", "0.5", "0.7"))),
        )
    if kind == "partial_fill":
        return Incident(
            number=number,
            at=at,
            kind=kind,
            symbol=symbol,
            duration=rng.uniform(600, 3600),
            op=Op.MARKET_ORDER,
            fraction=Decimal(rng.choice(("0.3", "0.5", "0.8"))),
        )
    roll = rng.random()
    queries = kind in TRANSPORT_FAULTS and roll < 0.3
    op = None if roll > 0.5 else rng.choice(_QUERIES if queries else _commands(venue))
    return Incident(
        number=number,
        at=at,
        kind=kind,
        symbol=symbol,
        op=op,
        duration=rng.uniform(120, 1800),
        times=rng.randint(20, 60) if kind == "ban_418" else rng.choice((1, 1, 2, 3, 5)),
    )


def _moments(rng: random.Random, hours: float, per_hour: float) -> list[float]:
    """When a kind of incident drawn from a generator of its own happens: a Poisson count
    of moments, sorted, from a minute in to ten minutes before the end."""
    seconds = hours * 3600
    return sorted(
        rng.uniform(60, max(61.0, seconds - 600)) for _ in range(_poisson(rng, per_hour * hours))
    )


def _races(
    rng: random.Random, symbols: list[str], hours: float, rates: Rates, *, first: int
) -> Iterator[Incident]:
    for number, at in enumerate(_moments(rng, hours, rates.guard_races), start=first):
        yield Incident(
            number=number,
            at=at,
            kind="race:guard_read",
            symbol=rng.choice(symbols),
            duration=rng.choice((3.0, 5.0, 8.0)),  # how long the read's answer takes
            fraction=Decimal(rng.choice(("0.03", "0.04", "0.06"))),  # the mark's jump
        )


def _crashes(
    rng: random.Random, kind: str, hours: float, per_hour: float, *, first: int
) -> Iterator[Incident]:
    """Crashes armed at their moment (`REPLACE_CRASH`, `INITIAL_STOP_CRASH`): the
    simulator makes each happen at the next instant of its kind."""
    for number, at in enumerate(_moments(rng, hours, per_hour), start=first):
        yield Incident(
            number=number,
            at=at,
            kind=kind,
            duration=rng.choice((0.0, 1.0, 5.0)),  # how long the process stays down
        )


def _replace_crashes(
    rng: random.Random, venue: Venue, hours: float, rates: Rates, *, first: int
) -> Iterator[Incident]:
    capabilities = PROFILES[venue].capabilities
    if capabilities.position_stop or capabilities.amend_stop:
        return  # the venue moves a stop in place: no replacement to crash inside
    yield from _crashes(rng, REPLACE_CRASH, hours, rates.replace_crashes, first=first)


def _poisson(rng: random.Random, mean: float) -> int:
    """A Poisson draw by counting exponential gaps (small means; no numpy)."""
    count, total = 0, rng.expovariate(1.0)
    while total < mean:
        count += 1
        total += rng.expovariate(1.0)
    return count
