"""What the events say about each position: stop coverage, unprotected time, races, latencies,
trailing, PnL and errors. Pure functions over rows already read; no I/O, no clock.

Stop liveness is rebuilt from the stop events: `stop_loss_placed`/`stop_loss_replaced` add
their order id to the position's live stops (an amend keeps the same id), a successful
`stop_loss_cancelled` (or a `stop_loss_filled`) removes it. A position is unprotected while it
is open on the venue (from its entry fill until it is closed) and has no live stop.
"""

from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from itertools import pairwise

import attrs

from tradecore.adapters.reporting.source import EventRow, OperationRow, PositionRow

STOP_WRITES = frozenset({"stop_loss_placed", "stop_loss_replaced"})
ENDINGS = frozenset({"position_closed", "phantom_position_closed"})
ATTACHED = "attached"  # a venue-attached stop recorded without an order id
ZERO = Decimal(0)


@attrs.frozen(kw_only=True)
class Gap:
    start: datetime
    end: datetime
    cause: str  # "opening" (fill -> first stop) or what removed the stop

    @property
    def seconds(self) -> float:
        return (self.end - self.start).total_seconds()


@attrs.frozen(kw_only=True)
class Race:
    position_id: str
    at: datetime
    kind: str  # "owners" (two writers within the window) or "two_stops"
    detail: str


@attrs.frozen(kw_only=True)
class Coverage:
    position_id: str
    exchange: str
    symbol: str
    filled_at: datetime
    ended_at: datetime
    still_open: bool
    gaps: tuple[Gap, ...]
    stop_writes: int
    owners: tuple[str, ...]

    @property
    def open_seconds(self) -> float:
        return max(0.0, (self.ended_at - self.filled_at).total_seconds())

    @property
    def unprotected_seconds(self) -> float:
        return sum(g.seconds for g in self.gaps)

    @property
    def longest_gap_seconds(self) -> float:
        return max((g.seconds for g in self.gaps), default=0.0)

    @property
    def first_stop_seconds(self) -> float | None:
        """Fill to first stop; None if no stop was ever placed."""
        if self.stop_writes == 0:
            return None
        opening = [g for g in self.gaps if g.cause == "opening"]
        return opening[0].seconds if opening else 0.0

    @property
    def coverage(self) -> float:
        """The share of the open time with a stop on the venue (1.0 when never open)."""
        if self.open_seconds <= 0:
            return 1.0 if not self.gaps else 0.0
        return max(0.0, 1.0 - self.unprotected_seconds / self.open_seconds)


def by_subject(events: Iterable[EventRow]) -> dict[str, list[EventRow]]:
    grouped: dict[str, list[EventRow]] = defaultdict(list)
    for event in events:
        if event.subject is not None:
            grouped[event.subject].append(event)
    return grouped


def _first(events: Sequence[EventRow], *types: str) -> EventRow | None:
    return next((e for e in events if e.type in types), None)


def _ended_at(position: PositionRow, events: Sequence[EventRow]) -> datetime | None:
    candidates = [e.created_at for e in events if e.type in ENDINGS]
    candidates += [
        e.created_at
        for e in events
        if e.type == "position_rollback" and e.data.get("closed") is True
    ]
    if position.closed_at is not None:
        candidates.append(position.closed_at)
    return min(candidates) if candidates else None


def _stop_id(event: EventRow) -> str:
    return event.order_id or ATTACHED


def coverage_of(
    position: PositionRow,
    events: Sequence[EventRow],
    *,
    now: datetime,
    overlap_tolerance: timedelta = timedelta(seconds=2),
    owner_window: timedelta = timedelta(seconds=1),
) -> tuple[Coverage | None, list[Race]]:
    """The position's protection story; None if it never held anything on the venue."""
    fill = _first(events, "entry_order_filled", "missing_position_added")
    filled_at = fill.created_at if fill is not None else position.opened_at
    if filled_at is None:
        return None, []
    ended = _ended_at(position, events)
    end = ended if ended is not None else max(now, filled_at)
    live: set[str] = set()
    gaps: list[Gap] = []
    races: list[Race] = []
    bare_since: datetime | None = filled_at
    bare_cause = "opening"
    two_since: datetime | None = None
    last_write: EventRow | None = None
    writes = 0
    owners: list[str] = []
    for event in events:
        at = event.created_at
        if at > end:
            break
        if event.type in STOP_WRITES:
            writes += 1
            owner = str(event.data.get("owner") or "?")
            if owner not in owners:
                owners.append(owner)
            if (
                last_write is not None
                and at - last_write.created_at < owner_window
                and str(last_write.data.get("owner") or "?") != owner
            ):
                races.append(
                    Race(
                        position_id=position.id,
                        at=at,
                        kind="owners",
                        detail=f"{last_write.data.get('owner')} then {owner} within "
                        f"{(at - last_write.created_at).total_seconds():.3f} s",
                    )
                )
            last_write = event
            live.add(_stop_id(event))
        elif event.type == "stop_loss_filled" or (
            event.type == "stop_loss_cancelled" and event.data.get("cancelled") is not False
        ):
            _drop(live, event)
            if not live and bare_since is None and at >= filled_at:
                what = "filled" if event.type == "stop_loss_filled" else "cancelled"
                bare_since, bare_cause = at, f"stop {what} ({event.data.get('reason', '?')})"
        else:
            continue
        if live and bare_since is not None:
            start = max(bare_since, filled_at)
            gaps.append(Gap(start=start, end=max(at, start), cause=bare_cause))
            bare_since = None
        if len(live) > 1 and two_since is None:
            two_since = at
        elif len(live) <= 1 and two_since is not None:
            _two_stops(races, position.id, two_since, at, overlap_tolerance)
            two_since = None
    if bare_since is not None:
        gaps.append(Gap(start=max(bare_since, filled_at), end=end, cause=bare_cause))
    if two_since is not None:
        _two_stops(races, position.id, two_since, end, overlap_tolerance)
    coverage = Coverage(
        position_id=position.id,
        exchange=position.exchange,
        symbol=position.symbol,
        filled_at=filled_at,
        ended_at=end,
        still_open=ended is None,
        gaps=tuple(g for g in gaps if g.seconds > 0 or g.cause == "opening"),
        stop_writes=writes,
        owners=tuple(owners),
    )
    return coverage, races


def _drop(live: set[str], event: EventRow) -> None:
    if event.order_id is not None:
        live.discard(event.order_id)
    elif event.data.get("attached"):
        for stop in [s for s in live if s == ATTACHED or s.startswith("position-stop")]:
            live.discard(stop)


def _two_stops(
    races: list[Race], position_id: str, start: datetime, end: datetime, tolerance: timedelta
) -> None:
    # A replacement places the new stop before cancelling the old one: a short overlap is
    # the design. Longer than a round trip or two, two stops are live by mistake.
    if end - start > tolerance:
        races.append(
            Race(
                position_id=position_id,
                at=start,
                kind="two_stops",
                detail=f"two stops live for {(end - start).total_seconds():.3f} s",
            )
        )


# -- latencies -----------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class Percentiles:
    count: int
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float


def percentiles(seconds: Sequence[float]) -> Percentiles | None:
    """Nearest-rank percentiles in milliseconds; None for no samples."""
    if not seconds:
        return None
    ordered = sorted(seconds)

    def rank(p: float) -> float:
        index = max(0, min(len(ordered) - 1, -(-len(ordered) * p // 100) - 1))
        return round(ordered[int(index)] * 1000, 3)

    return Percentiles(
        count=len(ordered),
        p50_ms=rank(50),
        p90_ms=rank(90),
        p99_ms=rank(99),
        max_ms=round(ordered[-1] * 1000, 3),
    )


def _between(events: Sequence[EventRow], start: str, end: str) -> float | None:
    """Seconds from the first `start` event to the first `end` event after it."""
    begin = next((i for i, e in enumerate(events) if e.type == start), None)
    if begin is None:
        return None
    finish = next((e for e in events[begin + 1 :] if e.type == end), None)
    if finish is None:
        return None
    return (finish.created_at - events[begin].created_at).total_seconds()


def latency_samples(
    grouped: dict[str, list[EventRow]], operations: Sequence[OperationRow]
) -> dict[str, list[float]]:
    samples: dict[str, list[float]] = defaultdict(list)
    for events in grouped.values():
        pairs = {
            "open: started -> stop placed": ("position_open_started", "stop_loss_placed"),
            "entry: started -> filled": ("position_open_started", "entry_order_filled"),
            "fill -> stop placed": ("entry_order_filled", "stop_loss_placed"),
        }
        for name, (start, end) in pairs.items():
            value = _between(events, start, end)
            if value is not None:
                samples[name].append(value)
        samples["stop move: new stop -> old cancelled"] += _replace_windows(events)
    for op in operations:
        if op.finished_at is not None:
            samples[f"operation {op.kind}"].append((op.finished_at - op.started_at).total_seconds())
    return {k: v for k, v in samples.items() if v}


def _replace_windows(events: Sequence[EventRow]) -> list[float]:
    """A replacement by a new order: seconds from the new stop to the old one's cancellation
    (an amend keeps its order id and has no such window)."""
    windows = []
    for i, event in enumerate(events):
        if event.type != "stop_loss_replaced":
            continue
        for later in events[i + 1 :]:
            if later.type in STOP_WRITES:
                break
            if later.type == "stop_loss_cancelled" and later.order_id != event.order_id:
                windows.append((later.created_at - event.created_at).total_seconds())
                break
    return windows


# -- trailing ------------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class TrailingStats:
    created: int
    activated: int
    updates: int
    breakevens: int
    removed: int
    updates_per_activated: float
    activation_delay: Percentiles | None  # fill -> activation
    update_interval: Percentiles | None  # between consecutive updates of one position


def trailing_stats(grouped: dict[str, list[EventRow]]) -> TrailingStats:
    counts: Counter[str] = Counter()
    delays: list[float] = []
    intervals: list[float] = []
    for events in grouped.values():
        kinds = Counter(e.type for e in events)
        counts.update(kinds)
        fill = _first(events, "entry_order_filled", "missing_position_added")
        activation = _first(events, "trailing_stop_activated")
        if fill is not None and activation is not None:
            delays.append((activation.created_at - fill.created_at).total_seconds())
        updates = [e.created_at for e in events if e.type == "trailing_stop_updated"]
        intervals += [(b - a).total_seconds() for a, b in pairwise(updates)]
    activated = counts["trailing_stop_activated"]
    return TrailingStats(
        created=counts["trailing_stop_created"],
        activated=activated,
        updates=counts["trailing_stop_updated"],
        breakevens=counts["trailing_stop_breakeven"],
        removed=counts["trailing_stop_removed"],
        updates_per_activated=round(counts["trailing_stop_updated"] / activated, 2)
        if activated
        else 0.0,
        activation_delay=percentiles(delays),
        update_interval=percentiles(intervals),
    )


# -- money ---------------------------------------------------------------------------------


def pnl_of(position: PositionRow) -> Decimal | None:
    """Realised PnL as recorded, else from entry and exit prices and the quantity."""
    if position.realized_pnl is not None:
        return position.realized_pnl
    if position.entry_price is None or position.exit_price is None or not position.quantity:
        return None
    move = position.exit_price - position.entry_price
    return (move if position.side == "long" else -move) * position.quantity


@attrs.frozen(kw_only=True)
class Pnl:
    total: Decimal
    by_exchange: dict[str, Decimal]
    by_day: dict[str, Decimal]
    by_position: dict[str, Decimal]
    wins: int
    losses: int
    unknown: int  # closed positions whose PnL cannot be known from the database
    equity: tuple[tuple[datetime, Decimal], ...]  # cumulative, by close time


def pnl(positions: Sequence[PositionRow]) -> Pnl:
    by_exchange: dict[str, Decimal] = defaultdict(lambda: ZERO)
    by_day: dict[str, Decimal] = defaultdict(lambda: ZERO)
    by_position: dict[str, Decimal] = {}
    closed: list[tuple[datetime, Decimal]] = []
    unknown = 0
    for position in positions:
        value = pnl_of(position)
        if position.closed_at is None:
            continue
        if value is None:
            unknown += position.state == "closed" and position.quantity > 0
            continue
        by_position[position.id] = value
        by_exchange[position.exchange] += value
        by_day[position.closed_at.date().isoformat()] += value
        closed.append((position.closed_at, value))
    running = ZERO
    equity = []
    for at, value in sorted(closed, key=lambda c: c[0]):
        running += value
        equity.append((at, running))
    return Pnl(
        total=running,
        by_exchange=dict(sorted(by_exchange.items())),
        by_day=dict(sorted(by_day.items())),
        by_position=by_position,
        wins=sum(1 for v in by_position.values() if v > 0),
        losses=sum(1 for v in by_position.values() if v < 0),
        unknown=int(unknown),
        equity=tuple(equity),
    )


def errors_by_type(events: Iterable[EventRow]) -> dict[str, dict[str, int]]:
    """Counts of warnings and worse, by severity then event type."""
    found: dict[str, Counter[str]] = defaultdict(Counter)
    for event in events:
        if event.severity in ("WARNING", "ERROR", "CRITICAL"):
            found[event.severity][event.type] += 1
    return {sev: dict(found[sev].most_common()) for sev in ("CRITICAL", "ERROR", "WARNING")}
