"""Trailing service (SPEC §4): mark prices -> the domain transition -> the stop keeper.

A tick never waits for the venue, nor for the database (issue 12, item 8): a `MoveStop`
starts (or updates) one mover task per position, which hands the latest wanted stop to the
stop keeper; moves that arrive while one is in flight are coalesced into the newest. The
changed state is journaled after the move has left, by one writer task that writes each
position's states in the order they were made (a newer state of a position queued while an
older one is written goes after it, and replaces any still waiting): the journal may lag the
venue by a move, never show a later move before an earlier one. Crash-safe because the venue
is the truth: on restart the stop the journal holds for the position — put right from the
venue by the keeper's recovery (an interrupted replacement found by its client id, a stop
standing that the journal never recorded) — is the level trailing resumes from (`restore`),
and the marks no state judged (the bot down, a change a crash took before the journal had
it) are asked of the venue and taken in (`catch_up`). A move the venue did not take is tried
again on the next mark and, should no mark come (flat marks), on a timer (`RetrySettings`),
through the keeper like every stop write. `heartbeat(position_id)` tells the protection
guard when this service last looked at a position, so a silent trailing stop can be taken
over.
"""

import asyncio
import itertools
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from decimal import Decimal

import attrs
from loguru import logger

from tradecore.domain.events import EventType, Severity
from tradecore.domain.model import Side
from tradecore.domain.orders import MarkCandle, MarkTick
from tradecore.domain.positions import Position
from tradecore.domain.precision import MarketRules
from tradecore.domain.reconcile import crossed
from tradecore.domain.trailing import (
    BreakevenReached,
    MoveStop,
    TrailingActivated,
    TrailingParams,
    TrailingPhase,
    TrailingState,
    catch_up,
    end_trailing,
    follow_position,
    on_mark,
    prime,
    resume_trailing,
    start_trailing,
    stop_not_moved,
)
from tradecore.ports.alerts import Alert, Alerter
from tradecore.ports.clock import Clock
from tradecore.ports.exchange import Exchange, ExchangeUnavailable
from tradecore.ports.repositories import Store, StoreUnavailable

from .backoff import backoff_seconds
from .recorder import Recorder
from .stop_keeper import StopKeeper

FAILURES_BEFORE_ALERT = 3
# A stop that fired shows as a position gone (or smaller) in a read this long after the mark
# that crossed it: the venue fills a stop market at once; its position reads may lag a little.
_FIRED_SHOWS_WITHIN = timedelta(seconds=5)
# How often the journal writer tries one state (1 s apart) before it gives up on it: a state
# the database refuses for good (not an outage) is dropped with a critical_error event, and
# one an outage holds back waits for the next pass, so neither holds up `flush()` — the close
# path and shutdown — beyond these tries (the venue is the truth: the next start trails from
# the stop the journal holds, put right from the venue by the keeper's recovery).
JOURNAL_TRIES = 3
# How often a restart asks the venue for a position's marks since its state's last change
# (`catch_up`) before it trails on from the marks it sees.
CATCH_UP_TRIES = 5


@attrs.frozen(kw_only=True)
class RetrySettings:
    """When a trailing move the venue did not take is tried again if no mark comes first:
    doubling from `first_seconds` up to `cap_seconds`, and from the `rate_limited_` pair
    while the venue answers 429/418. Binance asks a client that got a 429 to back off, and
    bans an IP that does not (418, 2 minutes to 3 days); Bybit's limit (10006) resets per
    second or minute (developers.binance.com/docs/binance-spot-api-docs/rest-api/limits,
    bybit-exchange.github.io/docs/v5/rate-limit). A retry reads the venue once before it
    writes: one request per position per back-off."""

    first_seconds: float = 5.0
    cap_seconds: float = 30.0
    rate_limited_first_seconds: float = 15.0
    rate_limited_cap_seconds: float = 60.0

    def delay(self, failures: int, *, rate_limited: bool) -> float:
        if rate_limited:
            return backoff_seconds(
                failures, first=self.rate_limited_first_seconds, cap=self.rate_limited_cap_seconds
            )
        return backoff_seconds(failures, first=self.first_seconds, cap=self.cap_seconds)

    @property
    def longest_seconds(self) -> float:
        return max(self.cap_seconds, self.rate_limited_cap_seconds)


class TrailingService:
    def __init__(
        self,
        store: Store,
        keeper: StopKeeper,
        recorder: Recorder,
        clock: Clock,
        params: TrailingParams,
        rules: Mapping[str, MarketRules],
        *,
        alerter: Alerter | None = None,
        retry: RetrySettings | None = None,
        history: Exchange | None = None,
    ) -> None:
        self._store = store
        self._keeper = keeper
        self._recorder = recorder
        self._clock = clock
        self._params = params
        self._rules = rules
        self._alerter = alerter
        self._history = history  # the venue's mark candles, for `catch_up`
        self._catching: dict[str, asyncio.Task[None]] = {}
        self._states: dict[str, TrailingState] = {}
        # position ids per symbol, in the order they were tracked: a set of strings would be
        # walked in an order that changes with each interpreter's hash seed
        self._by_symbol: dict[str, dict[str, None]] = {}
        self._heartbeats: dict[str, datetime] = {}
        self._wanted: dict[str, MoveStop] = {}
        self._movers: dict[str, asyncio.Task[None]] = {}
        self._failures: dict[str, int] = {}
        self._retry = retry or RetrySettings()
        self._retries: dict[str, asyncio.Task[None]] = {}
        self._marks: dict[str, MarkTick] = {}  # the last mark per symbol, for a retry
        # states (None: a deletion) waiting for the journal, oldest first; one per position
        self._unsaved: dict[str, TrailingState | None] = {}
        # states an outage held back after JOURNAL_TRIES: written on the writer's next pass
        self._held_back: dict[str, TrailingState | None] = {}
        self._writer: asyncio.Task[None] | None = None
        self._draining = False  # shutdown: no new retry timer is started

    # -- lifecycle --------------------------------------------------------------------------

    async def start(self, position: Position) -> TrailingState:
        """Begin trailing a newly protected position."""
        assert position.entry_price is not None
        state = start_trailing(
            position_id=position.id,
            venue=position.venue,
            symbol=position.symbol,
            side=position.side,
            entry_price=position.entry_price,
            quantity=position.quantity,
            opened_at=position.opened_at or self._clock.now(),
            stop_price=position.stop_price,
            params=self._params,
            # a quantity other than the one asked for: a person added to the position or
            # closed part of it (or the entry filled in part), and the journal's entry may
            # be another than at the opening since — no mark before now is judged by it
            # (review 15b: a state first made at a restart after a person's add)
            entry_at=None
            if position.quantity == position.requested_quantity
            else self._clock.now(),
        )
        self._journal(state.position_id, state)
        await self.flush()
        self._track(state)
        self._recorder.record(
            EventType.TRAILING_STOP_CREATED,
            position=position,
            data={
                "activation_price": state.activation_price,
                "stop_price": state.stop_price,
                "callback_percent": self._params.callback_percent,
            },
        )
        return state

    async def start_for(self, position: Position) -> None:
        """Trail `position` unless it already is (the form the other use cases call).

        Called once a stop stands on the venue for it (the guard placed one, the synchronizer
        adopted it): a state TRIGGERED meanwhile — the mark crossed a stop that was not on the
        venue, so nothing fired — trails on from the stop that stands (story 5), judged on
        the last mark at once, as a tick would, unless that mark crosses the stop: the marks
        may stand still until the next one (binance seed 1006)."""
        state = self._states.get(position.id)
        if state is None:
            if position.entry_price is not None:
                await self.start(position)
            return
        if state.phase is TrailingPhase.TRIGGERED and position.stop_price is not None:
            resumed = stop_not_moved(
                state, position.stop_price, last_update_at=state.last_update_at
            )
            self._states[position.id] = resumed
            self._journal(position.id, resumed)
            await self.flush()
            last = self._marks.get(position.symbol)
            if last is not None and not crossed(position.side, position.stop_price, last.mark):
                # due now (an earlier, later retry gives way) — but never on a mark that
                # crosses the stop: the one that triggered it, before the feed brought the
                # recovery the guard read; TRIGGERED again, it would ignore every later mark
                self._retry_after(position.id, 0.0)

    async def on_held(self, position: Position, read_at: datetime) -> None:
        """A protection pass that began reading the venue at `read_at` found the position
        held, its stop standing and nothing to fix. A state TRIGGERED a while before that
        read was a mark the venue's stop never fired on (a mark the feed brought late, or a
        feed apart from the venue's mark): it trails on, as `start_for` resumes it —
        otherwise a TRIGGERED state ignores every later mark for the life of the position."""
        state = self._states.get(position.id)
        if (
            state is None
            or state.phase is not TrailingPhase.TRIGGERED
            or state.triggered_at is None
            or read_at - state.triggered_at < _FIRED_SHOWS_WITHIN
        ):
            return
        await self.start_for(position)

    async def follow(self, position: Position) -> None:
        """The journal took the venue's entry and quantity (a person added to the position or
        closed part of it): activation and breakeven are measured from the new entry."""
        state = self._states.get(position.id)
        if state is None or position.entry_price is None or position.quantity <= 0:
            return
        if (state.entry_price, state.quantity) == (position.entry_price, position.quantity):
            return
        followed = follow_position(
            state, position.entry_price, position.quantity, self._params, at=self._clock.now()
        )
        self._states[position.id] = followed
        self._journal(position.id, followed)
        await self.flush()

    async def restore(self) -> int:
        """Load every persisted trailing state (after a restart)."""
        for state in await self._store.trailing.all():
            # A TRIGGERED state is a stop that may have fired: if it did, the synchronizer
            # ends the trailing stop; if not, it must trail on, never stay frozen (story 5).
            state = resume_trailing(state)
            position = await self._store.positions.get(state.position_id)
            if position is not None and position.stop_price != state.stop_price:
                # A crash cut the last move off: the state was saved with the wanted stop, the
                # journal holds the one the venue took. Trail from that, moving on the next
                # mark; the rate limit counts from the move before (bybit seed 188).
                state = stop_not_moved(
                    state, position.stop_price, last_update_at=state.previous_update_at
                )
                self._journal(state.position_id, state)
            self._track(prime(state, self._params))
        await self.flush()
        return len(self._states)

    async def end(self, position_id: str, *, reason: str) -> None:
        """The position closed: its trailing stop ends with it."""
        state = self._states.pop(position_id, None)
        mover = self._movers.pop(position_id, None)
        if mover is not None:
            mover.cancel()
        for task in (self._retries.pop(position_id, None), self._catching.pop(position_id, None)):
            if task is not None:
                task.cancel()
        self._wanted.pop(position_id, None)
        self._heartbeats.pop(position_id, None)
        if state is None:
            return
        self._by_symbol.get(state.symbol, {}).pop(position_id, None)
        self._journal(position_id, None)
        await self.flush()
        note = end_trailing(state, reason)
        self._recorder.record(
            EventType.TRAILING_STOP_REMOVED,
            correlation_id=position_id,
            symbol=state.symbol,
            exchange=state.venue.value,
            data={
                "phase": note.phase.value,
                "stop_price": note.stop_price,
                "updates": note.update_count,
                "reason": reason,
            },
        )

    async def drain(self) -> None:
        """Wait for every stop move in flight, then for the journal (graceful shutdown); a
        retry not yet due is dropped (the next start trails from the journal's stop), and a
        move refused meanwhile schedules none."""
        self._draining = True
        retries = [*self._retries.values(), *self._catching.values()]
        for retry in retries:
            retry.cancel()
        await asyncio.gather(*retries, return_exceptions=True)
        while self._movers:
            await asyncio.gather(*list(self._movers.values()), return_exceptions=True)
        await self.flush()

    async def flush(self) -> None:
        """Wait until every changed state is in the journal (a crash of the writer — the
        process dying under it — reaches the one waiting), or the writer gave up on it after
        `JOURNAL_TRIES`: a state refused for good is dropped, one an outage held back waits
        for the next pass (started by the next change or flush)."""
        if self._held_back and (self._writer is None or self._writer.done()):
            self._start_writer()
        while (writer := self._writer) is not None and not writer.done():
            await asyncio.shield(writer)
        if self._unsaved:  # the writer died: what it left is written now, in order
            self._start_writer()
            await self.flush()

    # -- the journal ------------------------------------------------------------------------

    def _journal(self, position_id: str, state: TrailingState | None) -> None:
        """Queue `state` (None: the deletion) for the journal, after what is queued already."""
        self._unsaved.pop(position_id, None)
        self._held_back.pop(position_id, None)  # this newer state replaces it
        self._unsaved[position_id] = state
        if self._writer is None or self._writer.done():
            self._start_writer()

    def _start_writer(self) -> None:
        self._writer = asyncio.create_task(self._write_journal(), name="trailing-journal")

    async def _write_journal(self) -> None:
        for position_id, state in self._held_back.items():  # an outage held them: try again
            self._unsaved.setdefault(position_id, state)
        self._held_back.clear()
        tries: dict[str, int] = {}
        while self._unsaved:
            position_id = next(iter(self._unsaved))
            state = self._unsaved.pop(position_id)
            try:
                if state is None:
                    await self._store.trailing.delete(position_id)
                else:
                    await self._store.trailing.save(state)
            except Exception as error:
                tried = tries[position_id] = tries.get(position_id, 0) + 1
                if tried < JOURNAL_TRIES:
                    self._unsaved.setdefault(position_id, state)  # unless a newer one waits
                    await self._clock.sleep(1.0)
                elif isinstance(error, StoreUnavailable):  # an outage: wait for the next pass
                    if position_id not in self._unsaved:
                        self._held_back[position_id] = state
                else:  # a bug or a value the database refuses for good: never block the rest
                    self._recorder.record(
                        EventType.CRITICAL_ERROR,
                        severity=Severity.CRITICAL,
                        correlation_id=position_id,
                        error=f"the trailing state could not be journaled and is dropped after "
                        f"{tried} tries: {error!r}"[:1000],
                        data={"waiting": len(self._unsaved)},
                    )
                continue
            tries.pop(position_id, None)

    # -- ticks ------------------------------------------------------------------------------

    @property
    def busy(self) -> bool:
        """A stop move is in flight, a changed state waits for the journal, or a restart's
        catch-up waits for the venue."""
        return bool(self._movers) or bool(self._unsaved) or bool(self._catching)

    def state(self, position_id: str) -> TrailingState | None:
        return self._states.get(position_id)

    def marks(self) -> dict[str, Decimal]:
        """The last mark seen of each symbol (the dashboard shows them)."""
        return {symbol: tick.mark for symbol, tick in self._marks.items()}

    def heartbeats(self) -> Mapping[str, datetime]:
        """When this service last evaluated each position it trails."""
        return self._heartbeats

    def heartbeat(self, position_id: str) -> datetime | None:
        """When this service last evaluated the position (None: never)."""
        return self._heartbeats.get(position_id)

    async def on_tick(self, tick: MarkTick) -> None:
        self._marks[tick.symbol] = tick
        ids = self._by_symbol.get(tick.symbol)
        if not ids:
            return
        rules = self._rules.get(tick.symbol)
        if rules is None:
            return
        for position_id in tuple(ids):
            self._heartbeats[position_id] = tick.at
            state = self._states[position_id]
            new, commands = on_mark(state, tick.mark, tick.at, self._params, rules.tick_size)
            if new is not state:
                self._apply(position_id, new, commands, tick.at)

    def _apply(
        self, position_id: str, new: TrailingState, commands: Sequence[object], now: datetime
    ) -> None:
        self._states[position_id] = new
        for command in commands:  # the move leaves now…
            self._carry_out(new, command)
        self._journal(position_id, new)  # …and the journal follows it
        due = new.next_update_at
        if due is not None and not commands and position_id not in self._retries:
            # Held back by the rate limit: made when due on the last mark, as a tick
            # would, even if the mark stands still until then (binance seed 614).
            self._retry_after(position_id, max(0.0, (due - now).total_seconds()))

    # -- a restart's catch-up -----------------------------------------------------------------

    def catch_up(self) -> None:
        """Take in, for every position trailed, the marks its state never judged: after a
        restart, those of the time the bot was down, and those whose change a crash took
        before the journal had it (simulator, binance seed 2508: an activation lost, and
        the marks never came back to it). The venue keeps them (`fetch_mark_candles`,
        asked in the background, one task per position, at the lowest priority); the ticks
        go on meanwhile, and a catch-up only ever tightens (`domain.trailing.catch_up`)."""
        if self._history is None or self._draining:
            return
        for position_id in tuple(self._states):
            if position_id not in self._catching:
                self._catching[position_id] = asyncio.create_task(
                    self._catch_up(position_id), name=f"trailing-catch-up-{position_id}"
                )

    async def _catch_up(self, position_id: str) -> None:
        assert self._history is not None
        journaled = self._states.get(position_id)
        if journaled is None:
            return
        # asked once for all tries: a tick that changes the state while a retry waits must
        # not narrow the span to the marks since that tick (review 15)
        since = journaled.marks_until or journaled.entry_at or journaled.opened_at
        try:
            for tried in itertools.count(1):
                state = self._states.get(position_id)
                if state is None:
                    return
                try:
                    candles = await self._history.fetch_mark_candles(state.symbol, since=since)
                except ExchangeUnavailable as error:
                    if tried >= CATCH_UP_TRIES:
                        logger.warning(
                            "{}: the marks since its trailing state's last change could not "
                            "be read ({}); it trails on from the marks it sees",
                            state.symbol,
                            error,
                        )
                        return
                    await self._clock.sleep(
                        self._retry.delay(tried, rate_limited=error.rate_limited)
                    )
                    continue
                self._take_in(position_id, candles, since)
                return
        except Exception as error:  # a bug: never silent, and trailing goes on from the marks
            logger.exception("the trailing catch-up of {} failed", position_id)
            self._recorder.record(
                EventType.CRITICAL_ERROR,
                severity=Severity.CRITICAL,
                correlation_id=position_id,
                symbol=journaled.symbol,
                exchange=journaled.venue.value,
                error=f"the trailing catch-up failed: {error!r}"[:1000],
            )
        finally:
            if self._catching.get(position_id) is asyncio.current_task():
                del self._catching[position_id]

    def _take_in(self, position_id: str, candles: Sequence[MarkCandle], since: datetime) -> None:
        state = self._states.get(position_id)
        if state is None or (rules := self._rules.get(state.symbol)) is None:
            return
        long = state.side is Side.LONG
        # Marks before the entry (its opening, or a person's add: `entry_at`) are no profit:
        # of the candle the entry falls in only its close is surely after it (review 15).
        entered = state.entry_at or state.opened_at
        marks = [
            (c.high if long else c.low) if c.opened_at >= entered else c.close
            for c in candles
            if c.closes_at > entered
        ]
        if not marks:
            return
        best = max(marks) if long else min(marks)
        # the mark now: the worse of the venue's last close and the feed's last tick (the
        # answer may have waited its turn; a stop either crosses is no stop, review 15)
        mark = candles[-1].close
        tick = self._marks.get(state.symbol)
        if tick is not None:
            mark = min(mark, tick.mark) if long else max(mark, tick.mark)
        now = self._clock.now()
        new, commands = catch_up(state, best, mark, now, self._params, rules.tick_size)
        if new is not state:
            logger.info(
                "{}: caught up on the marks since {} (best {}): {}",
                state.symbol,
                since,
                best,
                new.phase.value,
            )
            self._apply(position_id, new, commands, now)

    def _carry_out(self, state: TrailingState, command: object) -> None:
        if isinstance(command, MoveStop):
            self._wanted[state.position_id] = command
            if state.position_id not in self._movers:
                self._movers[state.position_id] = asyncio.create_task(
                    self._mover(state.position_id), name=f"trailing-move-{state.position_id}"
                )
        elif isinstance(command, TrailingActivated):
            self._note(
                state,
                EventType.TRAILING_STOP_ACTIVATED,
                {"mark": command.mark, "cause": command.cause.value},
            )
        elif isinstance(command, BreakevenReached):
            self._note(state, EventType.TRAILING_STOP_BREAKEVEN, {"mark": command.mark})

    def _note(self, state: TrailingState, event_type: EventType, data: dict[str, object]) -> None:
        self._recorder.record(
            event_type,
            correlation_id=state.position_id,
            symbol=state.symbol,
            exchange=state.venue.value,
            data=data,
        )

    async def _mover(self, position_id: str) -> None:
        try:
            while (command := self._wanted.pop(position_id, None)) is not None:
                await self._move(position_id, command)
        finally:
            self._movers.pop(position_id, None)

    async def _move(self, position_id: str, command: MoveStop) -> None:
        state = self._states.get(position_id)
        if state is None:
            return  # the trailing stop ended meanwhile
        result = await self._keeper.move_trailing(
            position_id, state.symbol, command.new_stop, reason=command.reason.value
        )
        if result is None:  # gone, or no longer open on the venue
            return
        if result.ok and result.position.stop_price != command.new_stop:
            # The keeper kept a tighter stop (a person's, now the bot's): trail from there.
            self._failures.pop(position_id, None)
            await self._revert(position_id, result.position.stop_price)
            return
        if result.ok:
            self._failures.pop(position_id, None)
            self._recorder.record(
                EventType.TRAILING_STOP_UPDATED,
                position=result.position,
                data={
                    "stop_price": command.new_stop,
                    "previous_stop": command.previous_stop,
                    "reason": command.reason.value,
                },
            )
            return
        await self._not_moved(position_id, result.position.stop_price, command)
        failures = self._failures.get(position_id, 0) + 1
        self._failures[position_id] = failures
        if self._wanted.get(position_id) is None:  # else a newer move carries the attempt on
            delay = self._retry.delay(failures, rate_limited=result.rate_limited)
            self._retry_after(position_id, delay)
        if failures >= FAILURES_BEFORE_ALERT and self._alerter is not None:
            await self._alerter.send(
                Alert(
                    key=f"trailing-failing:{position_id}",
                    severity=Severity.ERROR,
                    title=f"{state.symbol}: trailing stop update failed {failures} times",
                    text=result.detail,
                )
            )

    async def _revert(self, position_id: str, actual_stop: Decimal | None) -> None:
        """The venue kept the old stop: the state must say so, or it trails a stop that isn't."""
        state = self._states.get(position_id)
        if state is None or (
            state.stop_price == actual_stop and state.phase is not TrailingPhase.TRIGGERED
        ):
            return
        # The wanted stop never reached the venue: if the mark "triggered" it, nothing fired —
        # trailing resumes at the last accepted stop on the next mark (story 5).
        reverted = attrs.evolve(resume_trailing(state), stop_price=actual_stop)
        self._states[position_id] = reverted
        self._journal(position_id, reverted)

    async def _not_moved(
        self, position_id: str, actual_stop: Decimal | None, command: MoveStop
    ) -> None:
        """The venue refused the move: the state says so, and the move is tried again on the
        next mark (not on the next best price, which may never come)."""
        state = self._states.get(position_id)
        if state is None:
            return
        if self._wanted.get(position_id) is not None:
            # a newer move is queued: it carries the attempt on; only the stop is corrected
            await self._revert(position_id, actual_stop)
            return
        retried = stop_not_moved(state, actual_stop, last_update_at=command.previous_update_at)
        self._states[position_id] = retried
        self._journal(position_id, retried)

    def _retry_after(self, position_id: str, seconds: float) -> None:
        """Judge the position again in `seconds` on the last mark, as a tick would: a move the
        venue did not take is owed even if the marks stay flat (issue 10, story 5)."""
        earlier = self._retries.pop(position_id, None)
        if earlier is not None:
            earlier.cancel()
        if self._draining:
            return  # shutting down: the next start trails from the journal's stop
        self._retries[position_id] = asyncio.create_task(
            self._retry_move(position_id, seconds), name=f"trailing-retry-{position_id}"
        )

    async def _retry_move(self, position_id: str, seconds: float) -> None:
        try:
            await self._clock.sleep(seconds)
            while (state := self._states.get(position_id)) is not None:
                due = state.next_update_at
                tick = self._marks.get(state.symbol)
                rules = self._rules.get(state.symbol)
                if due is None or tick is None or rules is None or position_id in self._movers:
                    return  # nothing owed, nothing to judge it on, or a move is in flight
                now = self._clock.now()
                if now < due:  # the move rate limit holds it back until then
                    await self._clock.sleep((due - now).total_seconds())
                    continue
                new, commands = on_mark(state, tick.mark, now, self._params, rules.tick_size)
                if new is state:
                    return
                self._states[position_id] = new
                for command in commands:  # the move leaves first, the journal follows
                    self._carry_out(new, command)
                self._journal(position_id, new)
                if any(isinstance(command, MoveStop) for command in commands):
                    return  # the mover has it; a refusal schedules the next retry
        finally:
            if self._retries.get(position_id) is asyncio.current_task():
                del self._retries[position_id]

    def _track(self, state: TrailingState) -> None:
        self._states[state.position_id] = state
        self._by_symbol.setdefault(state.symbol, {})[state.position_id] = None
