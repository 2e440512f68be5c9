"""The promises, checked after every venue event (not at the end of a run).

`Checker` hooks the paper engine's observers: every order placed, amended, cancelled or
filled and every mark move calls `on_change(symbol)`, which reads only that symbol's new
entries in the books and its open orders (incremental and cheap). Time limits are checked
by timers on the virtual clock, so a gap that nothing else interrupts is still caught the
instant it becomes too long.

Allowed windows come from the run's settings (`Windows`) and from `Excuse`s the simulator
registers as it injects faults, people's actions, crashes and outages: a position may be
without a (full, tight enough) stop for one round trip, or until the excuse that covers it
ends. docs/testing.md lists each invariant.
"""

import bisect
from collections import defaultdict, deque
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timedelta
from decimal import Decimal

import attrs

from tradecore.adapters.paper import Amendment, Fault, Fill, Op, OrderClosed, OrderRecord
from tradecore.adapters.paper.books import PositionRecord
from tradecore.app.protection import ProtectionView
from tradecore.app.trailing import RetrySettings
from tradecore.domain.aged import AgedParams, AgedPhase, decide_aged
from tradecore.domain.events import Event, EventType, Severity
from tradecore.domain.model import OrderSide, Side
from tradecore.domain.orders import (
    Order,
    OrderRole,
    OrderType,
    VenuePosition,
    operation_of,
    role_of,
)
from tradecore.domain.positions import PositionState
from tradecore.domain.reconcile import crossed
from tradecore.domain.stops import StopParams, initial_stop
from tradecore.domain.trailing import TrailingParams
from tradecore.ports.exchange import RejectReason
from tradecore.ports.repositories import Store
from tradecore.testing import FakeVenue

INVARIANTS = (
    "one_stop",  # more than one stop (or a stop for less than the position) for too long
    "unprotected",  # no stop for longer than the allowed window
    "guard_blind",  # the guard's report counts fewer unprotected positions than there are
    "loosened",  # the bot set a looser stop, or the venue's stop stayed looser too long
    "trailing_stuck",  # the mark ran far enough in profit, the bot's stop did not follow
    "entered_twice",  # one operation's entry filled by two orders
    "zombie",  # an order of ours outlived its position too long
    "journal_mismatch",  # at quiescence the journal disagrees with the venue
    "stop_history",  # replaying the journal does not give the books' stop history (stop_history.py)
    "unexplained_critical",  # a CRITICAL event with no injected fault to explain it
    "closed_protected",  # the bot closed a position at market that a stop protected
    "health_blind",  # /health, metrics, the guard's view: a bare position not unprotected
)


Describe = Callable[[], str]


@attrs.frozen(kw_only=True)
class Violation:
    invariant: str
    at: datetime
    symbol: str | None
    detail: str
    since: datetime | None = None  # when the state it complains about began

    def __str__(self) -> str:
        where = f" {self.symbol}" if self.symbol else ""
        return f"{self.invariant}{where} at {self.at:%Y-%m-%d %H:%M:%S.%f}: {self.detail}"


@attrs.frozen(kw_only=True)
class Windows:
    """The allowed windows, in seconds of virtual time, from the run's settings."""

    round_trip: float
    guard_interval: float = 60.0
    sync_interval: float = 120.0
    zombie_interval: float = 300.0
    slack: float = 2.0  # the reads a pass makes before it acts (a few round trips) and retries
    trailing: TrailingParams = attrs.Factory(TrailingParams)
    stops: StopParams = attrs.Factory(StopParams)  # the initial stop an open wants
    # the longest pause before the trailing service tries a refused move again with no mark
    trailing_retry: float = attrs.field(factory=lambda: RetrySettings().longest_seconds)
    aged: AgedParams = attrs.Factory(AgedParams)

    @property
    def trailing_lag(self) -> timedelta:
        """How long a stop may trail behind a new best mark: the move rate limit + slack."""
        seconds = self.trailing.rate_limit_seconds + 4 * self.round_trip + self.slack
        return timedelta(seconds=seconds)

    @property
    def bare(self) -> timedelta:
        """What a position may spend without a stop with no excuse: one round trip."""
        return timedelta(seconds=self.round_trip + 0.001)

    @property
    def refused_as_triggering(self) -> timedelta:
        """What each protective command the venue refused as "would immediately trigger" adds
        to a bare window: the mark ran past the stop while it travelled (market-made, and
        unavoidable where no stop rides on the order that opens), so the command's own round
        trip, plus the read of the mark the next stop is planned from (SPEC §3: 0.5 % beyond
        the mark; the venue's refusal does not say where the mark is)."""
        return timedelta(seconds=2 * self.round_trip)

    def after_person(self, action: str) -> timedelta:
        """A person acted: one guard pass (a sync pass for a hand-opened position) + a trip."""
        passes = self.guard_interval + (self.sync_interval if action == "open_by_hand" else 0)
        return timedelta(seconds=passes + self.round_trip + self.slack)

    def adoption(self) -> timedelta:
        """How long a person's tighter stop may stand before it is the bot's level even if the
        bot never journaled it: one guard pass (which adopts it) and a round trip."""
        return timedelta(seconds=self.guard_interval + self.round_trip + self.slack)

    @property
    def after_refused_move(self) -> timedelta:
        """A trailing move refused to the end of a fault is made again by the service's retry
        timer (no mark need come): its longest back-off and a round trip after the excuse."""
        return timedelta(seconds=self.trailing_retry + self.round_trip)

    def after_fault(self) -> timedelta:
        """A fault window ended: one guard pass and a round trip to repair what it left."""
        return timedelta(seconds=self.guard_interval + self.round_trip + self.slack)

    def zombie(self) -> timedelta:
        return timedelta(seconds=self.zombie_interval + self.round_trip + self.slack)


@attrs.define(kw_only=True)
class Excuse:
    """Something injected that may leave `symbol` (None: every symbol) less protected."""

    symbol: str | None
    start: datetime
    end: datetime | None  # None while it lasts (a crashed process not yet back)
    cause: str
    fault: bool = True  # a fault (explains a CRITICAL) rather than a person's action

    def covers(self, symbol: str | None, moment: datetime) -> bool:
        mine = self.symbol is None or symbol is None or self.symbol == symbol
        return mine and self.start <= moment and (self.end is None or moment <= self.end)


@attrs.define
class _Clock:
    """A deadline state (a gap, a double stop, a loose stop) of one symbol."""

    since: datetime | None = None
    deadline: datetime | None = None  # None: an open excuse holds it
    reported: bool = False
    refused: int = 0  # "would immediately trigger" refusals the deadline already allows for

    def clear(self) -> None:
        self.since, self.deadline, self.reported, self.refused = None, None, False, 0


@attrs.define
class _Watch:
    record: PositionRecord | None = None
    side: Side | None = None
    level: Decimal | None = None  # the last (tightest) stop the bot set for this position
    # A person's stop tighter than the level, not the bot's level yet: order id -> (its
    # trigger, since when it stands, the deadline its timer was set for)
    pending: dict[str, tuple[Decimal, datetime, datetime | None]] = attrs.Factory(dict)
    bare: _Clock = attrs.Factory(_Clock)
    double: _Clock = attrs.Factory(_Clock)
    loose: _Clock = attrs.Factory(_Clock)
    trail: _Clock = attrs.Factory(_Clock)
    # newer than the lag: (when, the mark, whether the application was up to see it)
    marks: deque[tuple[datetime, Decimal, bool]] = attrs.Factory(deque)
    before: Decimal | None = None  # the last mark dropped from `marks` (lag old)
    # whether the bot knows the position yet: a hand-opened one only once a sync adopted it
    known: bool = False
    # the bot journaled its position on the symbol closed while the venue's lives on
    ended: bool = False
    own: bool = False  # the bot entered this position (or adopted it already)
    best: Decimal | None = None  # the best mark the bot saw in the position's favour (lag old)
    worst: Decimal | None = None  # the worst mark since that best (older than the lag too)
    # as the last check saw them (a close is judged on the state before it)
    entry: Decimal | None = None  # the venue's entry price
    tightest_full: Decimal | None = None  # the tightest full stop-loss standing


def _marks_own_refusals(
    refusals: Sequence[tuple[datetime, Decimal | None]], side: Side, since: datetime | None
) -> list[datetime]:
    """When the venue refused a stop as "would immediately trigger" because the mark ran
    past it in transit, in the bare window from `since`: the first, and each later one only
    at a mark worse for the position than at the last one counted. A refusal at a mark
    that stood still (or came back) is not the mark's doing: the next stop, planned beyond
    the mark read after the last refusal, would have stood (SPEC §3); the bot sent a stop
    that could not."""
    counted: list[datetime] = []
    last: Decimal | None = None
    for at, mark in refusals:
        if since is not None and at < since:
            continue
        if not counted or mark is None or last is None or tighter(side, last, mark):
            counted.append(at)
            last = mark
    return counted


def tighter(side: Side, a: Decimal, b: Decimal) -> bool:
    """Whether stop trigger `a` is tighter (closer to the mark side) than `b` for `side`."""
    return a > b if side is Side.LONG else a < b


class Checker:
    """Checks every invariant on one venue after every venue event; collects violations."""

    def __init__(self, venue: FakeVenue, windows: Windows) -> None:
        self.venue = venue
        self.engine = venue.engine
        self.clock = venue.clock
        self.windows = windows
        self.excuses: list[Excuse] = []
        self.violations: list[Violation] = []
        self._watch: dict[str, _Watch] = defaultdict(_Watch)
        self._seen = 0  # how much of the books' log has been read
        self._refusals_seen = 0  # how much of the books' refusals has been read
        # symbol -> when the venue refused a protective command of ours as "would trigger",
        # and the mark then (None: the venue had none)
        self._triggering: dict[str, list[tuple[datetime, Decimal | None]]] = defaultdict(list)
        self._entries: dict[str, set[str]] = defaultdict(set)  # operation -> entry order ids
        self._zombies: dict[str, datetime] = {}  # order id -> when it became orphaned
        self._zombie_wakes: dict[str, datetime] = {}  # order id -> its timer's deadline
        self._attached = False
        # what the application reports as unprotected (/health, metrics): compared with
        # the venue after every protection pass (None: not checked)
        self.health: Callable[[], ProtectionView | None] | None = None
        # whether the application is up and following the marks (None: always): a mark that
        # came while it was down (crashed, or still starting) is one it never saw
        self.app_up: Callable[[], bool] | None = None

    def attach(self) -> "Checker":
        if not self._attached:
            self.engine.observers.append(self.on_change)
            self.engine.faults.observers.append(self.on_fault)
            self._attached = True
        return self

    def detach(self) -> None:
        if self._attached:
            self.engine.observers.remove(self.on_change)
            self.engine.faults.observers.remove(self.on_fault)
            self._attached = False

    # ----------------------------------------------------------------- excuses

    def excuse(
        self,
        symbol: str | None,
        cause: str,
        *,
        until: datetime | None,
        fault: bool = True,
        start: datetime | None = None,
    ) -> Excuse:
        """Register an allowed window from now (or `start`) to `until` (None: open)."""
        excuse = Excuse(
            symbol=symbol, start=start or self.clock.now(), end=until, cause=cause, fault=fault
        )
        self.excuses.append(excuse)
        self._extend(excuse)
        return excuse

    def on_fault(self, fault: Fault, op: Op, symbol: str | None) -> None:
        """A fault fired on a request. One on a read of the whole account that the guard's,
        the synchronizer's and the zombie sweep's passes need (the position list: the venue
        has no other; every open order) refuses every symbol's protection, whatever symbol
        it was aimed at: every symbol is excused until a guard pass and a round trip after."""
        if symbol is None and op in _ACCOUNT_READS:
            until = self.clock.now() + self.windows.after_fault()
            self.excuse(None, f"{fault.kind.value} on {op.value} (the whole account)", until=until)

    def close_excuse(self, excuse: Excuse, until: datetime) -> None:
        excuse.end = until
        self._extend(excuse)

    def _extend(self, excuse: Excuse) -> None:
        """An excuse that starts while a symbol is in a deadline state moves its deadline."""
        for symbol, watch in self._watch.items():
            if excuse.symbol is not None and excuse.symbol != symbol:
                continue
            if watch.pending:  # a person's tighter stop becomes the level later now
                self._wake(symbol, self.clock.now())
            nothing = timedelta(0)
            for state, later in (
                (watch.bare, nothing),
                (watch.double, nothing),
                (watch.loose, nothing),
                (watch.trail, self.windows.after_refused_move),
            ):
                if state.since is None or state.reported:
                    continue
                if state.deadline is not None and state.deadline < excuse.start:
                    continue  # over before the excuse began (its timer has yet to report it)
                end = excuse.end
                if end is not None and excuse.fault:
                    end += later
                if end is None:
                    state.deadline = None
                elif state.deadline is not None and end > state.deadline:
                    state.deadline = end
                    self._wake(symbol, end)
                elif state.deadline is None:
                    state.deadline = self._deadline(symbol, state.since, later=later)
                    if state.deadline is not None:
                        self._wake(symbol, state.deadline)

    def _deadline(
        self,
        symbol: str,
        since: datetime,
        *,
        window: timedelta | None = None,
        later: timedelta = timedelta(0),
    ) -> datetime | None:
        """The end of the window that starts at `since`: one round trip, extended by every
        excuse on the symbol that was already on, or began while the window was still open.
        `window` replaces the round trip (the zombie window); `later` moves the end of every
        fault's excuse (one guard pass after the fault) for a repair made by a slower pass (the
        zombie pass)."""
        deadline = since + (self.windows.bare if window is None else window)
        for excuse in self.excuses:  # in the order they began
            if excuse.symbol not in (None, symbol) or excuse.start > deadline:
                continue
            if excuse.end is None:
                return None
            end = excuse.end + later if excuse.fault else excuse.end
            if end >= since:
                deadline = max(deadline, end)
        return deadline

    def _wake(self, symbol: str, at: datetime) -> None:
        self.clock.call_at(at + timedelta(milliseconds=1), lambda: self.on_change(symbol))

    def _adopting(self, symbol: str, moment: datetime) -> bool:
        """A position opened by hand is unknown to the journal until a sync pass adopts it."""
        return any(e.cause == "open_by_hand" and e.covers(symbol, moment) for e in self.excuses)

    def faulted(self, symbol: str | None, moment: datetime) -> bool:
        return any(e.fault and e.covers(symbol, moment) for e in self.excuses)

    # ----------------------------------------------------------------- the continuous check

    def on_change(self, symbol: str) -> None:
        now = self.clock.now()
        self._read_log(now)
        watch = self._watch[symbol]
        record = self.engine.position_record(symbol)
        if record is not watch.record:
            self._new_position(symbol, watch, record, now)
        if record is not None:
            self._check_stops(symbol, watch, now)
        self._check_zombies(now)

    def _new_position(
        self, symbol: str, watch: _Watch, record: PositionRecord | None, now: datetime
    ) -> None:
        if watch.record is not None:  # the previous one closed: its orders must go
            for order in self.engine.open_orders(symbol):
                if _ours(order) and order.order_id not in self._zombies:
                    self._orphan(symbol, order.order_id, now)
        watch.record = record
        watch.side = record.side if record is not None else None
        watch.level = None
        watch.pending.clear()
        watch.bare.clear()
        watch.double.clear()
        watch.loose.clear()
        watch.trail.clear()
        watch.marks.clear()
        watch.before = None
        watch.best = watch.worst = None
        watch.known = watch.ended = watch.own = False
        watch.entry = watch.tightest_full = None

    def _rebase(self, watch: _Watch) -> None:
        """The bot journaled its position closed (flat since its entry, by its fills) and
        adopts the one the venue holds — one it never entered — as another's: the levels it
        set and the marks it trailed were for its own position; the adopted one's start from
        here (bybit seed 1158: trailing's move landed on a position a person opened after the
        bot's closed). A position the bot entered keeps them: closing it in the journal and
        adopting it again must not loosen its stop."""
        watch.level = None
        watch.ended = False
        watch.pending.clear()
        watch.loose.clear()
        watch.trail.clear()
        watch.marks.clear()
        watch.before = None
        watch.best = watch.worst = None

    def _check_stops(self, symbol: str, watch: _Watch, now: datetime) -> None:
        held = self.engine.position(symbol)
        if held is None:
            return
        self._adopt_pending(symbol, watch, now)
        exit_side = held.side.exit
        full = left = 0  # full stops; of them, orders of ours an earlier position left
        best: Decimal | None = None
        watch.entry, watch.tightest_full = held.entry_price, None
        for order in self.engine.open_orders(symbol):
            if not order.is_stop_loss or order.side is not exit_side or order.trigger_price is None:
                continue
            whole = (
                order.type is OrderType.POSITION_STOP
                or order.close_position
                or order.quantity >= held.quantity
            )
            full += whole
            left += whole and order.order_id in self._zombies
            if best is None or tighter(held.side, order.trigger_price, best):
                best = order.trigger_price
            if whole and (
                watch.tightest_full is None
                or tighter(held.side, order.trigger_price, watch.tightest_full)
            ):
                watch.tightest_full = order.trigger_price
        self._track(
            symbol,
            watch.bare,
            full == 0,
            now,
            "unprotected",
            lambda: _no_stop(held),
            refusals=_marks_own_refusals(self._triggering[symbol], held.side, watch.bare.since),
        )
        # A zombie (an order of ours left when an earlier position closed, or placed while
        # flat) protects the new position too, but is no second stop of its own: how long it
        # may stand is the zombie invariant's (binance seed 391: an earlier short's trailing
        # stop, placed as its stop fired, still stood when the next short opened).
        self._track(
            symbol,
            watch.double,
            full - left > 1,
            now,
            "one_stop",
            lambda: f"{full} full stops ({left} of them left by an earlier position)",
        )
        loose = (
            watch.level is not None and best is not None and tighter(held.side, watch.level, best)
        )
        self._track(
            symbol,
            watch.loose,
            loose,
            now,
            "loosened",
            lambda: f"the venue's stop {best} is looser than the bot's level {watch.level}",
        )
        expected, ticked = self._trailed(watch, held, now)
        stuck = (
            expected is not None
            and watch.level is not None
            and tighter(held.side, expected, watch.level)
            and (ticked or watch.trail.since is not None)  # the service moves on a tick
        )
        self._track(
            symbol,
            watch.trail,
            stuck,
            now,
            "trailing_stuck",
            lambda: (
                f"the best mark {watch.best} (the worst since {watch.worst}) wants a stop at "
                f"{expected} or tighter; "
                f"the bot's stop is {watch.level}"
            ),
            # a frozen trailing stop (stories 5, 6), not a late one: one more rate-limit period
            grace=timedelta(seconds=self.windows.trailing.rate_limit_seconds + self.windows.slack),
            # after a fault that refused the move, the retry timer makes it (no mark need come)
            later=self.windows.after_refused_move,
        )

    def _trailed(
        self, watch: _Watch, held: VenuePosition, now: datetime
    ) -> tuple[Decimal | None, bool]:
        """Where the trailing stop should be by now at the least (None: not activated yet),
        and whether the mark just moved (the trailing service acts on a tick)."""
        mark = held.mark_price
        if mark is None:
            return None, False
        marks = watch.marks
        ticked = not marks or marks[-1][1] != mark
        if ticked:
            seen = watch.known and (self.app_up is None or self.app_up())
            marks.append((now, mark, seen))
        horizon = now - self.windows.trailing_lag
        while marks and marks[0][0] <= horizon:
            _, old, seen = marks.popleft()
            watch.before = old  # the mark as the kept ones began (it stood until the next)
            # A best the bot never saw (it was down, or did not know the position yet) is
            # not one it can trail: the restarted bot, or the sync pass that adopts a
            # hand-opened position, trails from the marks it sees (binance seed 909). A fall
            # it never saw still counts (below).
            if seen and (watch.best is None or tighter(held.side, old, watch.best)):
                watch.best = watch.worst = old
            elif watch.worst is None or tighter(held.side, watch.worst, old):
                watch.worst = old
        if watch.best is None:
            return None, ticked
        params = self.windows.trailing
        sign = 1 if held.side is Side.LONG else -1
        reference = watch.best
        trailing_level = watch.best * (1 - sign * params.callback_percent / 100)
        # the fall counts when it happens: the marks not yet a lag old too (the loosest of
        # them and the worst since the best; the first of equals, as a strict `tighter` keeps)
        loosest = min if held.side is Side.LONG else max
        recents = [recent for _, recent, _ in marks]
        if watch.worst is not None:
            recents.insert(0, watch.worst)
        worst = loosest(recents) if recents else None
        if worst is not None and not tighter(held.side, worst, trailing_level):
            # The mark fell through the best mark's trailing level before the stop got there
            # (the move rate limit held it back): no stop can stand at that level any more, and
            # the rule is that trailing resumes from the mark (issue 10, story 5), not a close.
            reference = worst
        activation = held.entry_price * (1 + sign * params.activation_percent / 100)
        if not tighter(held.side, reference, activation):
            return None, ticked
        give = (params.callback_percent + 2 * params.min_improvement_percent) / 100
        return reference * (1 - sign * give), ticked

    def _track(
        self,
        symbol: str,
        state: _Clock,
        bad: bool,
        now: datetime,
        invariant: str,
        detail: Describe,
        grace: timedelta | None = None,
        later: timedelta = timedelta(0),
        refusals: Sequence[datetime] = (),
    ) -> None:
        """`refusals`: when the venue refused a protective command as "would immediately
        trigger"; each one inside the window lengthens it by `refused_as_triggering`."""
        if not bad:
            state.clear()
            return
        if state.since is None:
            state.since = now
            state.deadline = self._deadline(symbol, now, later=later)
            if state.deadline is not None and grace is not None:
                state.deadline = max(state.deadline, now + grace)
            if state.deadline is not None:
                self._wake(symbol, state.deadline)
            return
        if state.reported or state.deadline is None:
            return
        extended = False
        while now > state.deadline:
            refused = sum(1 for at in refusals if state.since <= at <= state.deadline)
            if refused <= state.refused:
                break
            state.deadline += (refused - state.refused) * self.windows.refused_as_triggering
            state.refused, extended = refused, True
        if now <= state.deadline:
            if extended:
                self._wake(symbol, state.deadline)
            return
        state.reported = True
        seconds = (now - state.since).total_seconds()
        allowed = (state.deadline - state.since).total_seconds()
        text = f"{detail()} for {seconds:.3f} s already (allowed {allowed:.3f} s)"
        self._violate(invariant, now, symbol, text, state.since)

    # ----------------------------------------------------------------- the books, incrementally

    def _read_log(self, now: datetime) -> None:
        refusals = self.engine.books.refusals
        while self._refusals_seen < len(refusals):
            refusal = refusals[self._refusals_seen]
            self._refusals_seen += 1
            if (
                refusal.symbol is not None
                and refusal.op in _PROTECTIVE
                and refusal.rejected.reason is RejectReason.WOULD_TRIGGER_IMMEDIATELY
            ):
                self._triggering[refusal.symbol].append((refusal.at, refusal.mark))
        log = self.engine.books.log
        while self._seen < len(log):
            entry = log[self._seen]
            self._seen += 1
            if isinstance(entry, OrderRecord):
                self._placed(entry, now)
            elif isinstance(entry, Amendment):
                self._amended(entry, now)
            elif isinstance(entry, Fill):
                self._filled(entry, now)
            elif isinstance(entry, OrderClosed):
                self._zombies.pop(entry.order_id, None)

    def _placed(self, record: OrderRecord, now: datetime) -> None:
        flat = self.engine.position_record(record.symbol) is None
        resting = record.type is not OrderType.MARKET or record.reduce_only
        if record.origin == "api" and flat and resting:
            self._orphan(record.symbol, record.order_id, now)
        if record.origin == "api" and record.type is OrderType.MARKET and record.reduce_only:
            self._closed_at_market(record, now)
        if record.type in (OrderType.STOP_MARKET, OrderType.POSITION_STOP):
            self._stop_level(
                record.symbol,
                record.side,
                record.trigger_price,
                record.origin,
                now,
                order_id=record.order_id,
            )

    def _amended(self, amendment: Amendment, now: datetime) -> None:
        if amendment.new_trigger is None or amendment.new_trigger == amendment.old_trigger:
            return
        order = self.engine.order(amendment.order_id)
        if order is not None and order.is_stop:
            self._stop_level(
                amendment.symbol,
                order.side,
                amendment.new_trigger,
                amendment.origin,
                now,
                order_id=amendment.order_id,
            )

    def _stop_level(
        self,
        symbol: str,
        side: OrderSide,
        trigger: Decimal | None,
        origin: str,
        now: datetime,
        *,
        order_id: str,
    ) -> None:
        watch = self._watch_current(symbol, now)
        if trigger is None or watch.side is None or side is not watch.side.exit:
            return
        tightens = watch.level is None or tighter(watch.side, trigger, watch.level)
        if origin != "api":
            # A person's tighter stop becomes the bot's level once the bot journals it (a
            # manual change, `on_event`) or once it stood a guard pass and a round trip (and
            # the excuses that kept the guard from seeing it): one gone sooner was never seen.
            if tightens:
                watch.pending[order_id] = (trigger, now, None)
                self._adopt_pending(symbol, watch, now)
            return
        watch.known = True  # the bot protects it: it knows it
        if tightens:
            watch.level = trigger  # the bot's new level
        elif trigger != watch.level:
            self._violate(
                "loosened",
                now,
                symbol,
                f"the bot set a stop at {trigger}, looser than its last level {watch.level}",
            )

    def _watch_current(self, symbol: str, now: datetime) -> _Watch:
        watch = self._watch[symbol]
        record = self.engine.position_record(symbol)
        if record is not watch.record:
            self._new_position(symbol, watch, record, now)
        return watch

    def _adopt_pending(self, symbol: str, watch: _Watch, now: datetime) -> None:
        """A person's tighter stop that has stood long enough is the bot's level now."""
        for order_id, (trigger, since, woken) in tuple(watch.pending.items()):
            order = self.engine.order(order_id)
            if order is None or not order.is_open or order.trigger_price != trigger:
                del watch.pending[order_id]  # gone (or moved) before the bot had to see it
                continue
            deadline = self._deadline(symbol, since, window=self.windows.adoption())
            if deadline is not None and now > deadline:
                del watch.pending[order_id]
                self._raise_level(watch, trigger)
            elif deadline != woken:
                watch.pending[order_id] = (trigger, since, deadline)
                if deadline is not None:
                    self._wake(symbol, deadline)

    def _raise_level(self, watch: _Watch, trigger: Decimal) -> None:
        assert watch.side is not None
        if watch.level is None or tighter(watch.side, trigger, watch.level):
            watch.level = trigger

    def _filled(self, fill: Fill, now: datetime) -> None:
        if role_of(fill.client_order_id) is not OrderRole.ENTRY:
            return
        self._watch_current(fill.symbol, now).own = True
        operation = operation_of(fill.client_order_id) or ""
        orders = self._entries[operation]
        orders.add(fill.order_id)
        if len(orders) == 2:
            self._violate(
                "entered_twice",
                now,
                fill.symbol,
                f"operation {operation} entered by orders {sorted(orders)}",
            )

    # ----------------------------------------------------------------- market closes

    def _closed_at_market(self, record: OrderRecord, now: datetime) -> None:
        """The bot sent a reduce-only market order: it closed (part of) a position. Every
        market close the application makes goes through `StopWriter.market_close`, for one
        of three reasons (app/aged.py, app/stop_keeper.py, app/open_position.py; there is no
        signal or strategy exit): the aged manager at its loss cap, the mark past the bot's
        stop level (`judge_level` says CLOSE), or an open's rollback after its stop could
        not be placed. A rollback of a position a full stop protects is never a last resort
        (story 7: an "already done" answer taken as a failure), so at the instant of the
        close the position must have been bare, past the aged cap, or past the bot's level.
        The watch still holds the state before the close: the books log is read before the
        symbol is checked again."""
        watch = self._watch[record.symbol]
        held = watch.record
        if held is None or watch.side is None or record.side is not watch.side.exit:
            return
        if watch.bare.since is not None:
            return  # bare: the last resort, or a stop-less position closed past its level
        if self._aged_cap(held, now):
            return
        if self._crossed_level(record.symbol, watch, now):
            return
        if watch.level is None and not self._keepable_stop(record.symbol, watch):
            return  # an open's rollback, no stop standing that it may keep
        self._violate(
            "closed_protected",
            now,
            record.symbol,
            f"the bot closed {watch.side.value} at market ({record.client_order_id}) while a "
            f"full stop protected it: not at the aged cap, the mark "
            f"{self.engine.mark(record.symbol)} not past the bot's level {watch.level}",
        )

    def _keepable_stop(self, symbol: str, watch: _Watch) -> bool:
        """The bot set no stop for this position (an open rolling back): did a full stop
        stand, as the last check saw it, tighter than the initial stop from the venue's
        entry? The open keeps such a one (`StopKeeper.adopt_standing`, against the stop it
        wanted from the mark it last read, which can only be looser); one no tighter is not
        the risk the operator set."""
        if watch.side is None or watch.entry is None or watch.tightest_full is None:
            return False
        tick = self.venue.rules(symbol).tick_size
        wanted = initial_stop(watch.side, watch.entry, watch.entry, tick, self.windows.stops)
        return tighter(watch.side, watch.tightest_full, wanted.price)

    def _aged_cap(self, held: PositionRecord, now: datetime) -> bool:
        """The position is old enough for the aged manager's loss cap (a function of its
        age alone; the venue's open is never later than the journal's)."""
        decision = decide_aged(
            entry_price=Decimal(1),
            side=held.side,
            quantity=Decimal(1),
            opened_at=held.opened_at,
            now=now,
            params=self.windows.aged,
            tick_size=Decimal("0.00000001"),
        )
        return decision.phase is AgedPhase.CAP

    def _crossed_level(self, symbol: str, watch: _Watch, now: datetime) -> bool:
        """A mark the bot may have read for this close (standing at some moment within the
        slack before it: one that began earlier and still stood then counts — binance seed
        1679) is at or past the bot's level."""
        if watch.level is None or watch.side is None:
            return False
        since = now - timedelta(seconds=self.windows.slack + 4 * self.windows.round_trip)
        standing = watch.before  # the mark as the window began (it may be lag old)
        marks: list[Decimal] = []
        for at, mark, _ in watch.marks:
            if at < since:
                standing = mark
            else:
                marks.append(mark)
        current = self.engine.mark(symbol)  # no tick since: the last mark still stands
        marks += [m for m in (standing, current) if m is not None]
        return any(crossed(watch.side, watch.level, mark) for mark in marks)

    # ----------------------------------------------------------------- zombies

    def _orphan(self, symbol: str, order_id: str, now: datetime) -> None:
        self._zombies[order_id] = now
        self._wake(symbol, now + self.windows.zombie())

    def _check_zombies(self, now: datetime) -> None:
        if not self._zombies:
            return
        for order_id, since in tuple(self._zombies.items()):
            order = self.engine.order(order_id)
            if order is None or not order.is_open:
                del self._zombies[order_id]
                continue
            # after a fault, the zombie pass that cleans up may be one zombie interval away
            later = timedelta(seconds=self.windows.zombie_interval - self.windows.guard_interval)
            deadline = self._deadline(
                order.symbol, since, window=self.windows.zombie(), later=max(later, timedelta(0))
            )
            if deadline is None:
                continue
            if now <= deadline and self._zombie_wakes.get(order_id) != deadline:
                self._zombie_wakes[order_id] = deadline  # an excuse moved it: look again then
                self._wake(order.symbol, deadline)
            if now > deadline:
                del self._zombies[order_id]
                self._violate(
                    "zombie",
                    now,
                    order.symbol,
                    f"order {order.client_order_id or order_id} ({order.type.value}) open "
                    f"{(now - since).total_seconds():.0f} s after its position closed",
                )

    # ----------------------------------------------------------------- events

    def on_event(self, event: Event) -> None:
        """Called for every event the application emits, as it emits it."""
        now = event.created_at
        if event.type is EventType.POSITION_CLOSED and event.symbol is not None:
            self._watch_current(event.symbol, now).ended = True
        if event.type is EventType.MISSING_POSITION_ADDED and event.symbol is not None:
            watch = self._watch_current(event.symbol, now)
            if watch.ended and not watch.own:
                self._rebase(watch)
            watch.own = True
        if event.type in _KNOWS_THE_POSITION and event.symbol is not None:
            self._watch_current(event.symbol, now).known = True
        if event.data.get("method") == "adopted" and event.symbol is not None:
            self._adopted(event.symbol, event.data.get("price"), now, event.order_id)
        if event.severity is Severity.CRITICAL and not self.faulted(event.symbol, now):
            self._violate(
                "unexplained_critical",
                now,
                event.symbol,
                f"{event.type.value}: {event.error_message or event.data}",
            )
        if event.type is EventType.PROTECTION_CHECK_COMPLETED:
            reported = int(event.data.get("unprotected", 0))
            # the pass can only count what it saw: a position bared (a person's cancel)
            # after the pass read the venue is the next pass's to report
            view = self.health() if self.health is not None else None
            read_at = view.read_at if view is not None and view.read_at is not None else now
            bare = [
                symbol
                for symbol, watch in self._watch.items()
                if watch.bare.since is not None
                and now - watch.bare.since > self.windows.bare
                and watch.bare.since < read_at
                and self.engine.position(symbol) is not None
                and not self._adopting(symbol, now)
            ]
            if reported < len(bare):
                self._violate(
                    "guard_blind",
                    now,
                    None,
                    f"the guard reported {reported} unprotected; bare: {', '.join(bare)}",
                )
            self._check_health(now)

    def _check_health(self, now: datetime) -> None:
        """After a protection pass, the application's unprotected view (what `/health`,
        the metrics gauge and the pass's `still_unprotected` say) must name every symbol the
        venue held bare from before the pass read the venue until now — excused or not:
        while a fault refuses the repair, the position is bare and must be shown as such
        (issue 10). A hand-opened position is exempt until a sync pass could adopt it."""
        view = self.health() if self.health is not None else None
        if view is None or view.read_at is None:
            return
        missing = [
            symbol
            for symbol, watch in sorted(self._watch.items())
            if watch.bare.since is not None
            and watch.bare.since < view.read_at
            and self.engine.position(symbol) is not None
            and symbol not in view.symbols
            and not self._adopting(symbol, now)
        ]
        if missing:
            shown = ", ".join(sorted(view.symbols)) or "none"
            self._violate(
                "health_blind",
                now,
                missing[0],
                f"bare on the venue since before the pass read it: {', '.join(missing)}; "
                f"the application reports unprotected: {shown}",
                since=self._watch[missing[0]].bare.since,
            )

    def _adopted(
        self, symbol: str, price: object, now: datetime, order_id: str | None = None
    ) -> None:
        """The bot journaled a stop standing on the venue as its level (a person's tighter
        stop adopted as a manual change, or a standing stop recorded). An order of ours an
        earlier position left (a zombie until now) is the new position's stop from then on:
        an open adopts it rather than roll back a position it protects (binance seed 297)."""
        if order_id is not None:
            self._zombies.pop(order_id, None)
        if price is None:
            return
        watch = self._watch_current(symbol, now)
        if watch.side is None:
            return
        level = Decimal(str(price))
        for order_id, (trigger, _, _) in tuple(watch.pending.items()):
            if trigger == level:
                del watch.pending[order_id]
        self._raise_level(watch, level)

    # ----------------------------------------------------------------- quiescence

    async def quiescent(self, store: Store, events: Sequence[Event]) -> list[Violation]:
        """Nothing injected, nothing in flight, a guard and a sync pass done: the journal
        must equal the venue, every closed position must carry its realized PnL, and every
        order the bot placed must have its event."""
        now = self.clock.now()
        found: list[Violation] = []
        venue = self.venue.exchange.venue
        journal = {p.symbol: p for p in await store.positions.open_positions() if p.venue is venue}
        for symbol in sorted(set(journal) | set(self.engine.markets)):
            held = self.engine.position(symbol)
            mine = journal.get(symbol)
            problem = None
            if held is None and mine is not None:
                problem = f"journal has {mine.state.value} {mine.quantity}, the venue is flat"
            elif held is not None and (mine is None or mine.state is not PositionState.ACTIVE):
                state = "nothing" if mine is None else mine.state.value
                problem = f"the venue holds {held.side.value} {held.quantity}, journal: {state}"
            elif held is not None and mine is not None:
                stops = [o.trigger_price for o in self.venue.stops(symbol)]
                if (mine.side, mine.quantity) != (held.side, held.quantity):
                    problem = (
                        f"journal {mine.side.value} {mine.quantity}, "
                        f"venue {held.side.value} {held.quantity}"
                    )
                elif mine.stop_price not in stops:
                    problem = f"journal stop {mine.stop_price}, venue stops {stops}"
            if problem is not None:
                found.append(
                    Violation(invariant="journal_mismatch", at=now, symbol=symbol, detail=problem)
                )
        # a sync pass settled every close: exit price, fees and realized PnL from the venue
        for position in await store.positions.unsettled():
            if position.venue is venue:
                found.append(
                    Violation(
                        invariant="journal_mismatch",
                        at=now,
                        symbol=position.symbol,
                        detail=f"{position.state.value} position {position.id} has no realized "
                        "PnL from the venue's fills after a sync pass",
                    )
                )
        mentioned = _mentioned(events)
        times = _event_times(events)
        soon = timedelta(seconds=self.windows.slack)
        for record in self.engine.books.orders:
            if record.origin != "api":
                continue
            names = {record.order_id, record.client_order_id, operation_of(record.client_order_id)}
            if names & mentioned or _any_between(
                times.get(record.symbol, []), record.at, record.at + soon
            ):
                continue
            found.append(
                Violation(
                    invariant="journal_mismatch",
                    at=now,
                    symbol=record.symbol,
                    detail=f"no event for our {record.type.value} order "
                    f"{record.client_order_id or record.order_id} placed at {record.at} "
                    "(none names it or its operation, none on its symbol right after it)",
                )
            )
        self.violations.extend(found)
        return found

    def _violate(
        self,
        invariant: str,
        at: datetime,
        symbol: str | None,
        detail: str,
        since: datetime | None = None,
    ) -> None:
        self.violations.append(
            Violation(invariant=invariant, at=at, symbol=symbol, detail=detail, since=since)
        )


# The reads of the whole account a protection pass cannot do without (a refused balance or
# market list stops no pass).
_ACCOUNT_READS = frozenset({Op.FETCH_POSITIONS, Op.FETCH_OPEN_ORDERS})
# The bot's events that say it knows the venue's position on their symbol (its own stop
# orders say so too): its entry filled, a sync pass adopted it, its stop, its trailing.
_KNOWS_THE_POSITION = frozenset(
    {
        EventType.ENTRY_ORDER_FILLED,
        EventType.MISSING_POSITION_ADDED,
        EventType.STOP_LOSS_PLACED,
        EventType.STOP_LOSS_REPLACED,
        EventType.TRAILING_STOP_CREATED,
    }
)
# The commands that place or move a stop (a refusal's `op`).
_PROTECTIVE = frozenset({Op.STOP_ORDER.value, Op.POSITION_STOP.value, Op.AMEND.value})


def _no_stop(held: VenuePosition) -> str:
    return f"no full stop for {held.side.value} {held.quantity}"


def _ours(order: Order) -> bool:
    return role_of(order.client_order_id) is not OrderRole.FOREIGN


def _mentioned(events: Iterable[Event]) -> set[str | None]:
    """Every order id, client id and position or operation id any event names (its own
    fields or a string in its data)."""
    names: set[str | None] = set()
    for event in events:
        names.update((event.order_id, event.position_id, event.correlation_id))
        for value in event.data.values():
            if isinstance(value, str):
                names.add(value)
            elif isinstance(value, list | tuple):
                names.update(v for v in value if isinstance(v, str))
    return names


def _event_times(events: Iterable[Event]) -> dict[str | None, list[datetime]]:
    """When each symbol's events were emitted, in order."""
    times: dict[str | None, list[datetime]] = defaultdict(list)
    for event in events:
        times[event.symbol].append(event.created_at)
    for moments in times.values():
        moments.sort()
    return times


def _any_between(moments: list[datetime], start: datetime, end: datetime) -> bool:
    index = bisect.bisect_left(moments, start)
    return index < len(moments) and moments[index] <= end
